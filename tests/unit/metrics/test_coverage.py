"""Issue 11 item 6: weights an algorithm cannot reach are listed in one warning and counted in statistics()."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import torch
from torch import nn

from netsculpt import create_compressed_model


class AddmmLinear(nn.Module):
    """GPT-2's Conv1D pattern: the weight is (in, out) and the op is ``addmm``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.proj = AddmmLinear(8, 8)
        self.wn = nn.utils.parametrizations.weight_norm(nn.Linear(8, 8))
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.head(self.wn(self.proj(y[:, -1])))


def _cfg(algo: dict[str, Any]) -> dict[str, Any]:
    return {"input_info": {"sample_size": [2, 5, 6]}, "compression": algo}


_WN = "wn.weight (ParametrizedLinear, read by _weight_norm; weight norm: remove it"


@pytest.mark.parametrize(("algo", "left"), [
    ({"algorithm": "quantization"}, ["lstm.weight_ih_l0 (LSTM, read by lstm)", "lstm.weight_hh_l0", _WN]),
    ({"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}, [_WN]),  # LSTM and addmm weights are masked
])
def test_unsupported_weights_are_listed_and_counted(
    algo: dict[str, Any], left: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="netsculpt.metrics.coverage"):
        ctrl, _ = create_compressed_model(Net(), _cfg(algo))
    name = algo["algorithm"]
    assert ctrl.statistics().as_dict()[name]["weights_left_uncompressed"] == len(left)
    text = caplog.text
    assert f"{len(left)} weight tensor(s) in scope are left uncompressed" in text
    assert all(item in text for item in left)
    assert "head.weight" not in text and "proj.weight" not in text  # compressed: not listed (negative control)


def test_weights_outside_the_scopes_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    algo = {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5, "ignored_scopes": ["lstm", "proj", "wn"]}
    with caplog.at_level(logging.WARNING, logger="netsculpt.metrics.coverage"):
        ctrl, _ = create_compressed_model(Net(), _cfg(algo))
    assert "weights_left_uncompressed" not in ctrl.statistics().as_dict()["magnitude_sparsity"]
    assert "left uncompressed" not in caplog.text
