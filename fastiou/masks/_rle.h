/* fastiou RLE core: pycocotools' run-length masks, one mask per call, no allocation, no checks.
 *
 * A mask of h x w pixels is read in column-major order (pixel y, x at y + h * x) and stored as
 * runs that alternate background / foreground, starting with background (a first run of 0 when
 * the first pixel is set). Every function here reproduces what pycocotools' maskApi.c computes,
 * including its integer types (uint32 arithmetic where it uses `uint`) and the rounding of its
 * polygon rasteriser. The Cython layer validates everything first (runs summing to h * w,
 * h * w < 2^32, finite polygon coordinates), so nothing here bounds-checks.
 */
#ifndef FASTIOU_RLE_H
#define FASTIOU_RLE_H

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* a / h for a, h < 2^32 (h > 0), through a double reciprocal and one correction: exact, and much
 * cheaper than an integer division (the per-run column arithmetic is otherwise dominated by it). */
static inline uint32_t fi_div(uint32_t a, uint32_t h, double inv_h) {
    uint64_t q = (uint64_t)((double)a * inv_h);
    if (q * h > a) q--;
    else if ((q + 1) * h <= a) q++;
    return (uint32_t)q;
}

/* ---- dense <-> runs ------------------------------------------------------------------------ */

/* Bytes from `j` on that equal `value` (all 8 bytes of `same`), up to n: whole 32-byte blocks
 * first, as masks are mostly long runs, then 8-byte words, the first differing byte of a word
 * found by counting its trailing zero bits (little-endian) rather than byte by byte. */
static inline int64_t fi_same_run(const uint8_t *px, int64_t j, int64_t n, uint64_t same) {
    int64_t start = j;
    while (j + 32 <= n) {
        uint64_t w[4];
        memcpy(w, px + j, 32);
        if (((w[0] ^ same) | (w[1] ^ same) | (w[2] ^ same) | (w[3] ^ same)) != 0) break;
        j += 32;
    }
    while (j + 8 <= n) {
        uint64_t w;
        memcpy(&w, px + j, 8);
        if (w != same) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return j + (__builtin_ctzll(w ^ same) >> 3) - start;
#else
            break;
#endif
        }
        j += 8;
    }
    uint8_t value = (uint8_t)same;
    while (j < n && px[j] == value) j++;
    return j - start;
}

/* Runs of the `n` bytes at `px`, in one pass, into a malloc'd buffer that grows as needed: the
 * runs in *out (free() them), their number returned; -1 when malloc fails. A run ends where the
 * byte VALUE changes (pycocotools compares bytes, so 1 -> 2 starts a run too); the first run is
 * of zeros. */
static inline int64_t fi_encode_alloc(const uint8_t *px, int64_t n, uint32_t **out) {
    int64_t k = 0, j = 0, room = 256;
    uint32_t *runs = (uint32_t *)malloc(sizeof(uint32_t) * room);
    uint8_t value = 0;
    *out = NULL;
    if (!runs) return -1;
    for (;;) {
        int64_t run = fi_same_run(px, j, n, value * 0x0101010101010101ULL);
        if (k == room) {
            uint32_t *bigger = (uint32_t *)realloc(runs, sizeof(uint32_t) * room * 2);
            if (!bigger) {
                free(runs);
                return -1;
            }
            runs = bigger;
            room *= 2;
        }
        runs[k++] = (uint32_t)run;
        j += run;
        if (j >= n) break;
        value = px[j];
    }
    *out = runs;
    return k;
}

/* Fill `px` with the mask of `m` runs (their sum is the mask's size). */
static inline void fi_decode(const uint32_t *runs, int64_t m, uint8_t *px) {
    for (int64_t j = 0; j < m; j++) {
        memset(px, (int)(j & 1), runs[j]);
        px += runs[j];
    }
}

/* pycocotools' rleArea: the sum of the foreground runs, in uint32. */
static inline uint32_t fi_area(const uint32_t *runs, int64_t m) {
    uint32_t a = 0;
    for (int64_t j = 1; j < m; j += 2) a += runs[j];
    return a;
}

