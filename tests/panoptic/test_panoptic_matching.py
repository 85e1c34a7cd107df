"""The compiled matcher (``_cython.match_pairs``) against the reference (``match_image``): the
same true positives, in the same order, with the same IoUs bit for bit; and every image whose
data breaks a rule left to the reference, which raises the error naming it."""

import numpy as np
import pytest

from fastiou.panoptic import PanopticDataError, match_image
from fastiou.panoptic._quality import image_stats
from fastiou.panoptic._reference import pair_counts

_cython = pytest.importorskip("fastiou.panoptic._cython")

INDEX = {1: 0, 2: 1, 7: 2, 100: 3}  # category id -> index


def random_image(rng, h=12, w=14):
    """Blocky random id maps with random segments_info: the prediction relabels the ground
    truth (segments kept, merged, split by noise, put over VOID), with crowd, areas given or
    not, and wrong categories."""
    n_gt = rng.integers(1, 7)
    gt_ids = rng.choice(np.arange(1, 300), n_gt, replace=False)
    gt = np.kron(rng.choice(np.r_[0, gt_ids], (h // 2, w // 2)), np.ones((2, 2), int))
    pred_ids = rng.choice(np.arange(300, 600), n_gt + 1, replace=False)
    relabel = dict(
        zip(
            np.r_[0, gt_ids].tolist(),
            rng.choice(np.r_[0, pred_ids], n_gt + 1).tolist(),
            strict=True,
        )
    )
    pred = np.vectorize(relabel.get)(gt)
    noise = rng.random(pred.shape) < 0.15
    pred[noise] = rng.choice(pred_ids, noise.sum())
    cats = list(INDEX)
    gt_info, category_of = [], {}
    for g in gt_ids.tolist():
        info = {"id": g, "category_id": int(rng.choice(cats))}
        category_of[relabel[g]] = info["category_id"]
        if rng.random() < 0.25:
            info["iscrowd"] = 1
        if rng.random() < 0.3:
            info["area"] = int((gt == g).sum() + rng.integers(0, 4))
        gt_info.append(info)
    pred_info = [
        {"id": p, "category_id": category_of.get(p, 1) if rng.random() < 0.8 else 2}
        for p in np.unique(pred).tolist()
        if p != 0
    ]
    rng.shuffle(pred_info)
    return gt, pred, gt_info, pred_info


@pytest.mark.parametrize("seed", range(6))
def test_random_images_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    matched = 0
    for _ in range(150):
        gt, pred, gt_info, pred_info = random_image(rng)
        keys, counts = pair_counts(
            gt.reshape(-1).astype(np.uint32), pred.reshape(-1).astype(np.uint32)
        )
        expected = match_image(keys, counts, gt_info, pred_info, INDEX)
        got = _cython.match_pairs(keys, counts, gt_info, pred_info, INDEX)
        assert got is not None
        assert tuple(got) == tuple(expected)  # lists equal: IoUs bit for bit, tp order
        matched += len(expected.tp)
    assert matched > 20  # the sets do match segments


def _image():
    gt = np.array([[5, 5, 7, 7], [5, 5, 7, 0]], np.uint32).reshape(-1)
    pred = np.array([[3, 3, 3, 9], [3, 3, 9, 9]], np.uint32).reshape(-1)
    gt_info = [{"id": 5, "category_id": 1}, {"id": 7, "category_id": 100}]
    pred_info = [{"id": 3, "category_id": 1}, {"id": 9, "category_id": 100}]
    return (*pair_counts(gt, pred), gt_info, pred_info)


def test_by_hand():
    keys, counts, gt_info, pred_info = _image()
    # thing 5 (4 px) vs 3 (5 px): 4/5; stuff 7 (3 px) vs 9 (3 px, one on VOID): 2/3
    assert _cython.match_pairs(keys, counts, gt_info, pred_info, INDEX) == (
        [0, 3],
        [],
        [],
        [4 / 5, 2 / 3],
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda g, p: p.pop(), r"\[9\] are in the PNG"),
        (lambda g, p: p.append({"id": 11, "category_id": 1}), r"\[11\] are in segments_info"),
        (lambda g, p: p.append(dict(p[0])), "listed twice"),
        (lambda g, p: p[0].update(category_id=55), "unknown category_id 55"),
        (lambda g, p: g[0].update(category_id=55), "unknown category_id 55"),
        (lambda g, p: g[0].update(id=0), "id 0 is not in"),
        (lambda g, p: p[0].pop("id"), "needs an integer 'id'"),
        (lambda g, p: g[0].update(area=-1), "has area -1"),
    ],
)
def test_bad_data_is_left_to_the_reference(change, message):
    keys, counts, gt_info, pred_info = _image()
    change(gt_info, pred_info)
    assert _cython.match_pairs(keys, counts, gt_info, pred_info, INDEX) is None
    with pytest.raises(PanopticDataError, match=message):
        image_stats(keys, counts, gt_info, pred_info, INDEX, image_id=4)


def test_odd_entries_the_reference_accepts():
    # a float id, a string category, an area beyond 2^52: the reference converts them with
    # int(); the kernel leaves what it does not take to it, and the answer is the reference's
    keys, counts, gt_info, pred_info = _image()
    gt_info[0]["id"] = 5.0
    pred_info[1]["category_id"] = "100"
    gt_info[1]["area"] = 1 << 60
    expected = match_image(keys, counts, gt_info, pred_info, INDEX)
    assert image_stats(keys, counts, gt_info, pred_info, INDEX) == expected
    assert expected.tp == [0]
    with pytest.raises(ValueError, match="keys and"):
        _cython.match_pairs(keys, counts[:1], gt_info, pred_info, INDEX)
