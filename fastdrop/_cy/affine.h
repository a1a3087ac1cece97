/* The Cython backend's contiguous select loop, in C so that it is compiled per instruction
 * set (FD_CLONES): the module itself is built for the baseline, where it runs at SSE2's
 * four floats a step and converts float16 through library calls.
 *
 *     y[k] = keep[k] ? x[k] * scale + shift : fill,  0 <= k < n,  all kept if keep is NULL
 *
 * computed in C (float for float16, bfloat16 and float32, double for float64) and rounded
 * once to the dtype. Loads and computes always, then selects: this vectorises. Each x[k] is read
 * before y[k] is written, so y may be x. The loops ask for their lines FD_AHEAD elements
 * ahead (fd_prefetch, which drop.h's fused loops use too). */
#ifndef FASTDROP_AFFINE_H
#define FASTDROP_AFFINE_H

#include "philox.h"

#define FD_SAME(v) (v)

/* How far ahead of the element it works on a streaming loop asks for its lines. The
 * hardware prefetchers alone left the cores waiting: asking 2048 elements ahead made the
 * scale-copy of 1e8 float32 elements 20% faster on 2 threads (and dropout, whose Philox
 * work leaves the memory idle between requests, 25% faster). */
#define FD_AHEAD 2048
#define FD_STRIDE 256 /* elements between two rounds of prefetches in affine.h's loops */

/* Ask for the lines of bytes [offset, offset + bytes) of x (to read) and y (to write). A
 * prefetch never faults: past the end of an array it is only wasted, and the address is
 * computed as an integer, never as a pointer out of bounds. */
static inline void fd_prefetch(const void *x, const void *y, int64_t offset, int64_t bytes)
{
    for (int64_t c = offset; c < offset + bytes; c += 64) {
        __builtin_prefetch((const void *)((uintptr_t)x + (uintptr_t)c), 0, 3);
        __builtin_prefetch((const void *)((uintptr_t)y + (uintptr_t)c), 1, 3);
    }
}

#define FD_AFFINE(NAME, TARGET, T, C, LOAD, STORE)                                           \
    TARGET                                                                                   \
    static void NAME(const T *x, T *y, const uint8_t *keep, int64_t n, C scale, C shift,    \
                     T fill)                                                                 \
    {                                                                                        \
        for (int64_t k0 = 0; k0 < n; k0 += FD_STRIDE) { /* keep may be NULL */              \
            int64_t k1 = n - k0 < FD_STRIDE ? n : k0 + FD_STRIDE;                            \
            fd_prefetch(x, y, (k0 + FD_AHEAD) * (int64_t)sizeof(T), FD_STRIDE * sizeof(T));  \
            if (keep == NULL) {                                                              \
                for (int64_t k = k0; k < k1; k++)                                            \
                    y[k] = STORE(LOAD(x[k]) * scale + shift);                                \
            } else {                                                                         \
                for (int64_t k = k0; k < k1; k++) {                                          \
                    T v = STORE(LOAD(x[k]) * scale + shift);                                 \
                    y[k] = keep[k] ? v : fill;                                               \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }

FD_AFFINE(fd_affine_f32, FD_CLONES, float, float, FD_SAME, FD_SAME)
FD_AFFINE(fd_affine_f64, FD_CLONES, double, double, FD_SAME, FD_SAME)
FD_AFFINE(fd_affine_f16_each, FD_CLONES, uint16_t, float, fd_h2f, fd_f2h) /* float16's bits */

#if defined(__x86_64__) && defined(__GNUC__)
/* fd_affine_f16_each eight lanes at a time: GCC converts _Float16 one element at a time
 * even where the CPU has F16C. The conversions round in the current mode, as _Float16's
 * and the float arithmetic do (to nearest even, unless the process changes it). */
__attribute__((target("avx2,f16c")))
static void fd_affine_f16_f16c(const uint16_t *x, uint16_t *y, const uint8_t *keep, int64_t n,
                               float scale, float shift, uint16_t fill)
{
    const __m256 s = _mm256_set1_ps(scale), sh = _mm256_set1_ps(shift);
    const __m128i f = _mm_set1_epi16((short)fill), zero = _mm_setzero_si128();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + k)));
        __m128i h = _mm256_cvtps_ph(_mm256_add_ps(_mm256_mul_ps(v, s), sh),
                                    _MM_FROUND_CUR_DIRECTION);
        if (keep != NULL) {
            __m128i kept = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(keep + k)));
            h = _mm_blendv_epi8(h, f, _mm_cmpeq_epi16(kept, zero));
        }
        _mm_storeu_si128((__m128i *)(y + k), h);
    }
    fd_affine_f16_each(x + k, y + k, keep == NULL ? NULL : keep + k, n - k, scale, shift, fill);
}
#endif

/* bfloat16 as its bit pattern. Its conversions are integer shifts and adds, which GCC
 * vectorises in each instruction set: the loop is compiled for the baseline, AVX2 and
 * AVX-512 and picked by the level in force (fd_use_simd), so the tests can run each. */
FD_AFFINE(fd_affine_bf16_portable, , uint16_t, float, fd_b2f, fd_f2b)
#ifdef FD_AVX2_VECTORS
FD_AFFINE(fd_affine_bf16_avx2, FD_TARGET_AVX2, uint16_t, float, fd_b2f, fd_f2b)
FD_AFFINE(fd_affine_bf16_avx512, FD_TARGET_AVX512, uint16_t, float, fd_b2f, fd_f2b)
#endif

static inline void fd_affine_bf16(const uint16_t *x, uint16_t *y, const uint8_t *keep,
                                  int64_t n, float scale, float shift, uint16_t fill)
{
#ifdef FD_AVX2_VECTORS
    if (fd_simd == FD_AVX512) {
        fd_affine_bf16_avx512(x, y, keep, n, scale, shift, fill);
        return;
    }
    if (fd_simd == FD_AVX2) {
        fd_affine_bf16_avx2(x, y, keep, n, scale, shift, fill);
        return;
    }
#endif
    fd_affine_bf16_portable(x, y, keep, n, scale, shift, fill);
}

/* float16 as its bit pattern: with F16C where enabled (fd_use_simd). */
static inline void fd_affine_f16(const uint16_t *x, uint16_t *y, const uint8_t *keep, int64_t n,
                                 float scale, float shift, uint16_t fill)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (fd_f16c) {
        fd_affine_f16_f16c(x, y, keep, n, scale, shift, fill);
        return;
    }
#endif
    fd_affine_f16_each(x, y, keep, n, scale, shift, fill);
}

#endif