/* pycocotools' rleToBbox, [x, y, w, h], with its uint32 arithmetic: an RLE whose foreground runs
 * are all empty (or that has fewer than two runs) gives what maskApi.c gives. */
static inline void fi_bbox(const uint32_t *runs, int64_t m, uint32_t h, uint32_t w, double *bb) {
    int64_t even = (m / 2) * 2;
    if (even == 0) {
        bb[0] = bb[1] = bb[2] = bb[3] = 0;
        return;
    }
    uint32_t xs = w, ys = h, xe = 0, ye = 0, pos = 0;
    double inv_h = 1.0 / h;
    for (int64_t j = 0; j < even; j++) {
        uint32_t start = pos;
        pos += runs[j];
        if ((j & 1) == 0 || runs[j] == 0) continue;
        uint32_t x0 = fi_div(start, h, inv_h), y0 = start - x0 * h;
        uint32_t x1 = fi_div(pos - 1, h, inv_h), y1 = pos - 1 - x1 * h;
        if (x0 < xs) xs = x0;
        if (x1 > xe) xe = x1;
        if (x0 < x1) { /* the run wraps to the next column: every row is covered */
            ys = 0;
            ye = h - 1;
        } else {
            if (y0 < ys) ys = y0;
            if (y1 > ye) ye = y1;
        }
    }
    bb[0] = xs;
    bb[2] = (uint32_t)(xe - xs + 1);
    bb[1] = ys;
    bb[3] = (uint32_t)(ye - ys + 1);
}

/* ---- the compressed string (pycocotools' rleToString / rleFrString) ------------------------ */
/* Each value is written 5 bits a character, least significant first, as chars 48..111; bit 0x20
 * says another character follows, bit 0x10 of the last one is the sign. From the fourth value on,
 * the value written is the difference with the value two places before. */

/* Characters of the string of `m` runs, written to `s` unless it is NULL. */
static inline int64_t fi_to_string(const uint32_t *runs, int64_t m, char *s) {
    int64_t p = 0;
    for (int64_t i = 0; i < m; i++) {
        int64_t x = (int64_t)runs[i];
        if (i > 2) x -= (int64_t)runs[i - 2];
        int more = 1;
        while (more) {
            char c = (char)(x & 0x1f);
            x >>= 5; /* arithmetic shift: the sign stays */
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            if (s) s[p] = (char)(c + 48);
            p++;
        }
    }
    return p;
}

enum { FI_BAD_CHAR = -1, FI_TRUNCATED = -2, FI_TOO_LONG = -3, FI_OUT_OF_RANGE = -4 };

/* Number of values in the string (the characters without a continuation bit), or an FI_ error. */
static inline int64_t fi_string_values(const uint8_t *s, int64_t n) {
    int64_t values = 0, chars = 0;
    for (int64_t p = 0; p < n; p++) {
        int c = (int)s[p] - 48;
        if (c < 0 || c > 63) return FI_BAD_CHAR;
        if (++chars > 7) return FI_TOO_LONG; /* 35 bits hold any uint32 difference */
        if (!(c & 0x20)) {
            values++;
            chars = 0;
        }
    }
    return chars ? FI_TRUNCATED : values;
}

/* Decode a string that fi_string_values accepted (and counted `values` in) into `runs`; 0, or
 * FI_OUT_OF_RANGE when a value falls outside uint32 (pycocotools would wrap it). Never reads
 * past n nor writes more than `values` runs, also if the characters changed since they were
 * counted (another thread's writes): FI_TRUNCATED then. */
static inline int fi_from_string(const uint8_t *s, int64_t n, uint32_t *runs, int64_t values) {
    int64_t m = 0, p = 0;
    while (p < n) {
        int64_t x = 0;
        int k = 0, c;
        if (m == values) return FI_TRUNCATED;
        do {
            if (p == n || k == 7) return FI_TRUNCATED;
            c = (int)s[p++] - 48;
            x |= (int64_t)(c & 0x1f) << (5 * k);
            k++;
        } while (c & 0x20);
        if (c & 0x10) x |= (int64_t)(-1) * ((int64_t)1 << (5 * k)); /* sign-extend */
        if (m > 2) x += (int64_t)runs[m - 2];
        if (x < 0 || x > (int64_t)UINT32_MAX) return FI_OUT_OF_RANGE;
        runs[m++] = (uint32_t)x;
    }
    return 0;
}

