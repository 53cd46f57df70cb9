"""Where candidate evaluations run: in this process, in a local process pool, or on a Dask cluster.

Every executor follows one ``concurrent.futures``-style contract: ``start(task)`` ships the ``EvalTask`` (the
controller with its model, the training hooks, the settings) once, ``submit(policy)`` returns a
``concurrent.futures.Future`` of an ``EvalResult``, ``shutdown()`` releases the workers.

- ``SerialExecutor`` (default): evaluates on the live controller, in the caller's thread.
- ``ProcessPoolExecutor``: ``spawn``ed local processes with one torch thread each; the task is pickled once and
  unpickled once per worker (the pool's initializer), never per candidate.
- ``DaskExecutor``: ``dask.distributed.Client(address).get_executor()``; the task is scattered to every worker
  once (``broadcast=True``) and candidates refer to it (``pip install netsculpt[dask]``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import pickle
import threading
from typing import Any

import torch

from netsculpt.errors import ConfigError
from netsculpt.search.evaluate import EvalResult, evaluate
from netsculpt.search.log import fingerprint
from netsculpt.search.policy import Policy
from netsculpt.train.hooks import TrainHooks

__all__ = ["DaskExecutor", "EvalTask", "ProcessPoolExecutor", "SearchExecutor", "SerialExecutor"]

logger = logging.getLogger(__name__)


class EvalTask:
    """What every worker needs to evaluate policies: the controller (and its model), the hooks, the settings."""

    def __init__(
        self,
        ctrl: Any,
        hooks: TrainHooks,
        *,
        bn_recalibration_samples: int = 512,
        finetune_steps: int = 0,
        seed: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        self.ctrl = ctrl
        self.hooks = hooks
        self.optimizer = optimizer  # trains every candidate from its saved state (pickled with the model it steps)
        self.bn_recalibration_samples = int(bn_recalibration_samples)
        self.finetune_steps = int(finetune_steps)
        self.seed = int(seed)
        self._fingerprint: str | None = None
        self._lock: threading.Lock | None = threading.Lock()

    def settings(self) -> dict[str, Any]:
        """The evaluation settings (part of the fingerprint: other settings give other metrics)."""
        return {
            "bn_recalibration_samples": self.bn_recalibration_samples,
            "finetune_steps": self.finetune_steps,
            "seed": self.seed,
        }

    @property
    def fingerprint(self) -> str:
        """Model fingerprint and settings: the result log's model key."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.ctrl.model, self.settings())
        return self._fingerprint

    def run(self, policy: dict[str, Any]) -> EvalResult:
        """Evaluate one policy (plain dict) on this task's controller; one at a time per process."""
        if self._lock is None:
            self._lock = threading.Lock()
        with self._lock:
            return evaluate(
                self.ctrl,
                Policy.from_dict(policy),
                self.hooks,
                bn_recalibration_samples=self.bn_recalibration_samples,
                finetune_steps=self.finetune_steps,
                seed=self.seed,
                optimizer=self.optimizer,
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        global _UNPICKLED
        _UNPICKLED += 1  # how often a task reached this process (a worker should receive it once)
        self.__dict__.update(state)


_UNPICKLED = 0


def _mark(result: EvalResult) -> EvalResult:
    result.extra["worker"] = os.getpid()
    result.extra["task_unpickled"] = _UNPICKLED
    return result


class SearchExecutor:
    """Base: ``start(task)``, ``submit(policy) -> Future[EvalResult]``, ``shutdown()``; a context manager."""

    workers = 1

    def start(self, task: EvalTask) -> None:
        """Ship ``task`` to the workers (once)."""
        raise NotImplementedError

    def submit(self, policy: dict[str, Any]) -> cf.Future[EvalResult]:
        """Evaluate ``policy`` (plain dict) on the started task."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release the workers."""

    def __enter__(self) -> SearchExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class SerialExecutor(SearchExecutor):
    """Evaluates in the caller's process, on the live controller (no copy of the model)."""

    def __init__(self) -> None:
        self._task: EvalTask | None = None

    def start(self, task: EvalTask) -> None:
        self._task = task

    def submit(self, policy: dict[str, Any]) -> cf.Future[EvalResult]:
        if self._task is None:
            raise RuntimeError("SerialExecutor: call start(task) first")
        future: cf.Future[EvalResult] = cf.Future()
        try:
            future.set_result(self._task.run(policy))
        except BaseException as err:  # delivered through the future, as concurrent.futures does
            future.set_exception(err)
        return future


# ---- local process pool ----------------------------------------------------------------------------
_WORKER_TASK: EvalTask | None = None


def _init_worker(payload: bytes, threads: int) -> None:
    global _WORKER_TASK
    torch.set_num_threads(threads)
    _WORKER_TASK = pickle.loads(payload)


def _run_in_worker(policy: dict[str, Any]) -> EvalResult:
    if _WORKER_TASK is None:
        raise RuntimeError("search worker was not initialised with a task")
    return _mark(_WORKER_TASK.run(policy))


def _pickled(task: EvalTask) -> bytes:
    try:
        return pickle.dumps(task)
    except Exception as err:  # pickling user objects can raise anything
        raise ConfigError(
            f"search executor: the task cannot be pickled for worker processes ({type(err).__name__}: {err}). "
            "Loaders, losses and callbacks in TrainHooks must be picklable (module-level functions, no lambdas); "
            "use SerialExecutor otherwise"
        ) from err


class ProcessPoolExecutor(SearchExecutor):
    """A local pool of ``spawn``ed processes, one torch thread each; the task reaches each worker once."""

    def __init__(self, workers: int = 2, threads_per_worker: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"ProcessPoolExecutor.workers: must be >= 1; got {workers}")
        self.workers = workers
        self.threads = threads_per_worker
        self._pool: cf.ProcessPoolExecutor | None = None

    def start(self, task: EvalTask) -> None:
        self.shutdown()
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(_pickled(task), self.threads),
        )

    def submit(self, policy: dict[str, Any]) -> cf.Future[EvalResult]:
        if self._pool is None:
            raise RuntimeError("ProcessPoolExecutor: call start(task) first")
        return self._pool.submit(_run_in_worker, policy)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# ---- Dask ------------------------------------------------------------------------------------------
