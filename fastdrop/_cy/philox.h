/* Philox4x32-10 and the contract's stream positions, for the Cython backend.
 *
 * Mirrors fastdrop/_numpy/philox.py (the specification) and fastdrop/_numba/philox.py.
 * Position j draws output word j & 3 of the block counter (lo32(j >> 2), hi32(j >> 2),
 * purpose, 0) under the key (lo32(seed), hi32(seed)).
 */
#ifndef FASTDROP_PHILOX_H
#define FASTDROP_PHILOX_H

#include <stdint.h>
#include <string.h>

#define FD_M0 0xD2511F53u
#define FD_M1 0xCD9E8D57u
#define FD_W0 0x9E3779B9u
#define FD_W1 0xBB67AE85u
#define FD_BLOCK_MASK ((((uint64_t)1) << 62) - 1)

/* Counters run through Philox side by side: each round runs on FD_LANES independent
 * counters at once, which the compiler turns into SIMD multiplies (vpmuludq). */
#define FD_LANES 16

typedef struct {
    uint32_t c[4][FD_LANES]; /* counter words, then output words */
    uint32_t k[2][FD_LANES]; /* key words */
} fd_lanes;

static inline void fd_philox_lanes(fd_lanes *s)
{
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < FD_LANES; l++) {
            uint64_t p0 = (uint64_t)FD_M0 * s->c[0][l];
            uint64_t p1 = (uint64_t)FD_M1 * s->c[2][l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ s->c[1][l] ^ s->k[0][l];
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ s->c[3][l] ^ s->k[1][l];
            s->c[0][l] = n0;
            s->c[1][l] = (uint32_t)p1;
            s->c[2][l] = n2;
            s->c[3][l] = (uint32_t)p0;
            s->k[0][l] += FD_W0; /* the bump after the last round is never used */
            s->k[1][l] += FD_W1;
        }
    }
}

/* Philox4x32-10 on n rows: out[i] = philox(counter[i], key[i]), four and two words a row. */
static void fd_philox(uint32_t *out, const uint32_t *counter, const uint32_t *key, int64_t n)
{
    fd_lanes s;
    for (int64_t i0 = 0; i0 < n; i0 += FD_LANES) {
        int64_t m = n - i0 < FD_LANES ? n - i0 : FD_LANES;
        memset(&s, 0, sizeof s);
        for (int64_t l = 0; l < m; l++) {
            for (int w = 0; w < 4; w++) s.c[w][l] = counter[4 * (i0 + l) + w];
            for (int w = 0; w < 2; w++) s.k[w][l] = key[2 * (i0 + l) + w];
        }
        fd_philox_lanes(&s);
        for (int64_t l = 0; l < m; l++)
            for (int w = 0; w < 4; w++) out[4 * (i0 + l) + w] = s.c[w][l];
    }
}

/* Keep flags for positions [pos, pos + n):
 *     flags[(pos & 3) + k] = draw(pos + k) >= threshold,  0 <= k < n.
 * Returns pos & 3. flags holds at least n + 4 * FD_LANES bytes; the extra ones are scratch.
 * On x86-64 Linux it is compiled for AVX-512, AVX2 and the baseline and picked at load
 * time; the work is all integer, so every version gives the same flags. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define FD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FD_CLONES
#endif

FD_CLONES
static int fd_keep(uint8_t *flags, uint64_t pos, int64_t n, uint64_t seed, uint32_t purpose,
                   uint64_t threshold)
{
    uint64_t block = pos >> 2;
    int skip = (int)(pos & 3);
    int64_t nblocks = (skip + n + 3) >> 2;
    if (threshold > UINT32_MAX) { /* p = 1: no 32-bit draw reaches 2**32 */
        memset(flags, 0, (size_t)(4 * nblocks));
        return skip;
    }
    uint32_t t = (uint32_t)threshold;
    fd_lanes s;
    for (int64_t q0 = 0; q0 < nblocks; q0 += FD_LANES) {
        for (int l = 0; l < FD_LANES; l++) {
            uint64_t b = (block + (uint64_t)(q0 + l)) & FD_BLOCK_MASK;
            s.c[0][l] = (uint32_t)b;
            s.c[1][l] = (uint32_t)(b >> 32);
            s.c[2][l] = purpose;
            s.c[3][l] = 0;
            s.k[0][l] = (uint32_t)seed;
            s.k[1][l] = (uint32_t)(seed >> 32);
        }
        fd_philox_lanes(&s);
        uint8_t *f = flags + 4 * q0;
        for (int l = 0; l < FD_LANES; l++)
            for (int w = 0; w < 4; w++) f[4 * l + w] = s.c[w][l] >= t;
    }
    return skip;
}

/* float16 <-> float32, correctly rounded (round half to even), through the compiler's
 * _Float16 (GCC >= 12 or Clang >= 15 on x86-64; tested with GCC 12 on x86-64 only). */
static inline float fd_h2f(uint16_t h)
{
    _Float16 v;
    memcpy(&v, &h, sizeof h);
    return (float)v;
}

static inline uint16_t fd_f2h(float f)
{
    _Float16 v = (_Float16)f;
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}

#endif