/* ---- foreground intervals and the IoU of two masks ----------------------------------------- */

/* The foreground as [start, end) pixel intervals cut at column ends (each lies in one column
 * of height h); written unless `starts` is NULL; returns how many. */
static inline int64_t fi_intervals(const uint32_t *runs, int64_t m, uint32_t h, uint32_t *starts,
                                   uint32_t *ends) {
    int64_t k = 0;
    uint32_t pos = 0;
    double inv_h = 1.0 / h;
    for (int64_t j = 0; j < m; j++) {
        uint32_t next = pos + runs[j];
        if ((j & 1) && next > pos) {
            uint64_t column_end = ((uint64_t)fi_div(pos, h, inv_h) + 1) * h;
            for (uint32_t s = pos; s < next; k++, column_end += h) {
                uint32_t e = next < column_end ? next : (uint32_t)column_end;
                if (starts) {
                    starts[k] = s;
                    ends[k] = e;
                }
                s = e;
            }
        }
        pos = next;
    }
    return k;
}

/* The column index of one mask whose n intervals (cut at column ends) start in column x0 and
 * span ncols columns: first[c] (c = 0 .. ncols) where column x0 + c's intervals begin; y0[c],
 * y1[c] the rows [y0, y1) of its first interval and y2[c], y3[c] of its second when it has one
 * or two (else 0, 0); the columns with three or more in `multi` (absolute), their number
 * returned. Masks taller than 2^31 - 1 rows list every column there, as their rows do not fit
 * the int32 rows. */
static inline int64_t fi_column_index(const uint32_t *starts, const uint32_t *ends, int64_t n,
                                      uint32_t h, uint32_t x0, int64_t ncols, int32_t *first,
                                      int32_t *y0, int32_t *y1, int32_t *y2, int32_t *y3,
                                      int32_t *multi) {
    int64_t k = 0, nmulti = 0;
    int tall = h > (uint32_t)INT32_MAX;
    uint64_t column_start = (uint64_t)x0 * h;
    for (int64_t c = 0; c <= ncols; c++, column_start += h) {
        while (k < n && starts[k] < column_start) k++;  /* intervals never straddle columns */
        first[c] = (int32_t)k;
    }
    for (int64_t c = 0; c < ncols; c++) {
        int64_t count = first[c + 1] - first[c];
        uint32_t top = (x0 + (uint32_t)c) * h;
        y0[c] = y1[c] = y2[c] = y3[c] = 0;
        if (count == 0) continue;
        if (count > 2 || tall) {
            multi[nmulti++] = (int32_t)(x0 + c);
            continue;
        }
        y0[c] = (int32_t)(starts[first[c]] - top);
        y1[c] = (int32_t)(ends[first[c]] - top);
        if (count == 2) {
            y2[c] = (int32_t)(starts[first[c] + 1] - top);
            y3[c] = (int32_t)(ends[first[c] + 1] - top);
        }
    }
    return nmulti;
}

/* One mask's intervals and their column index, as the IoU walk reads them. */
typedef struct {
    const uint32_t *starts, *ends; /* its intervals */
    const int32_t *first, *y0, *y1, *y2, *y3; /* its column index (see fi_column_index) */
    const int32_t *multi;
    int64_t x0, ncols, nmulti;
} fi_mask;

/* Common pixels of the two masks in column x (both cover it): merge its intervals. */
static inline uint32_t fi_column_merge(const fi_mask *a, const fi_mask *b, int64_t x) {
    int64_t i = a->first[x - a->x0], i_end = a->first[x - a->x0 + 1];
    int64_t j = b->first[x - b->x0], j_end = b->first[x - b->x0 + 1];
    uint32_t inter = 0;
    while (i < i_end && j < j_end) {
        uint32_t s = a->starts[i] > b->starts[j] ? a->starts[i] : b->starts[j];
        uint32_t e = a->ends[i] < b->ends[j] ? a->ends[i] : b->ends[j];
        inter += e > s ? e - s : 0;
        int64_t a_first = a->ends[i] < b->ends[j];
        i += a_first;
        j += 1 - a_first;
    }
    return inter;
}

