"""Config fuzzing (issue 10, "Benchmarks / figures"): mutants of 10 valid configs, each a located error or valid.

Ten valid configs cover every algorithm (INT8 QAT, HAWQ and manual mixed precision, magnitude / RB / const
sparsity, filter pruning, binarization, knowledge distillation, stacks) and both accuracy-aware loops. From each,
a seeded generator derives mutants with one of the operators below (delete or misspell a key, wrong type,
out-of-range / NaN / inf numbers, negative epochs, empty lists, unknown algorithm, nesting, swapped list/dict...).
Every mutant must either

- raise a ``ConfigError`` whose message starts with a config path at the mutation (the path itself, a path
  inside it, its parent, or a sibling for cross-field checks), leaving the model byte-identical and hook-free, or
- be valid: ``create_compressed_model`` compresses the model (and the accuracy-aware loop is created).

The configs and mutation operators live in ``_fuzz_mutants.py``. ``python -m tests.unit.reliability.test_config_fuzz``
prints the counts per config and operator.
"""

from __future__ import annotations

import copy
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from tests.unit.reliability._fuzz_mutants import CONFIGS, MUTANTS_PER_CONFIG, OPERATORS, Mutant, generate, path_text
from tests.unit.reliability._model_state import ModelRecord, hook_problems
from tests.zoo import TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.accuracy_aware import create_accuracy_aware_training_loop
from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.errors import ConfigError

# ---- running a mutant ----------------------------------------------------------------------------------
_LOADER = DataLoader(TensorDataset(torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0)),
                                   torch.arange(8) % 10), batch_size=4)
_PATH_RE = re.compile(r"^([A-Za-z_][\w\-]*(?:\[\d+\]|\.[^\s:.\[]+)*)")


def error_path(message: str) -> str | None:
    """The config path a message starts with (``compression[0].params.x: ...``), or None."""
    head = message.split(": ", 1)[0] if ": " in message else ""
    return head if head and _PATH_RE.fullmatch(head) else None


def _relation(err: str, mutated: str) -> str | None:
    if err == mutated:
        return "exact"
    if err.startswith((mutated + ".", mutated + "[")):
        return "descendant"
    parent = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", mutated)
    if err == parent:  # the list or object that holds the mutated value (``sample_size`` for ``sample_size[2]``)
        return "parent"
    if parent and err.startswith((parent + ".", parent + "[")):
        return "sibling"
    if err == "accuracy_aware_training.mode" and mutated.startswith("compression"):
        return "cross-section"  # the loop's mode and the compression stack disagree: either side locates it
    return None


@dataclass
class Outcome:
    mutant: Mutant
    kind: str  # "valid", "located", or "failure"
    detail: str = ""
    relation: str = ""


@dataclass
class FuzzReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(o.kind for o in self.outcomes)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "failure"]


def run_mutant(mutant: Mutant) -> Outcome:
    """Parse, compress and (for loop configs) create the loop; classify what happened."""
    torch.manual_seed(0)
    model = seeded(TinyResNet())
    before = ModelRecord.take(model)
    mutated = path_text(mutant.path)
    stage = "parse"
    try:
        cfg = NNCFConfig.from_dict(copy.deepcopy(mutant.config))
        cfg = register_default_init_args(cfg, _LOADER, criterion=torch.nn.CrossEntropyLoss())
        stage = "create_compressed_model"
        ctrl, compressed = create_compressed_model(model, cfg)
        stage = "create_accuracy_aware_training_loop"
        if cfg.accuracy_aware_training is not None:
            create_accuracy_aware_training_loop(cfg, ctrl, uncompressed_model_accuracy=80.0)
        stage = "forward"
        out = compressed(torch.randn(2, 3, 8, 8))
        if not torch.isfinite(out).all():
            return Outcome(mutant, "failure", "valid config but non-finite outputs")
        return Outcome(mutant, "valid")
    except ConfigError as err:
        problems = []
        if stage in ("create_accuracy_aware_training_loop", "forward"):
            problems.append(f"rejected only after the model was compressed (in {stage})")
        else:
            problems += before.differences(model) + hook_problems(model)
        where = error_path(str(err))
        relation = _relation(where, mutated) if where is not None else None
        if relation is None:
            problems.append(f"not located at {mutated!r}")
        if problems:
            return Outcome(mutant, "failure", f"{type(err).__name__}: {err} -- {'; '.join(problems)}")
        return Outcome(mutant, "located", str(err), relation or "")
    except Exception as err:  # anything else is a finding: report it with the mutant
        changed = before.differences(model) + hook_problems(model)
        note = f" (model changed: {changed[:3]})" if changed else ""
        return Outcome(mutant, "failure", f"{stage}: {type(err).__name__}: {err}{note}")


