"""install_pycocotools_shim: an unmodified pycocotools evaluation script, run in a subprocess,
gets fastiou's objects and pycocotools' numbers; the shim is reversible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from conftest import require_peer
from instance_sets import pycocotools_run, random_segm

import fastiou.coco

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    import pycocotools.mask as maskUtils

    gt = COCO(sys.argv[1])
    dt = gt.loadRes(sys.argv[2])
    E = COCOeval(gt, dt, "segm")
    E.evaluate()
    E.accumulate()
    E.summarize()
    rle = gt.annToRLE(gt.loadAnns(gt.getAnnIds())[0])
    print("RESULT", json.dumps({
        "coco": type(gt).__module__, "cocoeval": type(E).__module__,
        "mask": maskUtils.__name__, "stats": E.stats.tolist(), "area": int(maskUtils.area(rle)),
    }))
    """
)
RUNNER = (
    "import sys, runpy, fastiou.coco; fastiou.coco.install_pycocotools_shim(); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def test_unmodified_script_gets_fastiou(tmp_path):
    require_peer("pycocotools", reason="pycocotools is the oracle")
    gt, dt = random_segm(9)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    (tmp_path / "script.py").write_text(SCRIPT)
    root = str(Path(fastiou.coco.__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "script.py"), str(tmp_path / "gt.json"),
         str(tmp_path / "dt.json")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["coco"] == "fastiou.coco._coco"
    assert result["cocoeval"] == "fastiou.coco._eval"
    assert result["mask"].startswith("fastiou.coco")
    theirs = pycocotools_run(gt, dt, "segm")
    assert np.array_equal(np.array(result["stats"]), theirs.stats)


def test_shim_is_reversible():
    before = {n: sys.modules.get(n) for n in ("pycocotools", "pycocotools.coco")}
    with fastiou.coco.install_pycocotools_shim() as shim:
        import pycocotools.coco
        from pycocotools.cocoeval import COCOeval

        assert pycocotools.coco.COCO is fastiou.coco.COCO
        assert COCOeval is fastiou.coco.COCOeval
        assert shim.installed
    assert not shim.installed
    for name, module in before.items():
        assert sys.modules.get(name) is module
