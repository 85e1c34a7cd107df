"""fastiou.dask on a dask.distributed LocalCluster on this machine (127.0.0.1 only)."""

import json

import numpy as np
import pytest
from conftest import require_peer

da = require_peer("dask.array", reason="dask is not installed (pip install fastiou[dask])")
distributed = require_peer("distributed", reason="dask.distributed is not installed")

import fastiou.dask  # noqa: E402
from fastiou.cli import main  # noqa: E402
from fastiou.semantic._files import BadFile, Pair  # noqa: E402
from fastiou.semantic._reference import oracle  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        host="127.0.0.1",
        protocol="tcp://",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def test_labels_over_blocks(client):
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, (3, 40, 50)).astype(np.int16)
    target[rng.random(target.shape) < 0.1] = 255
    prediction = rng.integers(0, 5, target.shape).astype(np.uint8)
    dt = da.from_array(target, chunks=(1, 17, 23))
    dp = da.from_array(prediction, chunks=(2, 40, 9))  # other chunks: rechunked like the target
    got = fastiou.dask.confusion_matrix(dp, dt, 5, ignore_index=255, split_every=3)
    np.testing.assert_array_equal(got, oracle(prediction, target, 5, ignore_index=255))
    lazy = fastiou.dask.confusion_matrix(dp, dt, 5, ignore_index=255, compute=False)
    np.testing.assert_array_equal(lazy.compute(), got)


def test_logits_over_blocks(client):
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((2, 4, 30, 40)).astype(np.float32)
    target = rng.integers(0, 4, (2, 30, 40)).astype(np.uint8)
    ds = da.from_array(scores, chunks=(1, 2, 16, 16))  # the class axis is split: rechunked
    dt = da.from_array(target, chunks=(1, 10, 25))
    got = fastiou.dask.confusion_matrix(ds, dt, 4)
    np.testing.assert_array_equal(got, oracle(scores, target, 4, class_axis=1))


def test_errors_reach_the_caller(client):
    target = np.zeros((20, 20), np.uint8)
    target[13, 7] = 9
    with pytest.raises(ValueError, match="target label 9"):
        fastiou.dask.confusion_matrix(np.zeros_like(target), da.from_array(target, chunks=5), 4)
    with pytest.raises(ValueError, match="same shape"):
        fastiou.dask.confusion_matrix(da.zeros((4, 4), dtype=int), da.zeros((4, 5), dtype=int), 2)


def test_options_are_those_of_confusion_matrix(client, tmp_path):
    """Every keyword of fastiou.confusion_matrix reaches the workers' calls; unknown or bad ones
    fail on the client, before anything is scheduled."""
    rng = np.random.default_rng(3)
    target = rng.integers(0, 5, (30, 40)).astype(np.uint8)  # reduced: 0 -> 255, 1..4 -> 0..3
    prediction = rng.integers(0, 4, target.shape).astype(np.uint8)
    options = {
        "ignore_index": [255, 3],
        "label_map": {1: 2, 2: 1},
        "reduce_zero_label": True,
        "backend": "numpy",
    }
    got = fastiou.dask.confusion_matrix(
        da.from_array(prediction, chunks=7), da.from_array(target, chunks=11), 4, **options
    )
    np.testing.assert_array_equal(got, fastiou.confusion_matrix(prediction, target, 4, **options))
    del options["backend"]
    np.testing.assert_array_equal(got, oracle(prediction, target, 4, **options))
    dt = da.from_array(target, chunks=11)
    with pytest.raises(
        TypeError, match=r"confusion_matrix\(\) got unexpected keyword arguments: ignore"
    ):
        fastiou.dask.confusion_matrix(dt, dt, 4, ignore=255)
    with pytest.raises(TypeError, match="reduce_zero_label must be True or False"):
        fastiou.dask.confusion_matrix(dt, dt, 4, reduce_zero_label=1)
    with pytest.raises(TypeError, match=r"confusion_matrix_files\(\) got unexpected keyword"):
        fastiou.dask.confusion_matrix_files([], 4, label_mapping={})
    with pytest.raises(ValueError, match="num_classes"):
        fastiou.dask.confusion_matrix_files([], 0)


def write_pairs(tmp_path, n, rng):
    from PIL import Image

    pairs, arrays = [], []
    for i in range(n):
        gt = rng.integers(0, 3, (8, 9)).astype(np.uint8)
        pred = rng.integers(0, 3, (8, 9)).astype(np.uint8)
        (tmp_path / "gt").mkdir(exist_ok=True)
        (tmp_path / "pred").mkdir(exist_ok=True)
        Image.fromarray(gt).save(tmp_path / "gt" / f"{i}.png")
        Image.fromarray(pred).save(tmp_path / "pred" / f"{i}.png")
        pairs.append((tmp_path / "pred" / f"{i}.png", tmp_path / "gt" / f"{i}.png"))
        arrays.append((pred, gt))
    return pairs, arrays


def test_bag_of_files(client, tmp_path):
    require_peer("PIL")
    pairs, arrays = write_pairs(tmp_path, 7, np.random.default_rng(2))
    totals = fastiou.dask.confusion_matrix_files(pairs, 3, npartitions=3, split_every=2)
    np.testing.assert_array_equal(totals.matrix, sum(oracle(p, t, 3) for p, t in arrays))
    assert totals.images == 7 and totals.skipped == []
    (tmp_path / "pred" / "4.png").write_bytes(b"broken")
    with pytest.raises(BadFile, match="4.png: not a readable PNG"):
        fastiou.dask.confusion_matrix_files(pairs, 3, npartitions=3)
    totals = fastiou.dask.confusion_matrix_files(
        [Pair(str(t), str(p), str(t)) for p, t in pairs], 3, skip_bad=True
    )
    assert totals.images == 6 and [b.path for b in totals.skipped] == [str(pairs[4][0])]
    np.testing.assert_array_equal(
        totals.matrix, sum(oracle(p, t, 3) for i, (p, t) in enumerate(arrays) if i != 4)
    )


def test_cli_on_the_cluster(client, tmp_path, capsys):
    require_peer("PIL")
    pairs, arrays = write_pairs(tmp_path, 5, np.random.default_rng(3))
    address = client.scheduler.address
    args = ["seg", str(tmp_path / "pred"), str(tmp_path / "gt"), "--num-classes", "3"]
    assert main([*args, "--dask-scheduler", address, "--json", str(tmp_path / "o.json")]) == 0
    document = json.loads((tmp_path / "o.json").read_text())
    assert document["confusion_matrix"] == sum(oracle(p, t, 3) for p, t in arrays).tolist()
    assert "on 2 Dask worker(s)" in capsys.readouterr().err
