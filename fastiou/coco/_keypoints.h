/* pycocotools' computeOks (cocoeval.py), operation for operation, in two steps around numpy's
 * exp (so that exp rounds exactly as numpy's does on this machine, SIMD or not):
 *   fi_oks_terms: per (detection, ground truth) pair the terms e_k, compacted to the visible
 *                 keypoints when the ground truth has some (else all K, with the distance to
 *                 the ground truth's box doubled, as pycocotools measures it);
 *   fi_oks_sum:   sum(exp(-e)) / count, summed in numpy's order (0.0 + pairwise sum).
 * Included by _ckernels.pyx. */
#ifndef FASTIOU_COCO_KEYPOINTS_H
#define FASTIOU_COCO_KEYPOINTS_H

#include "_native.h"

/* Whether the OKS of these q terms, sum(exp(-e)) / q, is surely below `lowest` (> 0): exp(v) >=
 * 1 + v + v^2 / 2 for v >= 0, so each exp(-e) is at most 1 / (1 + e + e^2 / 2); the margin
 * covers the rounding of this bound and of numpy's exp and sum (each below 1e-13 here). A term
 * marked -1 counts 0; a NaN or negative one (a negative area) leaves the pair to be computed. */
FI_EXACT_FN int fi_oks_below(const double *e, int64_t q, double lowest) {
    FI_NO_CONTRACT
    if (!(lowest > 0) || q <= 0) return 0;
    double bound = 0.0;
    for (int64_t k = 0; k < q; k++) {
        double v = e[k];
        if (v == -1.0) continue;
        if (!(v >= 0)) return 0;
        bound += 1.0 / (1.0 + v + 0.5 * v * v);
    }
    return bound < (lowest - 1e-9) * (double)q;
}

/* Detection d's keypoints are row drow[d] of dk (rows of 3K values), ground truth g's row
 * grow[g] of gk, gbox (xywh) and garea; vars: K = (2 sigma)^2. Terms of pair (d, g) at
 * e[(d * G + g) * K ...], their count at n[d * G + g], or -1 where the pair's OKS is surely below
 * `lowest` (fi_oks_below; 0 or less: never). Unused term slots are set to 0. */
FI_EXACT_FN void fi_oks_terms(const double *dk, const int64_t *drow, int64_t D, const double *gk,
                              const double *gbox, const double *garea, const int64_t *grow,
                              int64_t G, const double *vars, int64_t K, double lowest, double *e,
                              int32_t *n) {
    FI_NO_CONTRACT
    int64_t d, g, k, q;
    for (g = 0; g < G; g++) {
        const double *G3 = gk + 3 * K * grow[g], *bb = gbox + 4 * grow[g];
        int64_t k1 = 0;
        double x0 = bb[0] - bb[2], x1 = bb[0] + bb[2] * 2;
        double y0 = bb[1] - bb[3], y1 = bb[1] + bb[3] * 2;
        double scale = garea[grow[g]] + 2.220446049250313e-16; /* gt['area'] + np.spacing(1) */
        for (k = 0; k < K; k++) k1 += G3[3 * k + 2] > 0;
        for (d = 0; d < D; d++) {
            const double *D3 = dk + 3 * K * drow[d];
            double *out = e + (d * G + g) * K;
            q = 0;
            for (k = 0; k < K; k++) {
                double dx, dy, a, b;
                if (k1 > 0) {
                    if (!(G3[3 * k + 2] > 0)) continue;
                    dx = D3[3 * k] - G3[3 * k];
                    dy = D3[3 * k + 1] - G3[3 * k + 1];
                } else { /* np.max((z, v), axis=0): max(0, v), NaN kept */
                    a = x0 - D3[3 * k];
                    b = D3[3 * k] - x1;
                    dx = (a != a || a > 0 ? a : 0.0) + (b != b || b > 0 ? b : 0.0);
                    a = y0 - D3[3 * k + 1];
                    b = D3[3 * k + 1] - y1;
                    dy = (a != a || a > 0 ? a : 0.0) + (b != b || b > 0 ? b : 0.0);
                }
                /* "/ 2" as "* 0.5": both are the correctly rounded x / 2, bit for bit */
                double v = (dx * dx + dy * dy) / vars[k] / scale * 0.5;
                /* exp(-v) is 0 for v >= 746 (below half the smallest subnormal): marked -1,
                 * so that numpy's exp (slow where it underflows) gets a cheap value there */
                out[q++] = v >= 746.0 ? -1.0 : v;
            }
            n[d * G + g] = fi_oks_below(out, q, lowest) ? -1 : (int32_t)q;
            for (k = q; k < K; k++) out[k] = 0.0;
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

/* ious[p] = (0.0 + sum(x[p * K .. p * K + n[p]))) / n[p] for P pairs; x = exp(-e), with
 * 0 where fi_oks_terms marked e as -1 (x is overwritten there). */
FI_EXACT_FN void fi_oks_sum(double *x, const double *e, const int32_t *n, int64_t P, int64_t K,
                            double *ious) {
    FI_NO_CONTRACT
    int64_t p, j;
    for (p = 0; p < P; p++) {
        for (j = p * K; j < p * K + n[p]; j++)
            if (e[j] < 0) x[j] = 0.0;
        ious[p] = (0.0 + fi_pairwise_sum(x + p * K, n[p])) / (double)n[p];
    }
}

#endif