def run_all(per_config: int = MUTANTS_PER_CONFIG) -> FuzzReport:
    report = FuzzReport()
    for base in CONFIGS:
        report.outcomes += [run_mutant(m) for m in generate(base, per_config)]
    return report


# ---- tests -------------------------------------------------------------------------------------------
#: Mutants that expose bugs not fixed yet (each also run below as a strict xfail, so a fix is noticed).
KNOWN_FAILURES: dict[str, str] = {}


def _mutant_id(m: Mutant) -> str:
    return f"{m.base}#{m.index}"


@pytest.mark.parametrize("base", sorted(CONFIGS))
def test_base_config_is_valid_and_compresses(base: str) -> None:
    dummy = Mutant(base, -1, "none", (), copy.deepcopy(CONFIGS[base]), "unchanged")
    outcome = run_mutant(dummy)
    assert outcome.kind == "valid", outcome.detail


def test_generator_is_deterministic_and_covers_every_operator() -> None:
    first = [str(m) for m in generate("kd_qat")]
    assert first == [str(m) for m in generate("kd_qat")]
    ops = {m.operator for base in CONFIGS for m in generate(base)}
    assert ops == set(OPERATORS), set(OPERATORS) - ops
    assert sum(len(generate(base)) for base in CONFIGS) >= 500


@pytest.mark.parametrize("base", sorted(CONFIGS))
def test_mutants_are_located_errors_or_valid(base: str) -> None:
    mutants = generate(base)
    assert len(mutants) == MUTANTS_PER_CONFIG
    outcomes = [run_mutant(m) for m in mutants if _mutant_id(m) not in KNOWN_FAILURES]
    failures = [f"{o.mutant}: {o.detail}" for o in outcomes if o.kind == "failure"]
    assert not failures, f"{len(failures)} of {len(outcomes)} mutants failed:\n" + "\n".join(failures)
    kinds = Counter(o.kind for o in outcomes)
    assert kinds["located"] >= MUTANTS_PER_CONFIG // 3, kinds  # the generator must keep producing errors


@pytest.mark.parametrize("size", [[1, 3, 10**30, 8], [1, 3, 1e9, 8], [2**31, 2]])
def test_huge_sample_size_is_a_located_config_error(size: list[Any]) -> None:
    # found by this fuzzer: torch's raw TypeError (overflow) or an allocation failure while building example inputs
    with pytest.raises(ConfigError, match=r"^input_info\.sample_size: must describe at most 2\*\*31 elements"):
        NNCFConfig.from_dict({"input_info": {"sample_size": size}, "compression": {"algorithm": "quantization"}})


if KNOWN_FAILURES:  # defined only while there are known failures (an empty parametrize would just be skipped)

    @pytest.mark.parametrize(
        "mutant_id",
        [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=v)) for k, v in KNOWN_FAILURES.items()],
    )
    def test_known_failing_mutants(mutant_id: str) -> None:
        base, index = mutant_id.split("#")
        mutant = generate(base)[int(index)]
        outcome = run_mutant(mutant)
        assert outcome.kind != "failure", f"{mutant}: {outcome.detail}"


def _main() -> int:
    report = run_all()
    by_base: dict[str, Counter[str]] = {}
    by_op: dict[str, Counter[str]] = {}
    for o in report.outcomes:
        by_base.setdefault(o.mutant.base, Counter())[o.kind] += 1
        by_op.setdefault(o.mutant.operator, Counter())[o.kind] += 1
    rows = [("config", by_base), ("operator", by_op)]
    for title, table in rows:
        sys.stdout.write(f"\n| {title} | mutants | valid | located error | failures |\n|---|---|---|---|---|\n")
        for name, c in sorted(table.items()):
            sys.stdout.write(f"| {name} | {sum(c.values())} | {c['valid']} | {c['located']} | {c['failure']} |\n")
    total = report.counts()
    sys.stdout.write(f"| **total** | {len(report.outcomes)} | {total['valid']} | {total['located']} | "
                     f"{total['failure']} |\n")
    relations = Counter(o.relation for o in report.outcomes if o.kind == "located")
    sys.stdout.write(f"\nlocated at: {dict(relations)}\n")
    for o in report.failures():
        sys.stdout.write(f"FAIL {o.mutant}: {o.detail}\n")
    return 1 if report.failures() else 0


if __name__ == "__main__":
    raise SystemExit(_main())
