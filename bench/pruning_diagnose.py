"""Why netsculpt's L1 filter pruning trails Torch-Pruning's at the same FLOPs: two measurements on one seed.

1. Kept channels: prune the cached FP32 ResNet-20 with netsculpt (``filter_pruning`` L1 at 50 % FLOPs, importance
   scope ``filters`` and ``filters_and_inputs``) and with Torch-Pruning 1.6.1 (group L1 at the ratio
   ``bench/pruning_fmnist.py`` found), and count per BatchNorm how many kept channels the two choices share
   (channels are identified by their BN scale, unique per channel).
2. Masks vs ranking: fine-tune the netsculpt-pruned model masked (with the controller, as the bench does) and
   stripped (a plain smaller model, as Torch-Pruning's arm is) with the same budget; equal losses rule the masks
   out as the cause.

Runs in the bench venv (Torch-Pruning), about 3 min on 2 cores:
    OMP_WAIT_POLICY=PASSIVE .venv-bench/bin/python bench/pruning_diagnose.py [--seed 0] [--out PATH]
Prints both tables and writes bench/results/pruning_diagnose.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pruning_fmnist as pf  # noqa: E402
import torch  # noqa: E402
from _fp32 import fp32_baseline  # noqa: E402
from torch import nn  # noqa: E402

from netsculpt import create_compressed_model  # noqa: E402

OUT = ROOT / "bench" / "results" / "pruning_diagnose.json"
TP_RATIO = 0.2813  # the uniform ratio bench/pruning_fmnist.py's bisection finds for 50 % FLOPs (its JSON, tp_l1)


def kept_by_bn(fp32: nn.Module, pruned: nn.Module) -> dict[str, set[int]]:
    """Per BatchNorm: indices of the FP32 channels the pruned model kept (matched by their BN scale)."""
    out = {}
    for (name, o), (_, p) in zip(fp32.named_modules(), pruned.named_modules()):
        if isinstance(o, nn.BatchNorm2d):
            g = o.weight.detach()
            out[name] = {int((g - v).abs().argmin()) for v in p.weight.detach()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    args = argparse.Namespace(seed=a.seed, batch_size=128, train_limit=10000, test_limit=5000, lr=0.01, epochs=2,
                              max_steps=None, progress=False)  # fmt: skip
    torch.set_num_threads(2)
    fp32, _ = fp32_baseline("resnet20", 3, 10000, 0)
    tp_model = pf.tp_prune(copy.deepcopy(fp32), TP_RATIO, False)
    tp_kept = kept_by_bn(fp32, tp_model)
    res: dict[str, Any] = {"seed": a.seed, "tp_ratio": TP_RATIO, "overlap": {}, "finetune": {}}
    _, test = pf.make_data(args)
    for scope in ("filters", "filters_and_inputs"):
        ctrl, model = create_compressed_model(copy.deepcopy(fp32), pf.pruning_config("L1", 0.5, scope=scope))
        ns_kept = kept_by_bn(fp32, ctrl.strip())
        res["overlap"][scope] = {k: {"tp": len(tp_kept[k]), "netsculpt": len(v), "shared": len(v & tp_kept[k])}
                                 for k, v in ns_kept.items()}  # fmt: skip
        if scope == "filters":
            masked = pf.finetune(model, ctrl, args, "masked")
            stripped_model = ctrl.strip()
            res["finetune"]["masked"] = {"losses": [e["loss"] for e in masked["epochs_log"]],
                                         "top1": pf.top1(stripped_model, test)}  # fmt: skip
            ctrl2, model2 = create_compressed_model(copy.deepcopy(fp32), pf.pruning_config("L1", 0.5))
            plain = ctrl2.strip()
            stripped = pf.finetune(plain, None, args, "stripped")
            res["finetune"]["stripped"] = {"losses": [e["loss"] for e in stripped["epochs_log"]],
                                           "top1": pf.top1(plain, test)}  # fmt: skip
    print("| BatchNorm | TP kept | netsculpt kept (filters) | shared | netsculpt kept (filters_and_inputs) | shared |")
    print("|---|---|---|---|---|---|")
    for k, v in res["overlap"]["filters"].items():
        w = res["overlap"]["filters_and_inputs"][k]
        print(f"| {k} | {v['tp']} | {v['netsculpt']} | {v['shared']} | {w['netsculpt']} | {w['shared']} |")
    print("\n| fine-tune of the netsculpt-pruned model | loss per epoch | top-1 |\n|---|---|---|")
    for k, v in res["finetune"].items():
        print(f"| {k} | {', '.join(f'{x:.3f}' for x in v['losses'])} | {100 * v['top1']:.2f} |")
    a.out.write_text(json.dumps(res, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
