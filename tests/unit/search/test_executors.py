"""Serial, process-pool and Dask executors agree; the result log makes a killed search resume without repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.unit.search._fixtures import compressed, config, loaders, tiny

from netsculpt.search import (
    EvalTask,
    Policy,
    ProcessPoolExecutor,
    ResultLog,
    SearchSpace,
    SerialExecutor,
    TrainHooks,
    evaluate_many,
)


def _task() -> tuple[EvalTask, SearchSpace]:
    train, val = loaders()
    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    hooks = TrainHooks(train_loader=train, val_loader=val)
    return EvalTask(ctrl, hooks, bn_recalibration_samples=32, finetune_steps=2, seed=0), space


def _metrics(results: list) -> list[tuple[float, int]]:
    return [(r.metric, r.cost.bops) for r in results]


@pytest.mark.slow
def test_process_pool_and_dask_match_serial() -> None:
    task, space = _task()
    policies = [Policy.random(space, s) for s in range(4)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker: convolution sums depend on the thread count
    try:
        serial = evaluate_many(task, policies, progress=False)
    finally:
        torch.set_num_threads(threads)
    with ProcessPoolExecutor(workers=2) as pool:
        pooled = evaluate_many(task, policies, executor=pool, progress=False)
    assert _metrics(pooled) == _metrics(serial), (_metrics(pooled), _metrics(serial))
    assert all(r.extra["task_unpickled"] == 1 for r in pooled), [r.extra for r in pooled]  # once per worker
    distributed = pytest.importorskip("dask.distributed")
    from netsculpt.search import DaskExecutor

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client, DaskExecutor(client) as ex:
        dask_results = evaluate_many(task, policies, executor=ex, progress=False)
    assert _metrics(dask_results) == _metrics(serial), (_metrics(dask_results), _metrics(serial))
    assert all(r.extra["task_unpickled"] == 1 for r in dask_results), [r.extra for r in dask_results]


class _Killed(Exception):
    pass


def test_killed_search_resumes_from_the_log_without_repeating(tmp_path: Path) -> None:
    task, space = _task()
    policies = [Policy.random(space, s) for s in range(5)] + [Policy.random(space, 0)]  # one duplicate
    path = tmp_path / "log.jsonl"
    seen: list[str] = []

    def die_after_two(result: object) -> None:
        seen.append("x")
        if len(seen) == 2:
            raise _Killed

    with pytest.raises(_Killed):
        evaluate_many(
            task, policies, executor=SerialExecutor(), log=ResultLog(path), progress=False, on_result=die_after_two
        )
    assert len(path.read_text().splitlines()) == 2
    with path.open("a") as f:
        f.write('{"model": "torn')  # the process died mid-write
    evaluated: list[object] = []
    log = ResultLog(path)
    results = evaluate_many(task, policies, log=log, progress=False, on_result=evaluated.append)
    assert len(evaluated) == 3  # 5 distinct policies, 2 already logged
    assert len(results) == 6 and results[0] == results[5]
    again: list[object] = []
    evaluate_many(task, policies, log=ResultLog(path), progress=False, on_result=again.append)
    assert not again
    other = EvalTask(task.ctrl, task.hooks, bn_recalibration_samples=32, finetune_steps=3, seed=0)
    assert other.fingerprint != task.fingerprint  # other settings, other labels


def test_log_rejects_a_corrupt_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text("not json\n" + json.dumps({"x": 1}) + "\n")
    with pytest.raises(ValueError, match="log.jsonl:1: not a result record"):
        ResultLog(path)


def test_unpicklable_task_gets_a_clear_error() -> None:
    task, space = _task()
    task.hooks.validate_fn = lambda m: 0.0  # noqa: E731  (lambdas do not pickle)
    with pytest.raises(Exception, match="cannot be pickled"), ProcessPoolExecutor(workers=1) as pool:
        evaluate_many(task, [Policy.random(space, 0)], executor=pool, progress=False)
