/* C core of fastiou.coco: exact JSON number parsing, a columnar scanner for COCO annotation
 * arrays, and pycocotools' box IoU arithmetic. Included by _ckernels.pyx.
 *
 * Numbers are read exactly as Python's float() reads them (correctly rounded): the Clinger fast
 * path where it is exact, else the Eisel-Lemire algorithm (as in fast_float, which needs no
 * fallback for inputs of at most 19 significant digits). A number with more significant digits,
 * or anything the scanner does not expect, makes it report failure: the caller then parses the
 * file with a general JSON parser (_json.py), so a strange file is read slowly, never wrongly.
 * Every read is bounds-checked against `end`; the text is never assumed NUL-terminated.
 */
#ifndef FASTIOU_COCO_NATIVE_H
#define FASTIOU_COCO_NATIVE_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#endif

/* Give the whole pages inside [p, p + n) back to the OS: memory that will not be read again
 * (an anonymous page reads as zeros if it is; a page of a file mapping, as the file again).
 * Returns the end of what was given back (p + n rounded down to a page), p where nothing was.
 * A no-op where madvise is not there. */
static inline const char *fi_release_pages(const void *p, size_t n) {
#if defined(MADV_DONTNEED)
    long size = sysconf(_SC_PAGESIZE);
    if (size <= 0 || (size & (size - 1))) return (const char *)p; /* not a power of two */
    uintptr_t page = (uintptr_t)size;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi <= lo) return (const char *)p;
    madvise((void *)lo, (size_t)(hi - lo), MADV_DONTNEED);
    return (const char *)hi;
#else
    (void)n;
    return (const char *)p;
#endif
}

/* ------------------------------------------------------------------------------------------ */
/* Floating-point contraction off: pycocotools' C code is built without FMA (x86-64 baseline),  */
/* and a fused multiply-add would change the last bit of an IoU.                                */
/* ------------------------------------------------------------------------------------------ */
#if defined(__clang__)
#define FI_NO_CONTRACT _Pragma("clang fp contract(off)")
#define FI_EXACT_FN static
#elif defined(__GNUC__)
#define FI_NO_CONTRACT
#define FI_EXACT_FN static __attribute__((optimize("fp-contract=off")))
#else
#define FI_NO_CONTRACT
#define FI_EXACT_FN static
#endif

/* The IoU matrix of a group (dets D x 4 and gts G x 4, contiguous xywh) into iou[d * G + g],
 * computed as pycocotools' bbIou (maskApi.c), operation for operation: fmin/fmax, "w <= 0"
 * and "h <= 0" give 0, a crowd ground truth divides by the detection's area;
 * and per detection the ground truths that could match it at some threshold: IoU not below
 * `lowest` (the smallest min(t, 1 - 1e-10)) or NaN (NaN compares false, so pycocotools' loop
 * takes it). cand[cand_start[d] .. cand_start[d+1]) in ground-truth order. Returns 1 when an
 * IoU is NaN: a NaN "best" then takes every later ground truth, so the caller must consider all
 * of them. */
FI_EXACT_FN int fi_group_iou(const double *det, int64_t D, const double *gt, const uint8_t *crowd,
                             int64_t G, double lowest, double *iou, int32_t *cand,
                             int64_t *cand_start) {
    FI_NO_CONTRACT
    int64_t d, g, n = 0;
    int has_nan = 0;
    for (d = 0; d < D; d++) {
        const double *Dp = det + 4 * d;
        double da = Dp[2] * Dp[3], dx2 = Dp[2] + Dp[0], dy2 = Dp[3] + Dp[1];
        cand_start[d] = n;
        for (g = 0; g < G; g++) {
            const double *Gp = gt + 4 * g;
            double w, h, i, u, v = 0.0;
            w = fmin(dx2, Gp[2] + Gp[0]) - fmax(Dp[0], Gp[0]);
            if (!(w <= 0)) { /* as bbIou's "if (w <= 0) continue" (NaN goes on) */
                h = fmin(dy2, Gp[3] + Gp[1]) - fmax(Dp[1], Gp[1]);
                if (!(h <= 0)) {
                    i = w * h;
                    u = crowd[g] ? da : da + Gp[2] * Gp[3] - i;
                    v = i / u;
                }
            }
            iou[d * G + g] = v;
            if (!(v < lowest)) cand[n++] = (int32_t)g;
            has_nan |= v != v;
        }
    }
    cand_start[D] = n;
    return has_nan;
}

