"""Labels come from the platform's evaluate, live in the result log, resume and are never measured twice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tests.unit.search._fixtures import loaders
from tests.unit.search.seernet._helpers import tiny_space

from netsculpt.search import EvalTask, ResultLog, TrainHooks
from netsculpt.search import seernet as sn


def _task() -> tuple[EvalTask, sn.PolicyEncoding]:
    ctrl, _, enc = tiny_space()
    train, val = loaders(n=32, batch=16)
    return EvalTask(ctrl, TrainHooks(train_loader=train, val_loader=val), bn_recalibration_samples=16,
                    finetune_steps=1), enc


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_label_log_resumes_and_deduplicates(tmp_path: Path) -> None:
    task, enc = _task()
    path = tmp_path / "labels.jsonl"
    policies = sn.random_policies(enc, 3, np.random.default_rng(0))
    first = sn.label(task, [policies[0], policies[1], policies[0]], log=ResultLog(path), progress=False)
    assert len(_lines(path)) == 2 and first[0] == first[2]
    # a new process: the log is read back, only the new policy is measured
    again = sn.label(task, policies, log=ResultLog(path), progress=False)
    assert len(_lines(path)) == 3
    assert [r.metric for r in again[:2]] == [r.metric for r in first[:2]]
    # a torn last line (killed mid-write) is dropped, the rest resumes
    path.write_text(path.read_text() + '{"model": "x", "poli')
    log = ResultLog(path)
    assert len(log) == 3 and len(sn.logged_results(task, log)) == 3
    idx, x, y = sn.dataset(enc, sn.logged_results(task, log))
    assert x.shape == (3, enc.dim) and np.allclose(y, [r.metric for r in again])


def test_run_reuses_labels_across_budgets_and_saves_the_predictor(tmp_path: Path) -> None:
    task, enc = _task()
    path = tmp_path / "labels.jsonl"
    ref = sn.reference_cost(enc.space)
    cfg = sn.SeerNetConfig(initial=4, rounds=1, per_round=2, predictor=sn.PredictorConfig(epochs=50),
                           select=sn.SelectConfig(population=30, parents=10, mutations=5, crossovers=15,
                                                  generations=2),
                           search=sn.BarrierConfig(steps=30))
    out = sn.run(task, enc.space, [0.5 * ref], config=cfg, log=ResultLog(path), progress=False)
    assert len(out.labels) == 6 and len(_lines(path)) == 6
    assert out.searches[0].cost.bops <= 0.5 * ref
    assert path.with_suffix(".predictor.pt").exists()
    out2 = sn.run(task, enc.space, [0.3 * ref, 0.7 * ref], config=cfg, log=ResultLog(path), progress=False)
    assert len(_lines(path)) == 6  # the same seed draws the same policies: nothing measured again
    assert [s.cost.bops <= b * ref for s, b in zip(out2.searches, (0.3, 0.7), strict=True)] == [True, True]
    predictor, meta = sn.load_predictor(path.with_suffix(".predictor.pt"))
    assert meta["labels"] == 6 and predictor.dim == enc.dim
