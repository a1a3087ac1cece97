/* The Cython backend's contiguous select loop, in C so that it is compiled per instruction
 * set (FD_CLONES): the module itself is built for the baseline, where it runs at SSE2's
 * four floats a step and converts float16 through library calls.
 *
 *     y[k] = keep[k] ? x[k] * scale + shift : fill,  0 <= k < n,  all kept if keep is NULL
 *
 * computed in C (float for float16 and float32, double for float64) and rounded once to
 * the dtype. Loads and computes always, then selects: this vectorises. Each x[k] is read
 * before y[k] is written, so y may be x. */
#ifndef FASTDROP_AFFINE_H
#define FASTDROP_AFFINE_H

#include "philox.h"

#define FD_SAME(v) (v)

#define FD_AFFINE(NAME, T, C, LOAD, STORE)                                                   \
    FD_CLONES                                                                                \
    static void NAME(const T *x, T *y, const uint8_t *keep, int64_t n, C scale, C shift,    \
                     T fill)                                                                 \
    {                                                                                        \
        if (keep == NULL) {                                                                  \
            for (int64_t k = 0; k < n; k++)                                                  \
                y[k] = STORE(LOAD(x[k]) * scale + shift);                                    \
        } else {                                                                             \
            for (int64_t k = 0; k < n; k++) {                                                \
                T v = STORE(LOAD(x[k]) * scale + shift);                                     \
                y[k] = keep[k] ? v : fill;                                                   \
            }                                                                                \
        }                                                                                    \
    }

FD_AFFINE(fd_affine_f32, float, float, FD_SAME, FD_SAME)
FD_AFFINE(fd_affine_f64, double, double, FD_SAME, FD_SAME)
FD_AFFINE(fd_affine_f16, uint16_t, float, fd_h2f, fd_f2h) /* float16 as its bit pattern */

#endif