/* pycocotools' precision tp / (fp + tp + np.spacing(1)), in the same order. */
FI_EXACT_FN double fi_precision(double tp, double fp) {
    FI_NO_CONTRACT
    return tp / ((fp + tp) + 2.220446049250313e-16);
}

/* ------------------------------------------------------------------------------------------ */
/* Exact decimal -> double                                                                      */
/* ------------------------------------------------------------------------------------------ */

static inline void fi_mul128(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
#if defined(__SIZEOF_INT128__)
    __uint128_t r = (__uint128_t)a * b;
    *hi = (uint64_t)(r >> 64);
    *lo = (uint64_t)r;
#else
    uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    *lo = (mid << 32) | (p00 & 0xFFFFFFFFu);
    *hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

static inline int fi_clz64(uint64_t x) { /* x != 0 */
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_clzll(x);
#else
    int n = 0;
    while (!(x & 0x8000000000000000ull)) { x <<= 1; n++; }
    return n;
#endif
}

static inline double fi_from_bits(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static const double fi_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* w * 10^q correctly rounded, w != 0 holding every significant digit. pow5 is the table of
 * 128-bit truncated powers of five for q in [-342, 308] (built in _json.py): hi, lo pairs. */
static double fi_eisel_lemire(uint64_t w, int64_t q, const uint64_t *pow5) {
    uint64_t hi, lo, hi2, lo2, mantissa;
    int lz, upperbit, shift;
    int64_t power2;
    if (q < -342) return 0.0;
    if (q > 308) return INFINITY;
    lz = fi_clz64(w);
    w <<= lz;
    fi_mul128(w, pow5[2 * (q + 342)], &hi, &lo);
    if ((hi & 0x1FF) == 0x1FF) {
        fi_mul128(w, pow5[2 * (q + 342) + 1], &hi2, &lo2);
        lo += hi2;
        if (hi2 > lo) hi++;
    }
    upperbit = (int)(hi >> 63);
    shift = upperbit + 64 - 52 - 3;
    mantissa = hi >> shift;
    /* power(q) = floor(217706 * q / 65536) + 63; -minimum_exponent = +1023 */
    power2 = ((217706 * q) >> 16) + 63 + upperbit - lz + 1023;
    if (power2 <= 0) { /* subnormal */
        if (-power2 + 1 >= 64) return 0.0;
        mantissa >>= -power2 + 1;
        mantissa += mantissa & 1;
        mantissa >>= 1;
        power2 = (mantissa < (1ull << 52)) ? 0 : 1;
        return fi_from_bits(mantissa | ((uint64_t)power2 << 52));
    }
    if (lo <= 1 && q >= -4 && q <= 23 && (mantissa & 3) == 1) {
        if ((mantissa << shift) == hi) mantissa &= ~(uint64_t)1;  /* exactly halfway: to even */
    }
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= (2ull << 52)) {
        mantissa = 1ull << 52;
        power2++;
    }
    mantissa &= ~(1ull << 52);
    if (power2 >= 0x7FF) return INFINITY;
    return fi_from_bits(mantissa | ((uint64_t)power2 << 52));
}

#define FI_IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* Eight ASCII digits at once (fast_float's SWAR tricks), little-endian machines only. */
#if (defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) || \
    defined(_M_X64) || defined(_M_IX86) || defined(_M_ARM64)
#define FI_SWAR 1
static inline uint64_t fi_read8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline int fi_eight_digits(uint64_t v) {
    return !(((v + 0x4646464646464646ull) | (v - 0x3030303030303030ull)) & 0x8080808080808080ull);
}
static inline uint64_t fi_parse8(uint64_t v) {
    const uint64_t mask = 0x000000FF000000FFull;
    const uint64_t mul1 = 0x000F424000000064ull; /* 100 + (1000000 << 32) */
    const uint64_t mul2 = 0x0000271000000001ull; /* 1 + (10000 << 32) */
    v -= 0x3030303030303030ull;
    v = (v * 10) + (v >> 8);
    return (((v & mask) * mul1) + (((v >> 16) & mask) * mul2)) >> 32;
}
#else
#define FI_SWAR 0
#endif

/* w * 10^q (w holding every significant digit, at most 19) correctly rounded. */
static inline double fi_decimal_to_double(uint64_t w, int64_t q, const uint64_t *pow5) {
    double v;
    if (w == 0) return 0.0;
    if (q >= -22 && q <= 22 && w <= (1ull << 53)) {
        v = (double)w; /* exact, and one correctly rounded operation follows */
        return q < 0 ? v / fi_pow10[-q] : v * fi_pow10[q];
    }
    return fi_eisel_lemire(w, q, pow5);
}

/* The careful digit loop for numbers with more than 19 digits: keeps the first 19
 * significant ones and declines (NULL) when a dropped digit is not zero. */
static const char *fi_parse_long_number(const char *p, const char *end, const uint64_t *pow5,
                                        double *out) {
    int neg = 0, ndig = 0, truncated = 0, eneg = 0;
    uint64_t w = 0;
    int64_t q = 0, e = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && FI_IS_DIGIT(*p)) {
            int d = *p - '0';
            if (ndig < 19) { w = w * 10 + d; ndig++; }
            else { q++; truncated |= d != 0; }
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && FI_IS_DIGIT(*p)) {
            int d = *p - '0';
            if (ndig == 0 && d == 0) { q--; }  /* leading zero of 0.00x */
            else if (ndig < 19) { w = w * 10 + d; ndig++; q--; }
            else { truncated |= d != 0; }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
        while (p < end && FI_IS_DIGIT(*p)) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        q += eneg ? -e : e;
    }
    if (truncated) return NULL;
    *out = neg ? -fi_decimal_to_double(w, q, pow5) : fi_decimal_to_double(w, q, pow5);
    return p;
}

