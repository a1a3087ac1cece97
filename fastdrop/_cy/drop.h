/* Dropout of a contiguous run in one pass: each vector of Philox words is compared with the
 * threshold, selects, and is packed while it sits in the registers, so that words and flags
 * never reach memory. AVX-512 and AVX2, picked at run time (fd_use_simd); elsewhere
 * kernels.pyx draws flags with fd_keep and selects with affine.h's loops, the same bits.
 *
 * For 0 <= k < n, with u(k) the Bernoulli word at stream position pos + k:
 *     y[k] = u(k) >= threshold ? x[k] * scale + shift : fill     (if y is not NULL)
 *     bit bit0 + k of bits |= u(k) >= threshold                   (if bits is not NULL)
 * in float (float32) or double (float64) and rounded as affine.h's loops do; a y of NULL
 * draws the bits alone. x may be y. The bits must be zero where they are written. Words
 * come in position order from fd_step_avx512 and fd_step_avx2; the vectors of a step that
 * run past either end of the run (the first holds words before pos when pos is not a
 * multiple of 4, the last words after pos + n) go through a word buffer one element at a
 * time. */
#ifndef FASTDROP_DROP_H
#define FASTDROP_DROP_H

#include "affine.h"

typedef struct {
    const void *x;
    void *y;
    uint8_t *bits;
    int64_t bit0;
    uint64_t pos;
    int64_t n;
    uint64_t seed;
    uint32_t threshold;
    double scale, shift, fill;
} fd_run;

/* The fused loops exist for this threshold at the level in use: 0 (p = 0) and 2**32 (p = 1)
 * skip Philox in fd_keep instead. */
static inline int fd_fused(uint64_t threshold)
{
#ifdef FD_AVX2_VECTORS
    return fd_simd >= FD_AVX2 && threshold != 0 && threshold <= UINT32_MAX;
#else
    (void)threshold;
    return 0;
#endif
}

/* Whether the run is plain dropout: a shift of -0.0 (x * scale + -0.0 is x * scale, bit
 * for bit) and a fill of +0.0. */
static inline int fd_plain(const fd_run *r)
{
    return r->shift == 0.0 && signbit(r->shift) && r->fill == 0.0 && !signbit(r->fill);
}

/* OR the low nbits bits of m into bits from bit q on: one store where q starts a byte and
 * nbits fills whole ones (every run of a contiguous array but the first vector). */
static inline void fd_or_bits(uint8_t *bits, int64_t q, uint32_t m, int nbits)
{
    uint8_t *b = bits + (q >> 3);
    if ((q & 7) == 0 && nbits == 16) {
        uint16_t v = (uint16_t)m;
        memcpy(b, &v, 2); /* the bytes are zero: OR is a store */
    } else if ((q & 7) == 0 && nbits == 8) {
        b[0] = (uint8_t)m;
    } else {
        uint64_t v = (uint64_t)m << (q & 7);
        for (int i = 0; i < ((int)(q & 7) + nbits + 7) >> 3; i++) b[i] |= (uint8_t)(v >> (8 * i));
    }
}

/* Element k of the run from its word, one at a time: the arithmetic of affine.h. */
static inline void fd_one(const fd_run *r, int f64, int64_t k, uint32_t word)
{
    int keep = word >= r->threshold;
    if (r->y != NULL && f64) {
        double v = ((const double *)r->x)[k] * r->scale + r->shift;
        ((double *)r->y)[k] = keep ? v : r->fill;
    } else if (r->y != NULL) {
        float v = ((const float *)r->x)[k] * (float)r->scale + (float)r->shift;
        ((float *)r->y)[k] = keep ? v : (float)r->fill;
    }
    if (keep && r->bits != NULL) fd_or_bits(r->bits, r->bit0 + k, 1, 1);
}

/* The elements e <= k < e + len of the run whose words are words[0 .. len), those of them
 * that lie in the run. */
