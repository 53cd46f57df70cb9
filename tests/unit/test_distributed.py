"""Issue 14 item 1: under torch.distributed every rank compresses exactly as rank 0 (2 gloo processes, each with
its own data shard and its own initial weights), and stays in step under DDP; without the synchronisation
(negative control) the replicas diverge behind identical shapes."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SIZE = [1, 3, 8, 8]
CONFIG: dict[str, Any] = {
    "input_info": {"sample_size": SIZE},
    "compression": [
        {"algorithm": "filter_pruning", "pruning_init": 0.3},
        {
            "algorithm": "quantization",
            "initializer": {
                "range": {"num_init_samples": 32},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 32},
                "precision": {
                    "type": "hawq",
                    "bits": [4, 8],
                    "num_data_points": 8,
                    "iter_number": 4,
                    "compression_ratio": 1.3,
                },
            },
        },
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str, sync: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from tests.zoo import TinyResNet, seeded

        import netsculpt.api
        from netsculpt import create_compressed_model, register_default_init_args

        if not sync:  # the negative control: what happens without netsculpt's synchronisation
            netsculpt.api.sync_compression = lambda *args: False  # type: ignore[attr-defined]
        g = torch.Generator().manual_seed(100 + rank)  # each rank its own shard
        x = torch.randn(64, 3, 8, 8, generator=g)
        x = x.abs() if rank == 1 else x  # rank 1's shard happens to be non-negative: its input quantizer is unsigned
        data = TensorDataset(x, torch.randint(0, 10, (64,), generator=g))
        loader = DataLoader(data, batch_size=16, shuffle=False)
        cfg = register_default_init_args(CONFIG, loader, criterion=nn.CrossEntropyLoss())
        model = seeded(TinyResNet(), seed=rank)  # each rank its own initial weights (DDP syncs them only later)
        ctrl, model = create_compressed_model(model, cfg)
        if sync:
            ctrl.distributed()
        after_init = {k: v.detach().clone() for k, v in model.state_dict().items()}
        policy = ctrl.current_policy().to_dict()
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
        for x, y in list(loader)[:2]:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(ddp(x), y) + ctrl.loss()
            loss.backward()
            opt.step()
            ctrl.scheduler.step()
        after_steps = {k: v.detach().clone() for k, v in model.state_dict().items()}
        probe = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            output = model.eval()(probe)
        torch.save(
            {
                "init": after_init,
                "steps": after_steps,
                "policy": policy,
                "out": output,
                "policy_after": ctrl.current_policy().to_dict(),
            },
            Path(out) / f"rank{rank}.pt",
        )
        dist.barrier()  # no rank tears gloo down while the other is still using it (abort at exit otherwise)
    finally:
        dist.destroy_process_group()


def _run(tmp_path: Path, sync: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path), sync), nprocs=2, join=True)
    return (
        torch.load(tmp_path / "rank0.pt", weights_only=False),
        torch.load(tmp_path / "rank1.pt", weights_only=False),
    )


def _differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    assert a.keys() == b.keys()
    return [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_two_ranks_with_different_data_and_weights_compress_identically(tmp_path: Path) -> None:
    r0, r1 = _run(tmp_path, sync=True)
    assert r0["policy"] == r1["policy"]  # bit widths (HAWQ on each shard) and kept channels
    assert _differing(r0["init"], r1["init"]) == []  # weights, quantizer ranges, masks, BN statistics
    assert _differing(r0["steps"], r1["steps"]) == []  # and still after DDP training steps
    assert torch.equal(r0["out"], r1["out"])
    assert any("_netsculpt" in k for k in r0["init"])  # compression tensors were compared too


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_negative_control_without_synchronisation_the_replicas_diverge(tmp_path: Path) -> None:
    r0, r1 = _run(tmp_path, sync=False)
    init = _differing(r0["init"], r1["init"])
    assert any("_netsculpt" in k for k in init), init  # quantizer ranges / masks differ behind equal shapes
    # DDP's wrap broadcasts rank 0's tensors, but not the decisions mirrored outside them (a quantizer's
    # signedness, bit widths, kept channels): the replicas still compute different functions after training
    assert not torch.equal(r0["out"], r1["out"])


def _loop_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from tests.unit.accuracy_aware._fakes import FakeCtrl, Recorder, model, optimizers

        from netsculpt import create_accuracy_aware_training_loop

        # each rank measures the metric on its own shard: rank 0 sees the epochs improve, rank 1 sees them worsen
        shard = [[60.0, 70.0, 75.0, 72.0], [80.0, 70.0, 66.0, 69.0]][rank]
        cfg = {
            "accuracy_aware_training": {
                "mode": "early_exit",
                "params": {"maximal_total_epochs": 3, "maximal_absolute_accuracy_degradation": 1.0},
            }
        }
        loop = create_accuracy_aware_training_loop(cfg, FakeCtrl(), uncompressed_model_accuracy=90.0)
        m = model()
        loop.run(m, Recorder(), lambda model, epoch: shard[epoch], optimizers(m), log_dir=Path(out) / f"r{rank}")
        torch.save(
            {
                "best_epoch": loop.statistics["best_epoch"],
                "accuracy": loop.statistics["accuracy"],
                "weight": m.weight.item(),
            },
            Path(out) / f"loop{rank}.pt",
        )
        dist.barrier()  # no rank tears gloo down while the other is still using it (abort at exit otherwise)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_accuracy_aware_loop_takes_the_same_decisions_on_every_rank(tmp_path: Path) -> None:
    mp.spawn(_loop_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"loop{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["accuracy"] == r1["accuracy"] == [70.0, 70.0, 70.5, 70.5]  # the mean over the two shards
    assert r0["best_epoch"] == r1["best_epoch"] == 2 and r0["weight"] == r1["weight"] == 2.0
    assert (tmp_path / "r0" / "accuracy_aware_statistics.json").is_file()
    assert not (tmp_path / "r1").exists() or not any((tmp_path / "r1").iterdir())  # rank 1 writes nothing


QAT: dict[str, Any] = {
    "input_info": {"sample_size": SIZE},
    "compression": {"algorithm": "quantization", "initializer": {
        "range": {"num_init_samples": 32, "type": "min_max"}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 32}}},
}  # fmt: skip


def _shard(rank: int) -> TensorDataset:
    g = torch.Generator().manual_seed(300 + rank)
    x = torch.randn(32, 3, 8, 8, generator=g) * (1.0 + rank)  # the shards differ in scale: ranges must pool them
    return TensorDataset(x, torch.randint(0, 10, (32,), generator=g))


def _batches(rank: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(500 + rank)
    return [torch.randn(8, 4, 5, generator=g) * (1 + rank) + rank for _ in range(3)]


def _qat_model(loader: DataLoader[Any], samples: int) -> dict[str, torch.Tensor]:
    from tests.zoo import TinyResNet, seeded

    from netsculpt import create_compressed_model, register_default_init_args

    cfg = {**QAT, "compression": {**QAT["compression"], "initializer": {
        "range": {"num_init_samples": samples, "type": "min_max"},
        "batchnorm_adaptation": {"num_bn_adaptation_samples": samples}}}}  # fmt: skip
    _, model = create_compressed_model(seeded(TinyResNet(), seed=0), register_default_init_args(cfg, loader))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _stats_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from netsculpt.nn.quantizer import RANGE_COLLECTOR_KINDS, make_range_collector, reduce_across_processes

        collectors = {f"{kind}/{axis}": make_range_collector(kind, reduce_axis=axis)
                      for kind in RANGE_COLLECTOR_KINDS for axis in (None, 1)}  # fmt: skip
        for x in _batches(rank):
            for c in collectors.values():
                c.update(x)
        assert reduce_across_processes(collectors)
        ranges = {k: c.range() for k, c in collectors.items()}
        state = _qat_model(DataLoader(_shard(rank), batch_size=16), 32)
        torch.save({"ranges": ranges, "state": state}, Path(out) / f"stats{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_range_and_batchnorm_statistics_are_those_of_all_shards_together(tmp_path: Path) -> None:
    from torch.utils.data import ConcatDataset

    from netsculpt.nn.quantizer import RANGE_COLLECTOR_KINDS, make_range_collector

    mp.spawn(_stats_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"stats{r}.pt", weights_only=True) for r in (0, 1))
    for kind in RANGE_COLLECTOR_KINDS:  # every collector kind, per tensor and per channel, against one process
        for axis in (None, 1):
            ref = make_range_collector(kind, reduce_axis=axis)
            for x in _batches(0) + _batches(1):
                ref.update(x)
            for got in (r0["ranges"][f"{kind}/{axis}"], r1["ranges"][f"{kind}/{axis}"]):
                assert all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, ref.range(), strict=True)), kind
    # end to end: quantizer ranges and BN statistics equal one process initialised on both shards in turn
    union = _qat_model(DataLoader(ConcatDataset([_shard(0), _shard(1)]), batch_size=16), 64)
    alone = _qat_model(DataLoader(_shard(0), batch_size=16), 32)  # negative control: rank 0's shard only
    compression = [k for k in union if "_netsculpt" in k or "running_" in k]
    assert compression
    for k in compression:
        assert torch.allclose(r0["state"][k], union[k], atol=1e-5), k
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert any(not torch.allclose(alone[k], union[k], atol=1e-5) for k in compression)
