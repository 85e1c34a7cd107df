"""fastiou.dask.pq_compute on a dask.distributed LocalCluster (127.0.0.1 only)."""

import pytest
from conftest import require_peer
from panoptic_cases import write_cases

distributed = require_peer("distributed", reason="dask.distributed is not installed")


import fastiou.dask  # noqa: E402
import fastiou.panoptic as fp  # noqa: E402
from fastiou.bench.panoptic_sets import make_panoptic_set  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       host="127.0.0.1", protocol="tcp://",
                                       dashboard_address=None)  # fmt: skip
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _close(a, b, tol=1e-12):
    for group in ("All", "Things", "Stuff"):
        assert a[group]["n"] == b[group]["n"]
        assert all(abs(a[group][k] - b[group][k]) <= tol for k in ("pq", "sq", "rq"))


def test_bag_equals_pq_compute(client, tmp_path):
    gt_json, pred_json = make_panoptic_set(tmp_path, 24, (32, 40), seed=5)
    expected = fp.pq_compute(gt_json, pred_json)
    _close(fastiou.dask.pq_compute(gt_json, pred_json, npartitions=5, split_every=2), expected)
    merged = fastiou.dask.pq_compute(gt_json, pred_json, compute=False).compute()
    assert isinstance(merged, fp.PanopticQuality) and merged.images == 24
    _close(merged.compute(), expected)


def test_errors_reach_the_caller(client, tmp_path):
    gt_json, pred_json = write_cases(tmp_path, ["void", "crowd"])
    (tmp_path / "pred" / "crowd.png").unlink()
    with pytest.raises(FileNotFoundError, match="image 2: predicted PNG"):
        fastiou.dask.pq_compute(gt_json, pred_json)