static inline void fd_some(const fd_run *r, int f64, int64_t e, const uint32_t *words, int len)
{
    for (int l = 0; l < len; l++)
        if (e + l >= 0 && e + l < r->n) fd_one(r, f64, e + l, words[l]);
}

#ifdef FD_AVX2_VECTORS
/* Elements e to e + 15, all in the run, from their words w. Plain (dropout's own shift
 * and fill) multiplies with the dropped lanes zeroed: one instruction where the general
 * select takes three. */
FD_TARGET_AVX512 static inline __attribute__((always_inline)) void
fd_put_avx512(const fd_run *r, int f64, int plain, int64_t e, __m512i w, __m512i t)
{
    __mmask16 keep = _mm512_cmpge_epu32_mask(w, t);
    if (r->y != NULL && f64) {
        const __m512d s = _mm512_set1_pd(r->scale), sh = _mm512_set1_pd(r->shift);
        const __m512d fill = _mm512_set1_pd(r->fill);
        const double *x = (const double *)r->x + e;
        double *y = (double *)r->y + e;
        for (int h = 0; h < 2; h++) {
            __mmask8 kh = (__mmask8)(keep >> (8 * h));
            __m512d v = _mm512_loadu_pd(x + 8 * h);
            v = plain ? _mm512_maskz_mul_pd(kh, v, s)
                      : _mm512_mask_blend_pd(kh, fill, _mm512_add_pd(_mm512_mul_pd(v, s), sh));
            _mm512_storeu_pd(y + 8 * h, v);
        }
    } else if (r->y != NULL) {
        const __m512 s = _mm512_set1_ps((float)r->scale), sh = _mm512_set1_ps((float)r->shift);
        const __m512 fill = _mm512_set1_ps((float)r->fill);
        __m512 v = _mm512_loadu_ps((const float *)r->x + e);
        v = plain ? _mm512_maskz_mul_ps(keep, v, s)
                  : _mm512_mask_blend_ps(keep, fill, _mm512_add_ps(_mm512_mul_ps(v, s), sh));
        _mm512_storeu_ps((float *)r->y + e, v);
    }
    if (r->bits != NULL) fd_or_bits(r->bits, r->bit0 + e, keep, 16);
}

/* Elements e to e + 7, all in the run, from their words w: keep where w >= t, unsigned, is
 * max(w, t) == w. Plain ANDs the product with the keep lanes. */
FD_TARGET_AVX2 static inline __attribute__((always_inline)) void
fd_put_avx2(const fd_run *r, int f64, int plain, int64_t e, __m256i w, __m256i t)
{
    __m256i keep = _mm256_cmpeq_epi32(_mm256_max_epu32(w, t), w);
    if (r->y != NULL && f64) {
        const __m256d s = _mm256_set1_pd(r->scale), sh = _mm256_set1_pd(r->shift);
        const __m256d fill = _mm256_set1_pd(r->fill);
        const double *x = (const double *)r->x + e;
        double *y = (double *)r->y + e;
        for (int h = 0; h < 2; h++) {
            __m128i kh = h ? _mm256_extracti128_si256(keep, 1) : _mm256_castsi256_si128(keep);
            __m256d k64 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(kh));
            __m256d v = _mm256_mul_pd(_mm256_loadu_pd(x + 4 * h), s);
            v = plain ? _mm256_and_pd(v, k64) : _mm256_blendv_pd(fill, _mm256_add_pd(v, sh), k64);
            _mm256_storeu_pd(y + 4 * h, v);
        }
    } else if (r->y != NULL) {
        const __m256 s = _mm256_set1_ps((float)r->scale), sh = _mm256_set1_ps((float)r->shift);
        const __m256 fill = _mm256_set1_ps((float)r->fill);
        const __m256 k32 = _mm256_castsi256_ps(keep);
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps((const float *)r->x + e), s);
        v = plain ? _mm256_and_ps(v, k32) : _mm256_blendv_ps(fill, _mm256_add_ps(v, sh), k32);
        _mm256_storeu_ps((float *)r->y + e, v);
    }
    if (r->bits != NULL)
        fd_or_bits(r->bits, r->bit0 + e, (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(keep)),
                   8);
}