/* Rows in both [s0, e0) and [s1, e1). */
static inline uint32_t fi_overlap(int32_t s0, int32_t e0, int32_t s1, int32_t e1) {
    int32_t s = s0 > s1 ? s0 : s1, e = e0 < e1 ? e0 : e1;
    return (uint32_t)(e > s ? e - s : 0);
}

static inline int64_t fi_lower_bound(const int32_t *v, int64_t n, int64_t x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Pixels in both masks (of one height), over the columns both cover: first every column as if
 * each mask had its one or two intervals there (a loop the compiler vectorises: intervals in a
 * column are disjoint, so the four pairwise overlaps add up; columns with three or more count 0
 * in it), then the columns where either has three or more, merged. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__GLIBC__) && !defined(__AVX2__)
/* an AVX2 clone (8 int32 lanes with vpmaxsd / vpminsd; SSE2 has no 32-bit min / max) picked at
 * load time on CPUs that have it; integers only, so every clone counts the same */
__attribute__((target_clones("avx2", "default")))
#endif
static uint32_t fi_intersection(const fi_mask *a, const fi_mask *b) {
    int64_t x = a->x0 > b->x0 ? a->x0 : b->x0;
    int64_t xa_end = a->x0 + a->ncols, xb_end = b->x0 + b->ncols;
    int64_t x_end = xa_end < xb_end ? xa_end : xb_end;
    if (x >= x_end) return 0;
    int64_t ka = x - a->x0, kb = x - b->x0;
    const int32_t *ay0 = a->y0 + ka, *ay1 = a->y1 + ka, *ay2 = a->y2 + ka, *ay3 = a->y3 + ka;
    const int32_t *by0 = b->y0 + kb, *by1 = b->y1 + kb, *by2 = b->y2 + kb, *by3 = b->y3 + kb;
    uint32_t inter = 0;
    for (int64_t k = 0; k < x_end - x; k++) {
        inter += fi_overlap(ay0[k], ay1[k], by0[k], by1[k]) +
                 fi_overlap(ay0[k], ay1[k], by2[k], by3[k]) +
                 fi_overlap(ay2[k], ay3[k], by0[k], by1[k]) +
                 fi_overlap(ay2[k], ay3[k], by2[k], by3[k]);
    }
    int64_t i = fi_lower_bound(a->multi, a->nmulti, x), j = fi_lower_bound(b->multi, b->nmulti, x);
    for (;;) {
        int64_t ca = i < a->nmulti && a->multi[i] < x_end ? a->multi[i] : x_end;
        int64_t cb = j < b->nmulti && b->multi[j] < x_end ? b->multi[j] : x_end;
        int64_t c = ca < cb ? ca : cb;
        if (c == x_end) break;
        inter += fi_column_merge(a, b, c);
        i += ca == c;
        j += cb == c;
    }
    return inter;
}

/* Whether pycocotools' bbIou of two toBbox boxes is positive: their overlap has positive width
 * and height (for such boxes, non-negative integers, that makes the ratio positive). */
static inline int fi_boxes_overlap(const double *d, const double *g) {
    return fmin(d[2] + d[0], g[2] + g[0]) - fmax(d[0], g[0]) > 0 &&
           fmin(d[3] + d[1], g[3] + g[1]) - fmax(d[1], g[1]) > 0;
}

/* pycocotools' bbIou for one pair of [x, y, w, h] boxes; `crowd`: over the first box's area. */
static inline double fi_box_iou(const double *d, const double *g, int crowd) {
    double w = fmin(d[2] + d[0], g[2] + g[0]) - fmax(d[0], g[0]);
    if (w <= 0) return 0;
    double h = fmin(d[3] + d[1], g[3] + g[1]) - fmax(d[1], g[1]);
    if (h <= 0) return 0;
    double i = w * h, da = d[2] * d[3], ga = g[2] * g[3];
    return i / (crowd ? da : da + ga - i);
}

/* Pixels in both masks (of one size), by one walk over their two run lists (pycocotools'
 * rleIou): cheaper than the column index for small masks, which then need no index at all. */
