/* pycocotools' computeOks (cocoeval.py), operation for operation, in two steps around numpy's
 * exp (so that exp rounds exactly as numpy's does on this machine, SIMD or not):
 *   fi_oks_counts: per (detection, ground truth) pair its term count (the ground truth's
 *                  visible keypoints, else all K, measured to its doubled box as pycocotools
 *                  does), or -1 where a cheap bound shows the OKS below the lowest threshold;
 *   fi_oks_terms:  the terms e_k of the pairs counted, packed one pair after the other;
 *   fi_oks_sum:    sum(exp(-e)) / count, summed in numpy's order (0.0 + pairwise sum).
 * Included by _ckernels.pyx. */
#ifndef FASTIOU_COCO_KEYPOINTS_H
#define FASTIOU_COCO_KEYPOINTS_H

#include "_native.h"

/* The limits of ground truth g's doubled box and its scale, as pycocotools' computeOks. */
#define FI_OKS_GT_SETUP(bb, area)                                                         \
    double x0 = (bb)[0] - (bb)[2], x1 = (bb)[0] + (bb)[2] * 2;                            \
    double y0 = (bb)[1] - (bb)[3], y1 = (bb)[1] + (bb)[3] * 2;                            \
    double scale = (area) + 2.220446049250313e-16; /* gt['area'] + np.spacing(1) */

/* dx^2 + dy^2 of keypoint k: to the ground truth's keypoint when it has visible ones (k1 > 0),
 * else the distance outside its doubled box (np.max((z, v), axis=0): max(0, v), NaN kept). */
FI_EXACT_FN double fi_oks_d2(const double *D3, const double *G3, int64_t k, int64_t k1,
                             double x0, double x1, double y0, double y1) {
    FI_NO_CONTRACT
    double dx, dy, a, b;
    if (k1 > 0) {
        dx = D3[3 * k] - G3[3 * k];
        dy = D3[3 * k + 1] - G3[3 * k + 1];
    } else {
        /* "v <= 0 ? 0 : v" is max(0, v) with NaN kept, and compiles without a branch (the
         * comparisons are unpredictable here) */
        a = x0 - D3[3 * k];
        b = D3[3 * k] - x1;
        dx = (a <= 0.0 ? 0.0 : a) + (b <= 0.0 ? 0.0 : b);
        a = y0 - D3[3 * k + 1];
        b = D3[3 * k + 1] - y1;
        dy = (a <= 0.0 ? 0.0 : a) + (b <= 0.0 ? 0.0 : b);
    }
    return dx * dx + dy * dy;
}

/* The keypoints a pair's terms are taken at: ground truth G3's visible ones, or all K when it
 * has none (k1 = 0). Returns their count q; idx holds K ints (the caller's scratch, one per
 * thread). A list, not a test per term:
 * the visibility flags are unpredictable branches, which cost more than the arithmetic. */
FI_EXACT_FN int64_t fi_oks_keys(const double *G3, int64_t K, int32_t *idx, int64_t *k1) {
    int64_t k, q = 0;
    for (k = 0; k < K; k++) {
        idx[q] = (int32_t)k;
        q += G3[3 * k + 2] > 0;
    }
    *k1 = q;
    if (q == 0)
        for (k = 0; k < K; k++) idx[q++] = (int32_t)k;
    return q;
}

/* Detection d's keypoints are row drow[d] of dk (rows of 3K values), ground truth g's row
 * grow[g] of gk, gbox (xywh) and garea; vars: K = (2 sigma)^2, inv: 1 / vars; idx: K ints of
 * scratch; dbox: per detection row, the box (x min, x max, y min, y max) of its K keypoints,
 * NaN where one is NaN.
 *
 * Pass 1, fi_oks_counts: n[d * G + g] = the pair's term count (the ground truth's visible
 * keypoints, or all K when it has none), -1 where its OKS is surely below `lowest` (> 0; 0 or
 * less: never), or -2 where it is exactly 1 (every term 0). safe_vars: every vars[k] and
 * inv[k] is finite and > 0 (else no shortcut is taken). The bound: exp(v) >= 1 + v + v^2 / 2 for v >= 0, so each exp(-e) is at most
 * 1 / (1 + e + e^2 / 2). It is evaluated with e' = d2 * inv[k] * (0.5 / scale), within 3e-16
 * of e relatively (no division but the bound's); the margin 1e-9 covers that, the rounding of
 * the bound and of numpy's exp and sum (each below 1e-13 here). A NaN or negative e' (a negative
 * area) leaves the pair to be computed. */
