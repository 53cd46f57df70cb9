"""Two gloo processes train one DεpS supernet under DDP (each its own data shard): both ranks run the same subnets
and hold identical weights after steps across the switch."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

STEPS = 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from tests.unit.nas.training._tiny import batches, tiny_supernet

        from netsculpt.nas import config_to_json
        from netsculpt.nas.training import ScheduleParams, SupernetTrainer

        net = tiny_supernet(seed=rank)  # different initial weights: DDP broadcasts rank 0's
        ddp = nn.parallel.DistributedDataParallel(net.model, find_unused_parameters=True)
        opt = torch.optim.SGD(net.model.parameters(), lr=0.1, momentum=0.9)
        p = ScheduleParams(schedule="deps", epochs=6, steps_per_epoch=1, lr=0.1, min_lr=0.0)  # switch at step 3
        tr = SupernetTrainer(net, opt, p, forward_model=ddp)
        configs = []
        for x, y in batches(STEPS, seed=10 + rank):  # each rank its own shard
            configs.append([config_to_json(s.config) for s in tr.plan()])
            tr.train_step(x, y)
        weights = {k: v.detach().clone() for k, v in net.model.named_parameters()}
        torch.save({"configs": configs, "weights": weights}, Path(out) / f"rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_ranks_run_the_same_subnets_and_stay_identical(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["configs"] == r1["configs"]
    assert [len(c) for c in r0["configs"]] == [1, 1, 1, 4, 4, 4]  # full model alone, then the sandwich
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k
    assert any(not torch.equal(v, torch.zeros_like(v)) for v in r0["weights"].values())