static inline uint32_t fi_runs_intersection(const uint32_t *a, int64_t ma, const uint32_t *b,
                                            int64_t mb) {
    int64_t i = 0, j = 0;
    uint32_t ca = ma ? a[0] : 0, cb = mb ? b[0] : 0, inter = 0;
    int va = 0, vb = 0;
    while (i < ma && j < mb) {
        uint32_t c = ca < cb ? ca : cb;
        if (va && vb) inter += c;
        ca -= c;
        cb -= c;
        if (!ca) {
            if (++i < ma) ca = a[i];
            va = !va;
        }
        if (!cb) {
            if (++j < mb) cb = b[j];
            vb = !vb;
        }
    }
    return inter;
}

/* ---- merge (pycocotools' rleMerge of two masks of one size) -------------------------------- */

/* Union (or intersection) of runs `a` and `b` into `out` (room for ma + mb); returns its length.
 * The walk emits a run wherever the merged value changes and at the end, as maskApi.c's does, so
 * the output is the same even for inputs with empty interior runs. */
static inline int64_t fi_merge2(const uint32_t *a, int64_t ma, const uint32_t *b, int64_t mb,
                                int intersect, uint32_t *out) {
    uint32_t ca = a[0], cb = b[0], run = 0, left = 1;
    int va = 0, vb = 0, v = 0;
    int64_t ia = 1, ib = 1, m = 0;
    while (left > 0) {
        uint32_t c = ca < cb ? ca : cb;
        run += c;
        ca -= c;
        if (!ca && ia < ma) {
            ca = a[ia++];
            va = !va;
        }
        cb -= c;
        if (!cb && ib < mb) {
            cb = b[ib++];
            vb = !vb;
        }
        left = ca + cb;
        int before = v;
        v = intersect ? (va && vb) : (va || vb);
        if (v != before || left == 0) {
            out[m++] = run;
            run = 0;
        }
    }
    return m;
}

/* ---- polygons (pycocotools' rleFrPoly) ----------------------------------------------------- */

static int fi_cmp_u32(const void *p, const void *q) {
    uint32_t a = *(const uint32_t *)p, b = *(const uint32_t *)q;
    return a > b ? 1 : a < b ? -1 : 0;
}

/* Sort the n cuts (pixel indices x * h + y, column x in col[]) into out: a counting sort on the
 * column, then each column's few cuts by insertion (a closed outline crosses most columns twice).
 * Same result as sorting the values (qsort, as maskApi.c): x * h + y < (x + 1) * h for y < h, and
 * y = h (clamped to the column's end) equals the next column's y = 0. A column of many cuts
 * (a zigzag outline) is qsorted, so no input is quadratic. buckets: room for `room`
 * counts; the columns never need more than the polygon's points (its outline steps through
 * every upsampled column), else qsort. */
static inline void fi_sort_cuts(const uint32_t *cuts, const int32_t *col, int64_t n, int64_t xmin,
                                int64_t xmax, uint32_t *out, uint32_t *buckets, int64_t room) {
    if (n == 0) return;
    int64_t ncol = xmax - xmin + 1;
    if (ncol + 1 > room) {
        memcpy(out, cuts, sizeof(uint32_t) * (size_t)n);
        qsort(out, (size_t)n, sizeof(uint32_t), fi_cmp_u32);
        return;
    }
    memset(buckets, 0, sizeof(uint32_t) * (size_t)(ncol + 1));
    for (int64_t j = 0; j < n; j++) buckets[col[j] - xmin + 1]++;
    for (int64_t c = 0; c < ncol; c++) buckets[c + 1] += buckets[c];
    for (int64_t j = 0; j < n; j++) out[buckets[col[j] - xmin]++] = cuts[j];
    /* buckets[c] is now where column c + 1 starts */
    int64_t start = 0;
    for (int64_t c = 0; c < ncol; c++) {
        int64_t end = buckets[c];
        if (end - start > 32) { /* a column the outline crosses often: no quadratic sort */
            qsort(out + start, (size_t)(end - start), sizeof(uint32_t), fi_cmp_u32);
            start = end;
            continue;
        }
        for (int64_t i = start + 1; i < end; i++) {
            uint32_t t = out[i];
            int64_t k = i;
            while (k > start && out[k - 1] > t) {
                out[k] = out[k - 1];
                k--;
            }
            out[k] = t;
        }
        start = end;
    }
}