def _run_scattered(task: EvalTask, policy: dict[str, Any]) -> EvalResult:
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return _mark(task.run(policy))


class DaskExecutor(SearchExecutor):
    """Runs on a Dask cluster: ``DaskExecutor("tcp://scheduler:8786")`` or ``DaskExecutor(client)``.

    The task is scattered to every worker once; each worker evaluates one candidate at a time per task
    (``threads_per_worker=1`` clusters use every core). Needs ``pip install netsculpt[dask]``.
    """

    def __init__(self, client_or_address: Any) -> None:
        try:
            from dask.distributed import Client
        except ImportError as err:
            raise ConfigError("DaskExecutor needs dask.distributed: pip install 'netsculpt[dask]'") from err
        self.client = client_or_address if isinstance(client_or_address, Client) else Client(client_or_address)
        self._owns_client = not isinstance(client_or_address, Client)
        self._executor = self.client.get_executor(pure=False)
        self._task: Any = None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def start(self, task: EvalTask) -> None:
        _pickled(task)  # a located error before anything is sent
        self._task = self.client.scatter(task, broadcast=True, hash=False)

    def submit(self, policy: dict[str, Any]) -> cf.Future[EvalResult]:
        if self._task is None:
            raise RuntimeError("DaskExecutor: call start(task) first")
        future: cf.Future[EvalResult] = self._executor.submit(_run_scattered, self._task, policy)
        return future

    def shutdown(self) -> None:
        self._task = None
        if self._owns_client:
            self.client.close()
