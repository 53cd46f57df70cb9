"""Memory bank: teachers' logits on disk and back, float16 and top-k; the fine-tuning term in a user loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.unit.search.ekg._data import dataset, searched
from torch.utils.data import DataLoader

from netsculpt.errors import ConfigError
from netsculpt.search.ekg import EKGDistiller, IndexedViews, MemoryBank, build_memory_bank, ekg_kl, merge_views
from netsculpt.search.ekg._net import forward_logits, subnet


def test_bank_round_trip_to_disk_and_matches_teachers(tmp_path: Path) -> None:
    ds = dataset(64)
    ctrl, model, _, res = searched(bank_path=str(tmp_path / "bank.npy"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    bank = build_memory_bank(ctrl, res, ds, batch_size=32, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # model restored
    assert bank.values.dtype == np.float16 and bank.values.shape == (64, len(res.teachers()), 10)
    again = MemoryBank.load(tmp_path / "bank.npy")
    assert torch.equal(again.lookup([3, 7, 63]), bank.lookup([3, 7, 63]))
    assert again.teacher_steps == bank.teacher_steps
    # row j of teacher 0 = the teacher's logits on the same batch (BN statistics of that batch)
    t0 = res.teachers()[0]
    assert all(torch.equal(res.weights[k], v) for k, v in model.state_dict().items())  # search left W_warm-up
    with subnet(ctrl, res.history[t0].pruned):
        ref = forward_logits(model, [(ds.tensors[0][:32], ds.tensors[1][:32])])
    assert torch.allclose(bank.lookup(range(32))[:, 0], ref, atol=2e-2)
    saved = tmp_path / "copy.bank"
    bank.save(saved)
    assert torch.equal(MemoryBank.load(saved, mmap=False).lookup([0, 1]), bank.lookup([0, 1]))


def test_top_k_bank_keeps_the_largest_logits(tmp_path: Path) -> None:
    ds = dataset(48)
    ctrl, _, _, res = searched(top_k=3, bank_dtype="float32")
    top = build_memory_bank(ctrl, res, ds, progress=False)
    assert top.indices is not None and top.values.shape[2] == 3
    rows = top.lookup([0, 1, 2])
    assert rows.shape == (3, len(res.teachers()), 10)
    top.save(tmp_path / "top.npy")
    assert torch.equal(MemoryBank.load(tmp_path / "top.npy").lookup([0, 1, 2]), rows)


def test_distiller_in_user_loop_matches_formula() -> None:
    ds = dataset(32)
    ctrl, model, _, res = searched()
    bank = build_memory_bank(ctrl, res, ds, progress=False)
    res.apply(ctrl)
    distiller = EKGDistiller(bank, temperature=4.0).attach(model)
    loader = DataLoader(IndexedViews(ds, lambda x: x + 0.05 * torch.randn_like(x)), batch_size=8, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for views, y, idx in loader:
        x, target = merge_views(views, y)
        distiller.set_indices(idx)
        out = model(x)
        kl = distiller.loss()
        assert torch.allclose(kl, ekg_kl(out.reshape(len(idx), 2, -1), bank.lookup(idx), 4.0))
        loss = F.cross_entropy(out, target) + ctrl.loss() + kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    distiller.detach()


def test_located_errors_of_bank_and_distiller(tmp_path: Path) -> None:
    import pytest

    from netsculpt.errors import ConfigError

    bank = MemoryBank(np.zeros((4, 2, 3), dtype=np.float16), None, 3, [0, 1], [0.1, 0.2])
    with pytest.raises(ConfigError, match=r"MemoryBank.lookup: sample indices must be in \[0, 4\); got 2..9"):
        bank.lookup([2, 9])
    with pytest.raises(ConfigError, match="not found"):
        MemoryBank.load(tmp_path / "missing.npy")
    distiller = EKGDistiller(bank)
    with pytest.raises(ConfigError, match="set_indices"):
        distiller.loss()
    distiller.set_indices([0, 1])
    with pytest.raises(ConfigError, match="3 output rows for 2 indices"):
        distiller.loss(torch.zeros(3, 3))
    with pytest.raises(ConfigError, match="views: must be >= 1"):
        IndexedViews(dataset(4), views=0)


def test_distiller_term_joins_ctrl_loss_and_leaves_with_detach() -> None:
    ds = dataset(16)
    ctrl, model, _, res = searched()
    bank = build_memory_bank(ctrl, res, ds, progress=False)
    res.apply(ctrl)
    base = ctrl.loss().detach().clone()
    distiller = EKGDistiller(bank, temperature=2.0).attach(model, ctrl)
    views, y, idx = next(iter(DataLoader(IndexedViews(ds, views=2), batch_size=8)))
    x, _ = merge_views(views, y)
    model.train()
    distiller.set_indices(idx)
    out = model(x)
    expected = base + ekg_kl(out.reshape(len(idx), 2, -1), bank.lookup(idx), 2.0)
    total = ctrl.loss()
    assert torch.allclose(total, expected) and total.requires_grad
    with pytest.raises(ConfigError, match="already added"):
        EKGDistiller(bank).attach(model, ctrl)  # a second term under the same name is refused
    distiller.detach()
    assert torch.equal(ctrl.loss().detach(), base)  # negative control: after detach the term is gone
    EKGDistiller(bank).attach(model, ctrl).detach()  # the name is free again