/* Scratch sizes for a polygon of k vertices already scaled by 5 and rounded (x5, y5 of k + 1,
 * the last repeating the first): the number of boundary points. */
static inline int64_t fi_poly_points(const int32_t *x5, const int32_t *y5, int64_t k) {
    int64_t m = 0;
    for (int64_t j = 0; j < k; j++) {
        int64_t dx = llabs((int64_t)x5[j] - x5[j + 1]), dy = llabs((int64_t)y5[j] - y5[j + 1]);
        m += (dx > dy ? dx : dy) + 1;
    }
    return m;
}

/* The cut of one step between two boundary points, if it is one: ux, vy the smaller upsampled
 * x and y of the two. maskApi.c computes xd = (ux + .5) / 5 - .5 in doubles and keeps the step
 * where xd is a whole number in 0 .. w - 1: (ux + .5) / 5 is a half-integer exactly when
 * ux = 5 x + 2 (and then the double is exact), otherwise at least 0.2 from one, so the integer
 * test below is the same; with ux < 2, q wraps far above 5 (w - 1). Likewise its
 * yd = ceil(clamp((vy + .5) / 5 - .5, 0, h)) is clamp(ceil((vy - 2) / 5), 0, h). */
typedef struct {
    uint32_t *cuts; /* pixel index x * h + y of each cut (< h * w < 2^32: no wrap) */
    int32_t *cols;  /* its column x */
    int64_t n, xmin, xmax;
    uint64_t h, w;
} fi_cuts;

static inline void fi_cut(fi_cuts *c, int64_t ux, int64_t vy) {
    uint64_t q = (uint64_t)(ux - 2), x = q / 5;
    if (x * 5 != q || x > c->w - 1) return;
    vy -= 2;
    int64_t y = vy <= 0 ? 0 : (vy + 4) / 5;
    y = y > (int64_t)c->h ? (int64_t)c->h : y;
    c->cuts[c->n] = (uint32_t)(x * c->h + (uint64_t)y);
    c->cols[c->n++] = (int32_t)x;
    c->xmin = (int64_t)x < c->xmin ? (int64_t)x : c->xmin;
    c->xmax = (int64_t)x > c->xmax ? (int64_t)x : c->xmax;
}

/* The upsampled x of step t along a steep edge, as maskApi.c rounds it. */
static inline int32_t fi_u(int32_t xs, double s, int32_t t) {
    return (int32_t)(xs + s * t + .5);
}

/* The first t in 1 .. dy where u(t) has left 5x + 2 = k (rising: u(t) >= k + 1; falling:
 * u(t) <= k), u(0) being on the other side and u(dy) past it: from an estimate, then the
 * exact test, so the answer is what a walk over every step finds. */
static inline int32_t fi_first_step(int32_t xs, double s, int32_t dy, int32_t k, int rising) {
    double guess = ((double)k + .5 - xs) / s; /* where xs + s t + .5 reaches k + 1 */
    int32_t t = guess < 1 ? 1 : guess > dy ? dy : (int32_t)guess;
#define FI_PAST(t) (rising ? fi_u(xs, s, t) >= k + 1 : fi_u(xs, s, t) <= k)
    while (t > 1 && FI_PAST(t - 1)) t--;
    while (!FI_PAST(t)) t++;
#undef FI_PAST
    return t;
}

/* Rasterise the polygon: x5, y5 as above, `points` = fi_poly_points(); cols, cuts, runs scratch
 * of points + 1 and buckets of points + 2; writes the runs to `runs` and returns how many.
 *
 * As maskApi.c: walk every edge on the grid upsampled by 5 (one point per step along the longer
 * axis, the other coordinate rounded half up), keep the steps where the upsampled x crosses a
 * pixel centre, turn each into the first pixel of its column at or below the edge (clamped to the
 * column), and the sorted pixel indices are the run boundaries. Only the set of cuts matters (they
 * are sorted), so each edge yields its own without maskApi.c's array of every point: along a
 * flat edge only every fifth step can cross a centre, along a steep one each column's crossing
 * step is found from an estimate (fi_first_step): the work is the vertices and the cuts. The
 * steps maskApi.c takes between two edges join the same vertex (the same x, or for a vertex
 * left of the image x and x + 1 truncated toward 0, no cut), as do the ones to and from a
 * zero-length edge's point (y = INT_MIN there). */
