"""pycocotools' ``evalImgs``: the per-image, per-category, per-area-range records of
``evaluateImg``, built on request from the engine's matches (see ``_evaluate.GroupMatches``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._evaluate import GroupMatches


def eval_imgs(
    g: GroupMatches, img_ids: list, cat_ids: list, area_rngs: list, max_det: int, n_thr: int
) -> list[dict[str, Any] | None]:
    """The records in pycocotools' order (category, area range, image), None where a group has
    neither ground truth nor detections; same keys, values and dtypes as ``evaluateImg``."""
    n_img, n_area = len(img_ids), len(area_rngs)
    out: list[dict[str, Any] | None] = [None] * (len(cat_ids) * n_area * n_img)
    det_group = {key: s for s, key in enumerate(g.det_keys.tolist())}
    gt_group = {key: s for s, key in enumerate(g.gt_keys.tolist())}
    det_ids, det_scores = g.det_id.tolist(), g.det_score.tolist()
    for key in sorted(det_group.keys() | gt_group.keys()):
        k, i = divmod(key, g.n_images)
        s = det_group.get(key)
        d0, d1 = (int(g.d_start[s]), int(g.d_end[s])) if s is not None else (0, 0)
        s = gt_group.get(key)
        g0, g1 = (int(g.gt_starts[s]), int(g.gt_starts[s + 1])) if s is not None else (0, 0)
        D, G = d1 - d0, g1 - g0
        gt_area, gt_ignore, gt_id = g.gt_area[g0:g1], g.gt_ignore[g0:g1], g.gt_id[g0:g1]
        det_area = g.det_area[d0:d1]
        for a, rng in enumerate(area_rngs):
            lo, hi = rng
            ig = ((gt_ignore != 0) | (gt_area < lo) | (gt_area > hi)).astype(np.int64)
            order = np.argsort(ig, kind="mergesort")  # ignored ground truth last
            where = np.empty(G, np.int64)
            where[order] = np.arange(G)
            m = g.matched[d0:d1, a, :n_thr].T  # [T, D]: position in the group, -1: none
            hit = m >= 0
            dtm = np.zeros((n_thr, D))
            gtm = np.zeros((n_thr, G))
            dt_ig = np.zeros((n_thr, D), bool)
            if hit.any():
                t_idx, d_idx = np.nonzero(hit)  # row-major: later detections overwrite
                mm = m[hit]
                dtm[hit] = gt_id[mm]
                gtm[t_idx, where[mm]] = g.det_id[d0 + d_idx]
                dt_ig[hit] = ig[mm] != 0
            outside = (det_area < lo) | (det_area > hi)
            dt_ig |= (dtm == 0) & outside[None, :]
            out[(k * n_area + a) * n_img + i] = {
                "image_id": img_ids[i],
                "category_id": cat_ids[k],
                "aRng": rng,
                "maxDet": max_det,
                "dtIds": det_ids[d0:d1],
                "gtIds": gt_id[order].tolist(),
                "dtMatches": dtm,
                "gtMatches": gtm,
                "dtScores": det_scores[d0:d1],
                "gtIgnore": ig[order] if G else np.array([]),
                "dtIgnore": dt_ig,
            }
    return out
