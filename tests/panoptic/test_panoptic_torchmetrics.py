"""fastiou.panoptic.panoptic_quality against torchmetrics' PanopticQuality."""

import numpy as np
import pytest
from conftest import require_peer

import fastiou.panoptic as fp

torch = require_peer("torch")
detection = require_peer("torchmetrics.detection", reason="torchmetrics is not installed")

THINGS, STUFFS = {0, 1}, {6, 7}


def _maps(seed: int, allow_unknown: bool):
    rng = np.random.default_rng(seed)
    b, h, w = 2, 12, 14
    target = np.stack([rng.choice([0, 1, 6, 7, 9], (b, h, w)), rng.integers(0, 3, (b, h, w))], -1)
    target[:, :6, :7] = [1, 1]  # large segments that can match
    target[:, 6:, :7] = [6, 0]
    target[:, 6:, 10:] = [0, 2]
    pred = target.copy()
    pred[:, :3] = [0, 2]
    pred[0, 5:, 9:] = [7, 0]
    pred[1, 7:, 11:] = [0, 1]
    noise = rng.random((b, h, w)) < 0.15
    pred[..., 0][noise] = 9 if allow_unknown else 7  # 9 is in neither set: VOID when allowed
    if not allow_unknown:
        pred[..., 0][pred[..., 0] == 9] = 6
    return pred, target


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "options",
    [{}, {"return_sq_and_rq": True}, {"return_per_class": True},
     {"return_per_class": True, "return_sq_and_rq": True}],
)  # fmt: skip
def test_equals_torchmetrics(seed, options):
    allow = seed % 2 == 1
    pred, target = _maps(seed, allow)
    metric = detection.PanopticQuality(THINGS, STUFFS, allow_unknown_preds_category=allow,
                                       **options)  # fmt: skip
    metric.update(torch.from_numpy(pred), torch.from_numpy(target))
    expected = metric.compute().double()
    got = fp.panoptic_quality(torch.from_numpy(pred), torch.from_numpy(target), THINGS, STUFFS,
                              allow_unknown_preds_category=allow, **options)  # fmt: skip
    assert isinstance(got, torch.Tensor) and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0, equal_nan=True)
    numpy_result = fp.panoptic_quality(pred, target, THINGS, STUFFS,
                                       allow_unknown_preds_category=allow, **options)  # fmt: skip
    np.testing.assert_allclose(numpy_result, expected.numpy(), atol=1e-12, rtol=0)


def test_errors():
    pred, target = _maps(0, False)
    pred[0, 0, 0] = [9, 0]
    with pytest.raises(ValueError, match="Unknown categories found in preds"):
        fp.panoptic_quality(pred, target, THINGS, STUFFS)
    with pytest.raises(ValueError, match="same shape"):
        fp.panoptic_quality(pred[:1], target, THINGS, STUFFS)
    with pytest.raises(ValueError, match="share categories"):
        fp.panoptic_quality(pred, target, {1}, {1})


def test_many_classes_equal_torchmetrics():
    # 150 classes: the float32 RQ mean must be summed as torch sums it
    rng = np.random.default_rng(0)
    things, stuffs = set(range(100)), set(range(100, 150))
    target = np.stack([rng.integers(0, 150, (2, 30, 30)), rng.integers(0, 3, (2, 30, 30))], -1)
    target = target.repeat(2, 1).repeat(2, 2)
    pred = target.copy()
    changed = rng.random(pred.shape[:3]) < 0.3
    pred[..., 0][changed] = rng.integers(0, 150, changed.sum())
    metric = detection.PanopticQuality(things, stuffs, return_sq_and_rq=True)
    metric.update(torch.from_numpy(pred), torch.from_numpy(target))
    got = fp.panoptic_quality(pred, target, things, stuffs, return_sq_and_rq=True)
    np.testing.assert_allclose(got, metric.compute().double().numpy(), atol=1e-12, rtol=0)
