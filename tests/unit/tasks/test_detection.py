"""Detector targets, decoding against hand-computed boxes, loss, and mAP@0.5 by pycocotools."""

from __future__ import annotations

import math

import pytest
import torch

from netsculpt.errors import ConfigError
from netsculpt.tasks.detection import decode, detection_loss, encode_targets, mean_ap50, target_dicts

C = 10


def _targets() -> torch.Tensor:
    t = torch.full((2, 3, 5), -1.0)
    t[0, 0] = torch.tensor([3, 8, 16, 24, 40])  # centre (16, 28) -> cell (x 2, y 3), 16 x 24 px
    t[0, 1] = torch.tensor([7, 40, 2, 62, 30])  # centre (51, 16) -> cell (6, 2), 22 x 28 px
    t[1, 0] = torch.tensor([0, 0, 0, 28, 20])  # centre (14, 10) -> cell (1, 1)
    return t


def _perfect_prediction(targets: torch.Tensor) -> torch.Tensor:
    """Dense predictions that decode exactly to ``targets``: logits +-10, offsets through logit()."""
    heat, boxes, _ = encode_targets(targets, C, (8, 8))
    off = boxes[:, :2].clamp(1e-4, 1 - 1e-4)
    return torch.cat([heat * 20 - 10, torch.log(off / (1 - off)), boxes[:, 2:]], 1)


def test_encode_hand_case() -> None:
    heat, boxes, pos = encode_targets(_targets(), C, (8, 8))
    assert heat.sum() == 3 and pos.sum() == 3
    assert heat[0, 3, 3, 2] == 1 and heat[0, 7, 2, 6] == 1 and heat[1, 0, 1, 1] == 1
    torch.testing.assert_close(boxes[0, :, 3, 2], torch.tensor([0.0, 0.5, math.log(2), math.log(3)]))
    torch.testing.assert_close(boxes[0, :, 2, 6], torch.tensor([51 / 8 - 6, 0.0, math.log(22 / 8), math.log(28 / 8)]))


def test_decode_hand_case() -> None:
    pred = torch.full((1, C + 4, 8, 8), -10.0)
    pred[0, C:] = 0.0
    pred[0, 3, 3, 2] = 5.0  # class 3 at cell x=2, y=3
    pred[0, C + 2, 3, 2] = math.log(2.0)  # width 2 cells = 16 px
    pred[0, C + 3, 3, 2] = math.log(3.0)  # height 3 cells = 24 px
    (det,) = decode(pred, C)
    assert det["labels"].tolist() == [3]
    torch.testing.assert_close(det["scores"], torch.tensor([1 / (1 + math.exp(-5))]))
    # centre ((2 + 0.5) * 8, (3 + 0.5) * 8) = (20, 28), 16 x 24
    torch.testing.assert_close(det["boxes"], torch.tensor([[12.0, 16.0, 28.0, 40.0]]))


def test_decode_keeps_local_maxima_only_and_clips() -> None:
    pred = torch.full((1, C + 4, 8, 8), -10.0)
    pred[0, C:] = 0.0
    pred[0, 1, 0, 0], pred[0, 1, 0, 1] = 4.0, 3.0  # neighbour of a stronger peak: suppressed
    pred[0, C + 2:, 0, 0] = math.log(4.0)  # 32 x 32 box centred at (4, 4): clipped at 0
    (det,) = decode(pred, C)
    assert det["labels"].tolist() == [1]
    torch.testing.assert_close(det["boxes"], torch.tensor([[0.0, 0.0, 20.0, 20.0]]))


def test_decode_inverts_encode() -> None:
    targets = _targets()
    dets = decode(_perfect_prediction(targets), C)
    for det, truth in zip(dets, target_dicts(targets)):
        order = det["labels"].argsort()
        assert det["labels"][order].tolist() == sorted(truth["labels"].tolist())
        want = truth["boxes"][truth["labels"].argsort()]
        torch.testing.assert_close(det["boxes"][order], want, atol=2e-3, rtol=0)


def test_loss_is_small_for_a_perfect_prediction() -> None:
    targets = _targets()
    perfect = detection_loss(_perfect_prediction(targets), targets, C)
    blank = detection_loss(torch.zeros(2, C + 4, 8, 8), targets, C)
    assert float(perfect) < 1e-2 < float(blank)


def test_wrong_prediction_shape_raises() -> None:
    with pytest.raises(ConfigError, match="predictions must be"):
        decode(torch.zeros(1, C, 8, 8), C)


def _gt() -> list[dict[str, torch.Tensor]]:
    return [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 40.0], [40.0, 5.0, 60.0, 25.0]]), "labels": torch.tensor([1, 4])},
            {"boxes": torch.tensor([[0.0, 0.0, 28.0, 28.0]]), "labels": torch.tensor([1])}]


def test_map_of_a_perfect_prediction_is_one() -> None:
    pytest.importorskip("pycocotools")
    preds = [{**g, "scores": torch.ones(len(g["labels"]))} for g in _gt()]
    assert mean_ap50(preds, _gt()) == pytest.approx(1.0)


def test_map_of_shifted_or_mislabelled_boxes_is_below_one() -> None:
    pytest.importorskip("pycocotools")
    shifted = [{"boxes": g["boxes"] + torch.tensor([12.0, 0.0, 12.0, 0.0]), "labels": g["labels"],
                "scores": torch.ones(len(g["labels"]))} for g in _gt()]  # IoU < 0.5 for every box
    assert mean_ap50(shifted, _gt()) < 0.5
    relabelled = [{"boxes": g["boxes"], "labels": (g["labels"] + 1) % 10, "scores": torch.ones(len(g["labels"]))}
                  for g in _gt()]
    assert mean_ap50(relabelled, _gt()) < 1.0
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}] * 2
    assert mean_ap50(empty, _gt()) == 0.0


def test_map_rejects_mismatched_lists() -> None:
    with pytest.raises(ConfigError, match="predictions"):
        mean_ap50([], _gt())
