"""After a resume the statistics and the scheduler counters are the saved ones (issue 10, finding 6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import create_compressed_model

SIZE = [1, 3, 8, 8]
ALGOS: dict[str, Any] = {
    "quantization": {"algorithm": "quantization"},
    "magnitude_sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.3},
    "rb_sparsity": {"algorithm": "rb_sparsity", "sparsity_init": 0.3},
    "const_sparsity": {"algorithm": "const_sparsity"},
    "filter_pruning": {"algorithm": "filter_pruning", "pruning_init": 0.3},
    "binarization": {"algorithm": "binarization"},
    "knowledge_distillation": {"algorithm": "knowledge_distillation", "type": "mse"},
}
def _stats(ctrl: Any) -> str:
    return json.dumps(ctrl.statistics().as_dict(), sort_keys=True)  # NaN (no KD loss yet) compares equal as text


STACKS = [(n,) for n in ALGOS] + [("filter_pruning", "magnitude_sparsity", "quantization"),
                                  ("knowledge_distillation", "filter_pruning")]


@pytest.mark.parametrize("names", STACKS, ids=lambda n: "+".join(n))
def test_resumed_statistics_and_counters_equal_the_saved_ones(names: tuple[str, ...]) -> None:
    cfg = {"input_info": {"sample_size": SIZE}, "compression": [ALGOS[n] for n in names]}
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    for _ in range(3):
        ctrl.scheduler.epoch_step()
        for _ in range(2):
            ctrl.scheduler.step()
    state, sd = ctrl.get_compression_state(), model.state_dict()
    # a differently initialised model: every value must come from the state and the checkpoint; distillation's
    # teacher is the exception (it must be the model the run started from, or the resume is a StateError)
    start_seed = 0 if "knowledge_distillation" in names else 7
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet(), seed=start_seed), cfg, state)
    model2.load_state_dict(sd)
    assert (ctrl2.scheduler.current_epoch, ctrl2.scheduler.current_step) == (2, 5)
    assert _stats(ctrl2) == _stats(ctrl)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model2.eval()(x), model.eval()(x))
    for c in (ctrl, ctrl2):  # one more epoch: both continue from the same point
        c.scheduler.epoch_step()
    assert ctrl2.scheduler.current_epoch == ctrl.scheduler.current_epoch == 3
    assert _stats(ctrl2) == _stats(ctrl)


def test_pruning_statistics_after_resume_report_the_loaded_masks() -> None:
    cfg = {"input_info": {"sample_size": SIZE}, "compression": ALGOS["filter_pruning"]}
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    state, sd = ctrl.get_compression_state(), model.state_dict()
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet()), cfg, state)
    model2.load_state_dict(sd)
    stats = ctrl2.statistics().as_dict()["filter_pruning"]
    assert stats["filter_pruning_rate"] > 0 and stats["flops_removed"] > 0
    assert stats["params_after"] < stats["params_before"]