/* Parse the JSON number at p. Returns the position after it, or NULL when the text is not a
 * JSON number or holds more than 19 significant digits (the caller then falls back). */
static const char *fi_parse_number(const char *p, const char *end, const uint64_t *pow5,
                                   double *out) {
    const char *start = p, *digits, *int_end, *frac_start, *frac_end;
    int neg = 0, eneg = 0;
    uint64_t w = 0;
    int64_t q = 0, e = 0, n;
    double v;
    if (p < end && *p == '-') { neg = 1; p++; }
    digits = p;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && FI_IS_DIGIT(*p)) { w = w * 10 + (uint64_t)(*p - '0'); p++; }
    } else {
        return NULL;
    }
    int_end = frac_start = frac_end = p;
    if (p < end && *p == '.') {
        p++;
        frac_start = p;
#if FI_SWAR
        while (end - p >= 8 && fi_eight_digits(fi_read8(p))) {
            w = w * 100000000u + fi_parse8(fi_read8(p));
            p += 8;
        }
#endif
        while (p < end && FI_IS_DIGIT(*p)) { w = w * 10 + (uint64_t)(*p - '0'); p++; }
        frac_end = p;
        if (frac_end == frac_start) return NULL;
        q = -(int64_t)(frac_end - frac_start);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
        if (p >= end || !FI_IS_DIGIT(*p)) return NULL;
        while (p < end && FI_IS_DIGIT(*p)) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        q += eneg ? -e : e;
    }
    n = (int_end - digits) + (frac_end - frac_start);
    if (n > 19) {  /* w wrapped around unless the extra digits were leading zeros */
        const char *z = digits;
        while (z < frac_end && (*z == '0' || *z == '.')) { n -= *z == '0'; z++; }
        if (n > 19) return fi_parse_long_number(start, end, pow5, out) ? p : NULL;
    }
    v = fi_decimal_to_double(w, q, pow5);
    /* "-0" is the integer 0 for json (so 0.0 as a float), "-0.0" and "-0e0" are -0.0 */
    *out = neg && (v != 0 || p != int_end) ? -v : v;
    return p;
}

