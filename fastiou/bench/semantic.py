"""Benchmarks of the confusion family: workloads and implementations for ``fastiou bench``.

Tasks: ``confusion`` (label maps), ``confusion_loaded`` (the same beside a torch job holding
every core), ``confusion_logits`` (scores reduced by argmax on the fly) and
``confusion_sweep`` (Cython against numba around ``_config.CYTHON_MAX_WORK["confusion"]``).
Peers: np.bincount (the ``fast_hist`` idiom of FCN/DeepLab evaluation code), hotcoco's
SemanticEval (Rust), mmseg's ``intersect_and_union`` (torch.histc), torchmetrics and sklearn when
installed.
"""

from __future__ import annotations

import numpy as np

from ._registry import Data, implementation, torch_job, workload

IGNORE = 255


def label_maps(shape, num_classes: int, ignore_fraction: float = 0.0, seed: int = 0) -> Data:
    """Seeded uint8 ground truth (``ignore_fraction`` of it 255) and prediction."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, shape, dtype=np.uint8)
    if ignore_fraction:
        target[rng.random(shape) < ignore_fraction] = IGNORE
    prediction = rng.integers(0, num_classes, shape, dtype=np.uint8)
    return {"prediction": prediction, "target": target, "num_classes": num_classes}


def _maps(shape, num_classes, ignore_fraction=0.0):
    return lambda: label_maps(shape, num_classes, ignore_fraction)


workload("confusion", "1024x2048 uint8, 19 classes, 10% ignore", unit=("Mpx/s", 2.097152))(
    _maps((1024, 2048), 19, 0.1)
)
workload("confusion", "512x512 uint8, 150 classes", unit=("Mpx/s", 0.262144))(
    _maps((512, 512), 150)
)
workload("confusion", "64x64 uint8, 19 classes", quick=True)(_maps((64, 64), 19, 0.1))


# Beside a torch job whose threads hold every core (the loaded case): fastiou at its
# default thread count against fastiou on one thread under the same load, and hotcoco.
workload("confusion_loaded", "512x512 uint8, 150 classes, torch job beside", beside=torch_job)(
    _maps((512, 512), 150)
)
_LOADED_CITYSCAPES = "1024x2048 uint8, 19 classes, 10% ignore, torch job beside"
workload("confusion_loaded", _LOADED_CITYSCAPES, beside=torch_job)(_maps((1024, 2048), 19, 0.1))


@workload("confusion_logits", "19x1024x2048 float32 logits, 10% ignore", unit=("Mpx/s", 2.097152))
def _logits() -> Data:
    data = label_maps((1024, 2048), 19, 0.1)
    rng = np.random.default_rng(1)
    data["prediction"] = rng.standard_normal((19, 1024, 2048), dtype=np.float32)
    return data


# The auto threshold: the same label maps on Cython and numba, by size.
for _side in (256, 1024, 2048, 4096):
    workload("confusion_sweep", f"{_side}x{_side} uint8, 19 classes")(
        _maps((_side, _side), 19, 0.1)
    )


def _fastiou(backend: str):
    def prepare(data: Data):
        import fastiou

        p, t, c = data["prediction"], data["target"], data["num_classes"]
        return lambda: fastiou.confusion_matrix(p, t, c, ignore_index=IGNORE, backend=backend)

    return prepare


for _task in ("confusion", "confusion_logits", "confusion_sweep"):
    if _task != "confusion_sweep":
        implementation(_task, "fastiou")(_fastiou("auto"))
    implementation(_task, "fastiou[cython]")(_fastiou("cython"))
    implementation(_task, "fastiou[numba]")(_fastiou("numba"))


@implementation("confusion_loaded", "fastiou")
def _fastiou_loaded(data: Data):
    import torch  # noqa: F401 - the load beside needs torch: without it this row means nothing

    return _fastiou("auto")(data)


@implementation("confusion_loaded", "fastiou, 1 thread")
def _fastiou_one_thread(data: Data):
    import torch  # noqa: F401

    import fastiou

    call = _fastiou("auto")(data)

    def one_thread():
        fastiou.set_num_threads(1)
        try:
            return call()
        finally:
            fastiou.set_num_threads(None)

    return one_thread


def fast_hist(target: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """The np.bincount idiom of FCN/DeepLab evaluation scripts (255 falls outside [0, C))."""
    k = (target >= 0) & (target < num_classes)
    index = num_classes * target[k].astype(int) + prediction[k]
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


@implementation("confusion", "np.bincount (fast_hist)", peer=True)
def _bincount(data: Data):
    p, t, c = data["prediction"], data["target"], data["num_classes"]
    return lambda: fast_hist(t, p, c)


@implementation("confusion_logits", "np.argmax + np.bincount", peer=True)
def _argmax_bincount(data: Data):
    p, t, c = data["prediction"], data["target"], data["num_classes"]
    return lambda: fast_hist(t, np.argmax(p, axis=0), c)


@implementation("confusion_logits", "torch.argmax + torch.bincount", peer=True)
def _torch_argmax_bincount(data: Data):
    import torch

    p, t = torch.from_numpy(data["prediction"]), torch.from_numpy(data["target"])
    c = data["num_classes"]

    def call():
        k = t != IGNORE
        index = c * t[k].long() + p.argmax(0)[k]
        return torch.bincount(index, minlength=c * c).reshape(c, c)

    return call


@implementation("confusion", "hotcoco SemanticEval.update", peer=True)
@implementation("confusion_loaded", "hotcoco SemanticEval.update", peer=True)
def _hotcoco(data: Data):
    from hotcoco import semantic

    p, t, c = data["prediction"], data["target"], data["num_classes"]
    evaluator = semantic.SemanticEval(c, ignore_index=IGNORE)
    return lambda: evaluator.update(t, p)


@implementation("confusion", "mmseg intersect_and_union (torch.histc)", peer=True)
def _mmseg(data: Data):
    import torch

    p, t = torch.from_numpy(data["prediction"]), torch.from_numpy(data["target"])
    c = data["num_classes"]

    def call():  # mmseg.evaluation.metrics.IoUMetric.intersect_and_union, per image
        mask = t != IGNORE
        pred, label = p[mask], t[mask]
        intersect = pred[pred == label]
        area_intersect = torch.histc(intersect.float(), bins=c, min=0, max=c - 1)
        area_pred = torch.histc(pred.float(), bins=c, min=0, max=c - 1)
        area_label = torch.histc(label.float(), bins=c, min=0, max=c - 1)
        return area_intersect, area_pred + area_label - area_intersect, area_pred, area_label

    return call


@implementation("confusion", "torchmetrics multiclass_confusion_matrix", peer=True)
def _torchmetrics(data: Data):
    import torch
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    p = torch.from_numpy(data["prediction"]).long()
    t = torch.from_numpy(data["target"]).long()
    c = data["num_classes"]
    return lambda: multiclass_confusion_matrix(p, t, c, ignore_index=IGNORE, validate_args=False)


@implementation("confusion", "sklearn confusion_matrix", peer=True)
def _sklearn(data: Data):
    from sklearn.metrics import confusion_matrix

    p, t = data["prediction"], data["target"]
    labels = np.arange(data["num_classes"])

    def call():
        k = t != IGNORE  # sklearn has no ignore value
        return confusion_matrix(t[k], p[k], labels=labels)

    return call
