/* Where two byte strings differ, as pixel indices: the scan behind the panoptic scanline kernel.
 *
 * fastiou_diff_pixels(a, b, nbytes, bpp, out) writes to `out` (room for nbytes / bpp + 1
 * entries), in increasing order and each once, the pixel index k / bpp of every byte k where
 * a[k] != b[k] (b NULL: a[k] != 0), leaving out the fourth (alpha) byte of each pixel when bpp
 * is 4. `a` and `b` start at a pixel boundary. Returns how many were written.
 *
 * PNG scanlines of panoptic maps are mostly zero residuals: SSE2 compares 64 bytes a step and
 * skips them when all are equal; a portable 8-bytes-a-step loop does the same elsewhere.
 */
#ifndef FASTIOU_PANOPTIC_LINES_H
#define FASTIOU_PANOPTIC_LINES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define FASTIOU_LINES_SSE2 1
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static __inline int fastiou_ctz64(uint64_t x) {
    unsigned long i;
    _BitScanForward64(&i, x);
    return (int)i;
}
#else
#define fastiou_ctz64(x) __builtin_ctzll(x)
#endif

/* The pixels of the set bits of `bits` (bit t: byte base + t), appended after `count`. */
static inline ptrdiff_t fastiou_emit_pixels(uint64_t bits, ptrdiff_t base, ptrdiff_t bpp,
                                            ptrdiff_t *out, ptrdiff_t count) {
    while (bits) {
        ptrdiff_t k = base + fastiou_ctz64(bits);
        ptrdiff_t j = bpp == 3 ? k / 3 : k >> 2;
        if (count == 0 || out[count - 1] != j) {
            out[count++] = j;
        }
        bits &= bits - 1;
    }
    return count;
}

/* A bit per byte of the 8 bytes at a and b: set where they differ. */
static inline uint64_t fastiou_diff_bits8(const uint8_t *a, const uint8_t *b) {
    uint64_t x, y, d, bits = 0;
    int t;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    d = x ^ y;
    if (d == 0) {
        return 0;
    }
    for (t = 0; t < 8; t++) {
        bits |= (uint64_t)(((const uint8_t *)&d)[t] != 0) << t;
    }
    return bits;
}

static inline ptrdiff_t fastiou_diff_pixels(const uint8_t *a, const uint8_t *b, ptrdiff_t nbytes,
                                            ptrdiff_t bpp, ptrdiff_t *out) {
    /* bit t of a block that starts at a multiple of 4 bytes: not an alpha byte */
    const uint64_t keep = bpp == 4 ? 0x7777777777777777ULL : ~0ULL;
    static const uint8_t zeros8[8] = {0};
    ptrdiff_t k = 0, count = 0;
#ifdef FASTIOU_LINES_SSE2
    const __m128i zero = _mm_setzero_si128();
    for (; k + 64 <= nbytes; k += 64) {
        __m128i a0 = _mm_loadu_si128((const __m128i *)(a + k));
        __m128i a1 = _mm_loadu_si128((const __m128i *)(a + k + 16));
        __m128i a2 = _mm_loadu_si128((const __m128i *)(a + k + 32));
        __m128i a3 = _mm_loadu_si128((const __m128i *)(a + k + 48));
        __m128i e0, e1, e2, e3;
        uint64_t bits;
        if (b == NULL) { /* against zero: one OR of the 64 bytes says "all zero" */
            __m128i any = _mm_or_si128(_mm_or_si128(a0, a1), _mm_or_si128(a2, a3));
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, zero)) == 0xFFFF) {
                continue;
            }
            e0 = _mm_cmpeq_epi8(a0, zero);
            e1 = _mm_cmpeq_epi8(a1, zero);
            e2 = _mm_cmpeq_epi8(a2, zero);
            e3 = _mm_cmpeq_epi8(a3, zero);
        } else {
            e0 = _mm_cmpeq_epi8(a0, _mm_loadu_si128((const __m128i *)(b + k)));
            e1 = _mm_cmpeq_epi8(a1, _mm_loadu_si128((const __m128i *)(b + k + 16)));
            e2 = _mm_cmpeq_epi8(a2, _mm_loadu_si128((const __m128i *)(b + k + 32)));
            e3 = _mm_cmpeq_epi8(a3, _mm_loadu_si128((const __m128i *)(b + k + 48)));
            if (_mm_movemask_epi8(_mm_and_si128(_mm_and_si128(e0, e1), _mm_and_si128(e2, e3)))
                == 0xFFFF) {
                continue;
            }
        }
        bits = (uint64_t)(~_mm_movemask_epi8(e0) & 0xFFFF)
             | (uint64_t)(~_mm_movemask_epi8(e1) & 0xFFFF) << 16
             | (uint64_t)(~_mm_movemask_epi8(e2) & 0xFFFF) << 32
             | (uint64_t)(~_mm_movemask_epi8(e3) & 0xFFFF) << 48;
        count = fastiou_emit_pixels(bits & keep, k, bpp, out, count);
    }
#endif
    for (; k + 8 <= nbytes; k += 8) {
        uint64_t bits = fastiou_diff_bits8(a + k, b == NULL ? zeros8 : b + k);
        if (bits) {
            count = fastiou_emit_pixels(bits & keep, k, bpp, out, count);
        }
    }
    for (; k < nbytes; k++) {
        if (a[k] != (b == NULL ? 0 : b[k]) && !(bpp == 4 && (k & 3) == 3)) {
            count = fastiou_emit_pixels(1, k, bpp, out, count);
        }
    }
    return count;
}

#endif