/* A JSON integer (no fraction, no exponent) that fits int64 with room to spare. */
static const char *fi_parse_int(const char *p, const char *end, int64_t *out) {
    int neg = 0, n = 0;
    int64_t v = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || !FI_IS_DIGIT(*p)) return NULL;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && FI_IS_DIGIT(*p)) {
            if (++n > 18) return NULL;
            v = v * 10 + (*p - '0');
            p++;
        }
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return NULL;
    *out = neg ? -v : v;
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON structure                                                                               */
/* ------------------------------------------------------------------------------------------ */

static inline const char *fi_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* The length (2 to 4) of the well-formed UTF-8 sequence of a non-ASCII character at p, or 0:
 * what Python's strict UTF-8 decoder accepts (no overlong forms, no surrogates U+D800..DFFF,
 * nothing above U+10FFFF, no truncated sequence at `end`). */
static int fi_utf8_length(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    int n, k;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3;
    else if (c >= 0xF0 && c <= 0xF4) n = 4;
    else return 0; /* a continuation byte, C0/C1 (overlong) or F5..FF */
    if (end - p < n) return 0;
    if (c == 0xE0) lo = 0xA0;      /* overlong below U+0800 */
    else if (c == 0xED) hi = 0x9F; /* surrogates */
    else if (c == 0xF0) lo = 0x90; /* overlong below U+10000 */
    else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    if (p[1] < lo || p[1] > hi) return 0;
    for (k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return n;
}

/* p at the opening quote; returns the position after the closing quote, or NULL. Rejects what
 * Python's json rejects in a string read from a UTF-8 file: raw control characters, unknown or
 * short escapes, bytes that are not well-formed UTF-8. (Lone surrogate escapes such as
 * "\ud800" are accepted, as json accepts them.) */
static const char *fi_skip_string(const char *p, const char *end) {
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c == '\\') {
            p++;
            if (p >= end) return NULL;
            if (*p == 'u') {
                int k;
                for (k = 1; k <= 4; k++) {
                    char h = p + k < end ? p[k] : 0;
                    if (!(FI_IS_DIGIT(h) || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                        return NULL;
                }
                p += 4;
            } else if (*p == 0 || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        } else if (c < 0x20) {
            return NULL;
        } else if (c >= 0x80) {
            int n = fi_utf8_length((const unsigned char *)p, (const unsigned char *)end);
            if (!n) return NULL;
            p += n - 1;
        }
        p++;
    }
    return NULL;
}

static const char *fi_skip_number(const char *p, const char *end) {
    if (p < end && *p == '-') p++;
    if (p >= end || !FI_IS_DIGIT(*p)) return NULL;
    if (*p == '0') p++;
    else while (p < end && FI_IS_DIGIT(*p)) p++;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !FI_IS_DIGIT(*p)) return NULL;
#if FI_SWAR
        while (end - p >= 8 && fi_eight_digits(fi_read8(p))) p += 8; /* long fractions */
#endif
        while (p < end && FI_IS_DIGIT(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !FI_IS_DIGIT(*p)) return NULL;
        while (p < end && FI_IS_DIGIT(*p)) p++;
    }
    return p;
}

static const char *fi_skip_literal(const char *p, const char *end, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
    return p + n;
}

/* Skip (and validate) one JSON value at p (no leading whitespace). NULL on error or when nested
 * deeper than 256 levels. */
static const char *fi_skip_value(const char *p, const char *end, int depth) {
    if (p >= end || depth > 256) return NULL;
    switch (*p) {
    case '"':
        return fi_skip_string(p, end);
    case '{':
    case '[': {
        /* an object's members are "key": value, an array's elements just value */
        const char close = *p == '{' ? '}' : ']';
        p = fi_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                if (p >= end || *p != '"') return NULL;
                p = fi_skip_string(p, end);
                if (!p) return NULL;
                p = fi_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = fi_ws(p + 1, end);
            }
            p = fi_skip_value(p, end, depth + 1);
            if (!p) return NULL;
            p = fi_ws(p, end);
            if (p >= end) return NULL;
            if (*p == close) return p + 1;
            if (*p != ',') return NULL;
            p = fi_ws(p + 1, end);
        }
    }
    case 't':
        return fi_skip_literal(p, end, "true");
    case 'f':
        return fi_skip_literal(p, end, "false");
    case 'n':
        return fi_skip_literal(p, end, "null");
    default:
        return fi_skip_number(p, end);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Columnar scanner for arrays of annotation objects                                            */
/* ------------------------------------------------------------------------------------------ */

/* The keys the scanner reads; every other key's value is skipped. Bit i of a row's `seen` mask
 * says key i was present. */
enum {
    FI_IMAGE_ID = 0, FI_CATEGORY_ID, FI_BBOX, FI_SCORE, FI_AREA, FI_ISCROWD, FI_ID, FI_IGNORE,
    FI_NKEYS
};

/* "segmentation", "keypoints" and "num_keypoints" are not among them: where `segm` (`kpts`,
 * `nkpts`) is not NULL, the value's bytes are recorded (offsets from `base`, 2 per row, -1: no
 * such key), to be read when the evaluation needs them (fi_parse_rle...); no "seen" bit. */
#define FI_SEGMENTATION 16
#define FI_KEYPOINTS 17
#define FI_NUM_KEYPOINTS 18

typedef struct {
    int64_t *image_id, *category_id, *id;
    double *bbox, *score, *area, *iscrowd, *ignore;
    uint8_t *seen;
    int64_t *segm, *kpts, *nkpts;
    const char *base;
} fi_columns;

static int fi_key_index(const char *k, size_t n) {
    switch (n) { /* dispatch on length, then one comparison */
    case 2: return memcmp(k, "id", 2) == 0 ? FI_ID : -1;
    case 4: return memcmp(k, "bbox", 4) == 0 ? FI_BBOX : memcmp(k, "area", 4) == 0 ? FI_AREA : -1;
    case 5: return memcmp(k, "score", 5) == 0 ? FI_SCORE : -1;
    case 6: return memcmp(k, "ignore", 6) == 0 ? FI_IGNORE : -1;
    case 7: return memcmp(k, "iscrowd", 7) == 0 ? FI_ISCROWD : -1;
    case 8: return memcmp(k, "image_id", 8) == 0 ? FI_IMAGE_ID : -1;
    case 9: return memcmp(k, "keypoints", 9) == 0 ? FI_KEYPOINTS : -1;
    case 11: return memcmp(k, "category_id", 11) == 0 ? FI_CATEGORY_ID : -1;
    case 12: return memcmp(k, "segmentation", 12) == 0 ? FI_SEGMENTATION : -1;
    case 13: return memcmp(k, "num_keypoints", 13) == 0 ? FI_NUM_KEYPOINTS : -1;
    default: return -1;
    }
}

/* A number, or true/false (Python's bool is an int: pycocotools takes "iscrowd": true). */
static const char *fi_parse_flag(const char *p, const char *end, const uint64_t *pow5,
                                 double *out) {
    const char *q;
    if ((q = fi_skip_literal(p, end, "true")) != NULL) { *out = 1.0; return q; }
    if ((q = fi_skip_literal(p, end, "false")) != NULL) { *out = 0.0; return q; }
    return fi_parse_number(p, end, pow5, out);
}

/* Parse the object at p (at '{') into row r. Returns the position after it or NULL. */
static const char *fi_parse_object(const char *p, const char *end, const uint64_t *pow5,
                                   fi_columns *c, int64_t r) {
    uint8_t seen = 0;
    if (c->segm) c->segm[2 * r] = c->segm[2 * r + 1] = -1; /* none, unless the key comes */
    if (c->kpts) c->kpts[2 * r] = c->kpts[2 * r + 1] = -1;
    if (c->nkpts) c->nkpts[2 * r] = c->nkpts[2 * r + 1] = -1;
    p = fi_ws(p + 1, end);
    if (p < end && *p == '}') { c->seen[r] = 0; return p + 1; }
    for (;;) {
        const char *k, *ke;
        int key, j;
        if (p >= end || *p != '"') return NULL;
        k = p + 1;
        p = fi_skip_string(p, end); /* validated as any string */
        if (!p) return NULL;
        ke = p - 1;
        if (memchr(k, '\\', (size_t)(ke - k))) return NULL; /* escaped keys: left to Python */
        key = fi_key_index(k, (size_t)(ke - k));
        p = fi_ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = fi_ws(p + 1, end);
        switch (key) {
        case FI_IMAGE_ID:    p = fi_parse_int(p, end, &c->image_id[r]); break;
        case FI_CATEGORY_ID: p = fi_parse_int(p, end, &c->category_id[r]); break;
        case FI_ID:          p = fi_parse_int(p, end, &c->id[r]); break;
        case FI_SCORE:       p = fi_parse_number(p, end, pow5, &c->score[r]); break;
        case FI_AREA:        p = fi_parse_number(p, end, pow5, &c->area[r]); break;
        case FI_ISCROWD:     p = fi_parse_flag(p, end, pow5, &c->iscrowd[r]); break;
        case FI_IGNORE:      p = fi_parse_flag(p, end, pow5, &c->ignore[r]); break;
        case FI_BBOX:
            if (p >= end || *p != '[') return NULL;
            p++;
            for (j = 0; j < 4 && p; j++) {
                p = fi_ws(p, end);
                p = fi_parse_number(p, end, pow5, &c->bbox[4 * r + j]);
                if (!p) return NULL;
                p = fi_ws(p, end);
                if (p >= end || *p != (j < 3 ? ',' : ']')) return NULL;
                p++;
            }
            break;
        case FI_SEGMENTATION:
        case FI_KEYPOINTS:
        case FI_NUM_KEYPOINTS: {
            const char *value = p;
            int64_t *span = key == FI_SEGMENTATION ? c->segm : key == FI_KEYPOINTS ? c->kpts
                                                                                  : c->nkpts;
            p = fi_skip_value(p, end, 1);
            if (p && span) {
                span[2 * r] = value - c->base;
                span[2 * r + 1] = p - c->base;
            }
            break;
        }
        default:
            p = fi_skip_value(p, end, 1);
        }
        if (!p) return NULL;
        if (key >= 0 && key < FI_NKEYS) seen |= (uint8_t)(1u << key);
        p = fi_ws(p, end);
        if (p >= end) return NULL;
        if (*p == '}') { c->seen[r] = seen; return p + 1; }
        if (*p != ',') return NULL;
        p = fi_ws(p + 1, end);
    }
}

/* A compressed RLE object {"size": [h, w], "counts": "..."} (keys in any order, others
 * skipped) at [p, end): h, w and its string's characters between the quotes (JSON escapes
 * included). Returns 0, or -1 for anything else (a run list, a missing or repeated key...). */
static int fi_parse_rle(const char *p, const char *end, int64_t *h, int64_t *w, const char **s,
                        const char **s_end) {
    int have = 0; /* bit 0: size, bit 1: counts */
    p = fi_ws(p, end);
    if (p >= end || *p != '{') return -1;
    p = fi_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *k = p + 1, *ke = fi_skip_string(p, end);
        if (!ke) return -1;
        size_t n = (size_t)(ke - 1 - k);
        p = fi_ws(ke, end);
        if (p >= end || *p != ':') return -1;
        p = fi_ws(p + 1, end);
        if (n == 4 && memcmp(k, "size", 4) == 0) {
            if (have & 1 || p >= end || *p != '[') return -1;
            p = fi_parse_int(fi_ws(p + 1, end), end, h);
            if (!p || (p = fi_ws(p, end)) >= end || *p != ',') return -1;
            p = fi_parse_int(fi_ws(p + 1, end), end, w);
            if (!p || (p = fi_ws(p, end)) >= end || *p != ']') return -1;
            p++;
            have |= 1;
        } else if (n == 6 && memcmp(k, "counts", 6) == 0) {
            if (have & 2 || p >= end || *p != '"') return -1;
            *s = p + 1;
            p = fi_skip_string(p, end);
            if (!p) return -1;
            *s_end = p - 1;
            have |= 2;
        } else {
            if (memchr(k, '\\', n)) return -1; /* an escaped key: it could be either */
            p = fi_skip_value(p, end, 1);
            if (!p) return -1;
        }
        p = fi_ws(p, end);
        if (p < end && *p == ',') p = fi_ws(p + 1, end);
        else break;
    }
    if (p >= end || *p != '}' || have != 3) return -1;
    return 0;
}