FI_EXACT_FN void fi_oks_counts(const double *dk, const int64_t *drow, int64_t D, const double *gk,
                               const double *gbox, const double *garea, const int64_t *grow,
                               int64_t G, const double *inv, int64_t K, double lowest,
                               int safe_vars, const double *dbox, int32_t *idx,
                               int32_t *n) {
    FI_NO_CONTRACT
    int64_t d, g, j, k1, q;
    for (g = 0; g < G; g++) {
        const double *G3 = gk + 3 * K * grow[g];
        FI_OKS_GT_SETUP(gbox + 4 * grow[g], garea[grow[g]])
        double half = 0.5 / scale, wmin = INFINITY, gx0 = x0, gx1 = x1, gy0 = y0, gy1 = y1;
        q = fi_oks_keys(G3, K, idx, &k1);
        for (j = 0; j < q; j++) wmin = inv[idx[j]] < wmin ? inv[idx[j]] : wmin;
        if (k1 > 0) { /* the box of the visible keypoints */
            gx0 = gy0 = INFINITY;
            gx1 = gy1 = -INFINITY;
            for (j = 0; j < q; j++) {
                double x = G3[3 * idx[j]], y = G3[3 * idx[j] + 1];
                gx0 = x < gx0 ? x : gx0;
                gx1 = x > gx1 ? x : gx1;
                gy0 = y < gy0 ? y : gy0;
                gy1 = y > gy1 ? y : gy1;
            }
            for (j = 0; j < q; j++) /* a NaN coordinate: not safe (min and max skip it) */
                if (G3[3 * idx[j]] != G3[3 * idx[j]] || G3[3 * idx[j] + 1] != G3[3 * idx[j] + 1])
                    gx0 = NAN;
        }
        /* safe: no term can be NaN (finite coordinates and scale > 0, finite positive vars and
         * inverses), so every term is >= 0 and each exp(-e) at most 1 */
        int gsafe = safe_vars && isfinite(scale) && scale > 0 && isfinite(gx0) && isfinite(gx1) &&
                    isfinite(gy0) && isfinite(gy1);
        /* no visible keypoint: a detection whose keypoints all lie in the doubled box has every
         * d2 exactly 0, so every term 0 and its OKS exactly 1 */
        int ones = k1 == 0 && gsafe;
        for (d = 0; d < D; d++) {
            int32_t count = (int32_t)q;
            if (lowest > 0 || ones) {
                const double *D3 = dk + 3 * K * drow[d], *db = dbox + 4 * drow[d];
                /* The box of the detection's K keypoints (NaN: one is NaN). First one bound for
                 * every term: the gap between it and the ground truth's box (of its visible
                 * keypoints, or its doubled box) is at most each term's |dx|, |dy| (rounding
                 * is monotone), and min(inv) at most each inv[k]. */
                double dx0 = db[0], dx1 = db[1], dy0 = db[2], dy1 = db[3];
                int safe = gsafe && isfinite(dx0) && isfinite(dx1) && isfinite(dy0) &&
                           isfinite(dy1);
                if (ones && safe && dx0 >= x0 && dx1 <= x1 && dy0 >= y0 && dy1 <= y1) {
                    n[d * G + g] = -2;
                    continue;
                }
                if (!(lowest > 0)) {
                    n[d * G + g] = count;
                    continue;
                }
                double bound = 0.0, limit = (lowest - 1e-9) * (double)q;
                int prunable = 1, below = 0;
                if (safe) {
                    double gapx, gapy, a, b;
                    if (k1 > 0) {
                        a = gx0 - dx1;
                        b = dx0 - gx1;
                        gapx = a > b ? a : b;
                        gapx = gapx > 0.0 ? gapx : 0.0;
                        a = gy0 - dy1;
                        b = dy0 - gy1;
                        gapy = a > b ? a : b;
                        gapy = gapy > 0.0 ? gapy : 0.0;
                    } else {
                        a = x0 - dx1;
                        b = dx0 - x1;
                        gapx = (a > 0.0 ? a : 0.0) + (b > 0.0 ? b : 0.0);
                        a = y0 - dy1;
                        b = dy0 - y1;
                        gapy = (a > 0.0 ? a : 0.0) + (b > 0.0 ? b : 0.0);
                    }
                    double vmin = (gapx * gapx + gapy * gapy) * wmin * half;
                    if (1.0 / (1.0 + vmin + 0.5 * vmin * vmin) * (double)q < limit) {
                        n[d * G + g] = -1;
                        continue;
                    }
                }
                /* then term by term, until the pair is surely kept (the bound reaches the
                 * limit) or surely below it (safe: the terms left add at most 1 each) */
                for (j = 0; j < q && bound < limit; j++) {
                    if (safe && bound + (double)(q - j) < limit) {
                        below = 1;
                        break;
                    }
                    double v = fi_oks_d2(D3, G3, idx[j], k1, x0, x1, y0, y1) * inv[idx[j]] * half;
                    prunable &= v >= 0;
                    bound += 1.0 / (1.0 + v + 0.5 * v * v);
                }
                if (below || (prunable && bound < limit)) count = -1;
            }
            n[d * G + g] = count;
        }
    }
}

