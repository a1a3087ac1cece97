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

static inline void fd_philox(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += FD_W0;
            k1 += FD_W1;
        }
        uint64_t p0 = (uint64_t)FD_M0 * c[0];
        uint64_t p1 = (uint64_t)FD_M1 * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = (uint32_t)p1;
        c[2] = n2;
        c[3] = (uint32_t)p0;
    }
}

/* Fill buf with the words of every block that covers positions [pos, pos + n) and return
 * pos & 3, the index in buf of the word for pos. buf holds at least n + 6 words. */
static inline int fd_draw(uint32_t *buf, uint64_t pos, int64_t n, uint64_t seed, uint32_t purpose)
{
    uint64_t block = pos >> 2;
    int skip = (int)(pos & 3);
    int64_t nblocks = (skip + n + 3) >> 2;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int64_t q = 0; q < nblocks; q++) {
        uint64_t b = (block + (uint64_t)q) & FD_BLOCK_MASK;
        uint32_t c[4] = {(uint32_t)b, (uint32_t)(b >> 32), purpose, 0};
        fd_philox(c, k0, k1);
        memcpy(buf + 4 * q, c, sizeof c);
    }
    return skip;
}

/* float16 <-> float32, correctly rounded (round half to even), through the compiler's
 * _Float16 (GCC >= 12, Clang >= 15 on x86-64 and AArch64). */
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