/* Polygons [[x, y, ...], ...] at [p, end) (what pycocotools rasterises), each number as json
 * reads it (fi_parse_number): the numbers to xy (room: (end - p) / 2 + 1), each polygon's count
 * of numbers to counts (an odd last one dropped, as pycocotools; room as many). Returns how many
 * polygons (at least one), or -1 for anything else: an empty list, an object, a number the
 * parser declines (the caller then reads the value in Python). */
static int64_t fi_parse_polygons(const char *p, const char *end, const uint64_t *pow5,
                                 double *xy, int64_t *counts, int64_t *nxy) {
    int64_t parts = 0, at = 0;
    p = fi_ws(p, end);
    if (p >= end || *p != '[') return -1;
    p = fi_ws(p + 1, end);
    while (p < end && *p == '[') {
        int64_t m = 0;
        p = fi_ws(p + 1, end);
        if (p < end && *p == ']') {
            p++;
        } else {
            for (;;) {
                p = fi_parse_number(p, end, pow5, &xy[at + m]);
                if (!p) return -1;
                m++;
                p = fi_ws(p, end);
                if (p < end && *p == ',') { p = fi_ws(p + 1, end); continue; }
                if (p < end && *p == ']') { p++; break; }
                return -1;
            }
        }
        counts[parts++] = m / 2 * 2;
        at += m / 2 * 2;
        p = fi_ws(p, end);
        if (p < end && *p == ',') { p = fi_ws(p + 1, end); continue; }
        break;
    }
    if (parts == 0 || p >= end || *p != ']') return -1;
    *nxy = at;
    return parts;
}