/* Pass 2, fi_oks_terms: the terms of every pair with n >= 0 at e[pos[d * G + g]...] (n of them
 * at most), exactly as pycocotools: e = d2 / vars / (area + eps) / 2; -1 where e >= 746
 * (exp(-e) is 0 there: below half the smallest subnormal), so that numpy's exp (slow where it
 * underflows) gets a cheap value. */
FI_EXACT_FN void fi_oks_terms(const double *dk, const int64_t *drow, int64_t D, const double *gk,
                              const double *gbox, const double *garea, const int64_t *grow,
                              int64_t G, const double *vars, int64_t K, int32_t *idx,
                              const int32_t *n, const int64_t *pos, double *e) {
    FI_NO_CONTRACT
    int64_t d, g, j, k1, q;
    for (g = 0; g < G; g++) {
        const double *G3 = gk + 3 * K * grow[g];
        FI_OKS_GT_SETUP(gbox + 4 * grow[g], garea[grow[g]])
        q = fi_oks_keys(G3, K, idx, &k1);
        for (d = 0; d < D; d++) {
            int64_t m = n[d * G + g] < q ? n[d * G + g] : q; /* n at most, whatever the caller */
            const double *D3 = dk + 3 * K * drow[d];
            double *out = e + pos[d * G + g];
            for (j = 0; j < m; j++) {
                /* "/ 2" as "* 0.5": both are the correctly rounded x / 2, bit for bit */
                double v = fi_oks_d2(D3, G3, idx[j], k1, x0, x1, y0, y1) / vars[idx[j]] / scale;
                v *= 0.5;
                out[j] = v >= 746.0 ? -1.0 : v;
            }
        }
    }
}

/* numpy's pairwise sum of a[0..n) (float64 add.reduce: 0.0 + pairwise_sum, blocks of 128). */
FI_EXACT_FN double fi_pairwise_sum(const double *a, int64_t n) {
    FI_NO_CONTRACT
    int64_t i, j;
    if (n < 8) {
        double res = 0.0;
        for (i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8], res;
        for (j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (j = 0; j < 8; j++) r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    } else {
        int64_t n2 = n / 2;
        n2 -= n2 % 8;
        return fi_pairwise_sum(a, n2) + fi_pairwise_sum(a + n2, n - n2);
    }
}

/* ious[p] = (0.0 + sum(x[pos[p] .. pos[p] + n[p]))) / n[p] for P pairs, -1 where n[p] is -1
 * (below the lowest threshold), 1 where it is -2 (n ones sum to n exactly); x = exp(-e), with 0
 * where fi_oks_terms marked e as -1 (x is overwritten). */
FI_EXACT_FN void fi_oks_sum(double *x, const double *e, const int32_t *n, const int64_t *pos,
                            int64_t P, double *ious) {
    FI_NO_CONTRACT
    int64_t p, j;
    for (p = 0; p < P; p++) {
        if (n[p] < 0) {
            ious[p] = n[p] == -2 ? 1.0 : -1.0;
            continue;
        }
        for (j = pos[p]; j < pos[p] + n[p]; j++)
            if (e[j] < 0) x[j] = 0.0;
        ious[p] = (0.0 + fi_pairwise_sum(x + pos[p], n[p])) / (double)n[p];
    }
}

#endif