/* The run loop and its entry for one instruction set, ISA (avx512 or avx2): steps of
 * FD_<ISA>_VECTORS vectors of type VEC, each vector 2 W words from fd_step_<ISA>, which
 * fd_put_<ISA> takes W at a time. fd_drop_<ISA>_as has float64 if f64 and plain if plain
 * as constants where inlined: one loop each. fd_drop_<ISA> takes a copy of the run, since
 * a store through bits (uint8_t) could otherwise change *r. */
#define FD_DROP(ISA, TARGET, VEC, KEYS, W, SET1, STORE)                                       \
    TARGET static inline __attribute__((always_inline)) void fd_drop_##ISA##_as(              \
        const fd_run *r, int f64, int plain)                                                  \
    {                                                                                         \
        enum { V = FD_VECTORS_##ISA };                                                        \
        const int64_t size = f64 ? 8 : 4;                                                     \
        const VEC t = SET1((int)r->threshold);                                                \
        KEYS k;                                                                               \
        uint32_t words[2 * W];                                                                \
        fd_keys_##ISA(&k, r->seed);                                                           \
        uint64_t block = r->pos >> 2; /* a vector holds W / 2 blocks */                       \
        for (int64_t e = -(int64_t)(r->pos & 3); e < r->n; e += 2 * W * V) {                  \
            VEC lo[V], hi[V];                                                                 \
            if (r->y != NULL)                                                                 \
                fd_prefetch(r->x, r->y, (e + FD_AHEAD) * size, 2 * W * V * size);             \
            fd_step_##ISA(lo, hi, &k, block, FD_BERNOULLI);                                   \
            block += W / 2 * V;                                                               \
            for (int u = 0; u < V; u++) {                                                     \
                int64_t a = e + 2 * W * u;                                                    \
                if (a >= 0 && a + 2 * W <= r->n) {                                            \
                    fd_put_##ISA(r, f64, plain, a, lo[u], t);                                 \
                    fd_put_##ISA(r, f64, plain, a + W, hi[u], t);                             \
                } else {                                                                      \
                    STORE((void *)words, lo[u]);                                              \
                    STORE((void *)(words + W), hi[u]);                                        \
                    fd_some(r, f64, a, words, 2 * W);                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
                                                                                              \
    TARGET static void fd_drop_##ISA(fd_run r, int f64)                                       \
    {                                                                                         \
        if (f64 && fd_plain(&r))                                                              \
            fd_drop_##ISA##_as(&r, 1, 1);                                                     \
        else if (f64)                                                                         \
            fd_drop_##ISA##_as(&r, 1, 0);                                                     \
        else if (fd_plain(&r))                                                                \
            fd_drop_##ISA##_as(&r, 0, 1);                                                     \
        else                                                                                  \
            fd_drop_##ISA##_as(&r, 0, 0);                                                     \
    }

FD_DROP(avx512, FD_TARGET_AVX512, __m512i, fd_keys512, 16, _mm512_set1_epi32, _mm512_storeu_si512)
FD_DROP(avx2, FD_TARGET_AVX2, __m256i, fd_keys256, 8, _mm256_set1_epi32, _mm256_storeu_si256)
#endif

/* The run, float64 if f64, at the level in use; only where fd_fused(threshold). */
static void fd_drop(const fd_run *r, int f64)
{
#ifdef FD_AVX2_VECTORS
    if (fd_simd == FD_AVX512)
        fd_drop_avx512(*r, f64);
    else
        fd_drop_avx2(*r, f64);
#else
    (void)r;
    (void)f64;
#endif
}

#endif