/* Parse the objects of a JSON array from p (the first object of this chunk, or the array's
 * closing bracket) into rows row0, row0 + 1, ... (at most cap of them).
 *
 * Returns 1 on reaching the array's closing bracket (*stop_at = the position after it),
 * 0 on reaching `stop` exactly at the start of an object (the next chunk's start, which this
 * confirms), -1 on anything else (bad JSON, a value the scanner does not read, too many rows,
 * or `stop` not at an object boundary). */
static int fi_parse_array_chunk(const char *p, const char *end, const char *stop,
                                const uint64_t *pow5, fi_columns *c, int64_t row0, int64_t cap,
                                int64_t *nrows, const char **stop_at) {
    int64_t n = 0;
    p = fi_ws(p, end);
    if (p < end && *p == ']' ) { *nrows = 0; *stop_at = p + 1; return 1; }
    for (;;) {
        if (p >= end || *p != '{') return -1;
        if (n > 0 && stop != NULL && p >= stop) {
            *nrows = n;
            return p == stop ? 0 : -1;
        }
        if (n >= cap) return -1;
        p = fi_parse_object(p, end, pow5, c, row0 + n);
        if (!p) return -1;
        n++;
        p = fi_ws(p, end);
        if (p >= end) return -1;
        if (*p == ']') { *nrows = n; *stop_at = p + 1; return 1; }
        if (*p != ',') return -1;
        p = fi_ws(p + 1, end);
    }
}

/* A likely object boundary at or after p: the '{' of "} , {" (whitespace allowed). Only a
 * guess (the pattern could sit inside a string); the previous chunk confirms it. */
static const char *fi_next_boundary(const char *p, const char *end) {
    while (p < end) {
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q) return end;
        p = fi_ws(q + 1, end);
        if (p < end && *p == ',') {
            p = fi_ws(p + 1, end);
            if (p < end && *p == '{') return p;
        }
    }
    return end;
}

#endif