static inline int64_t fi_polygon(const int32_t *x5, const int32_t *y5, int64_t k, uint64_t h,
                                 uint64_t w, int64_t points, int32_t *cols, uint32_t *cuts,
                                 uint32_t *runs, uint32_t *buckets) {
    fi_cuts c = {cuts, cols, 0, INT64_MAX, -1, h, w};
    for (int64_t j = 0; j < k; j++) {
        int32_t xs = x5[j], xe = x5[j + 1], ys = y5[j], ye = y5[j + 1];
        int32_t dx = abs(xe - xs), dy = abs(ys - ye);
        int flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
        if (flip) {
            int32_t t = xs;
            xs = xe;
            xe = t;
            t = ys;
            ys = ye;
            ye = t;
        }
        if (dx >= dy) {
            if (dx == 0) continue; /* a repeated vertex: one point, no step */
            double s = (double)(ye - ys) / dx;
            /* the steps t .. t + 1 (u = xs + t, xs + t + 1) whose ux = xs + t is 5 x + 2 */
            int64_t t = 2 - (int64_t)xs, last = dx - 1;
            if (t < 0) t += (-t + 4) / 5 * 5;
            /* none past the image (w = 0: maskApi.c's w - 1 wraps, nothing is past it) */
            if (w > 0 && last > 5 * ((int64_t)w - 1) + 2 - (int64_t)xs)
                last = 5 * ((int64_t)w - 1) + 2 - (int64_t)xs;
            for (; t <= last; t += 5) {
                int32_t v0 = (int32_t)(ys + s * (int32_t)t + .5);
                int32_t v1 = (int32_t)(ys + s * (int32_t)(t + 1) + .5);
                fi_cut(&c, xs + t, v0 < v1 ? v0 : v1);
            }
        } else if (dx > 0) {
            /* u(t) = (int)(xs + s t + .5) for t = 0 .. dy: monotone (rounding and truncation
             * are), moving by at most 1 a step (|s| < 1), so it takes every value between its
             * ends, and the one step from 5x + 2 to 5x + 3 (or back) is column x's cut */
            double s = (double)(xe - xs) / dy;
            int rising = xe > xs;
            int64_t ua = fi_u(xs, s, 0), ub = fi_u(xs, s, dy);
            int64_t lo = rising ? ua : ub, hi = rising ? ub : ua;
            int64_t x = lo - 2 <= 0 ? 0 : (lo + 2) / 5; /* the first x with 5x + 2 >= lo */
            for (; 5 * x + 3 <= hi; x++) {
                int32_t t = fi_first_step(xs, s, dy, (int32_t)(5 * x + 2), rising);
                fi_cut(&c, 5 * x + 2, (int64_t)ys + t - 1);
            }
        }
    }
    int64_t n = c.n;
    if (w > 0) {
        fi_sort_cuts(cuts, cols, n, c.xmin, c.xmax, runs, buckets, points + 2);
        runs[n++] = (uint32_t)(h * w); /* after every cut: the last column's are <= h * w */
    } else { /* maskApi.c keeps every column (w - 1 wraps): the values wrap, h * w = 0 sorts in */
        memcpy(runs, cuts, sizeof(uint32_t) * (size_t)n);
        runs[n++] = 0;
        qsort(runs, (size_t)n, sizeof(uint32_t), fi_cmp_u32);
    }
    uint32_t prev = 0;
    for (int64_t j = 0; j < n; j++) {
        cuts[j] = runs[j] - prev;
        prev = runs[j];
    }
    /* an empty run between two others joins them (it would flip the colour twice) */
    int64_t r = 0, j = 0;
    runs[r++] = cuts[j++];
    while (j < n) {
        if (cuts[j] > 0) {
            runs[r++] = cuts[j++];
        } else {
            j++;
            if (j < n) runs[r - 1] += cuts[j++];
        }
    }
    return r;
}

#endif
