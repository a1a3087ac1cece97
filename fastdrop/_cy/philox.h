/* Philox4x32-10, the contract's stream positions and its normal transform, for the
 * Cython backend.
 *
 * Mirrors fastdrop/_numpy/philox.py (the specification) and fastdrop/_numba/philox.py.
 * Position j draws output word j & 3 of the block counter (lo32(j >> 2), hi32(j >> 2),
 * purpose, 0) under the key (lo32(seed), hi32(seed)). The numbers are those of
 * fastdrop/_contract/stream.py, spelt as C hexadecimal literals.
 */
#ifndef FASTDROP_PHILOX_H
#define FASTDROP_PHILOX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define FD_M0 0xD2511F53u
#define FD_M1 0xCD9E8D57u
#define FD_W0 0x9E3779B9u
#define FD_W1 0xBB67AE85u
#define FD_BLOCK_MASK ((((uint64_t)1) << 62) - 1)

/* Counter word 2: which kind of draw a position feeds. */
#define FD_BERNOULLI 0u
#define FD_GAUSSIAN 1u

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

/* Load the counters of blocks block, block + 1, ..., block + FD_LANES - 1 and the key. */
static inline void fd_load(fd_lanes *s, uint64_t block, uint64_t seed, uint32_t purpose)
{
    for (int l = 0; l < FD_LANES; l++) {
        uint64_t b = (block + (uint64_t)l) & FD_BLOCK_MASK;
        s->c[0][l] = (uint32_t)b;
        s->c[1][l] = (uint32_t)(b >> 32);
        s->c[2][l] = purpose;
        s->c[3][l] = 0;
        s->k[0][l] = (uint32_t)seed;
        s->k[1][l] = (uint32_t)(seed >> 32);
    }
}

/* The words of blocks block, ..., block + nblocks - 1 (mod 2**62):
 *     out[4 q + w] = word w of Philox((lo32(b), hi32(b), purpose, 0), seed), b = block + q.
 * Portable C, which compilers vectorise only partly: every round packs and unpacks the
 * 64-bit products. */
static void fd_words_portable(uint32_t *out, uint64_t block, int64_t nblocks, uint64_t seed,
                              uint32_t purpose)
{
    fd_lanes s;
    for (int64_t q0 = 0; q0 < nblocks; q0 += FD_LANES) {
        int64_t m = nblocks - q0 < FD_LANES ? nblocks - q0 : FD_LANES;
        fd_load(&s, block + (uint64_t)q0, seed, purpose);
        fd_philox_lanes(&s);
        for (int64_t l = 0; l < m; l++)
            for (int w = 0; w < 4; w++) out[4 * (q0 + l) + w] = s.c[w][l];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* fd_round0_<ISA>(c, k, block, purpose): the words of fd_step_<ISA>'s blocks after the
 * first round, in c as that function keeps them. Where the step's blocks cross no
 * multiple of 2**32 and not the 2**62 wrap, counter words 1 to 3 (the block's high word,
 * purpose and 0) are the same in every lane: the round's second product, and the two new
 * words it gives, are scalars, and only word 0 takes vector work, 4 instructions a vector
 * where a round takes 7. VEC holds W blocks (LANES: 0, ..., W - 1), of which a step
 * draws FD_VECTORS_<ISA>; KEYS is its key type and XOR3 the three-way XOR. */
#define FD_ROUND0(ISA, TARGET, VEC, KEYS, W, LANES, SET1, ADD, AND, MUL, SRLI, XOR, XOR3)     \
    TARGET static inline void fd_round0_##ISA(VEC c[4][FD_VECTORS_##ISA],                     \
                                              const KEYS *k, uint64_t block,                 \
                                              uint32_t purpose)                               \
    {                                                                                         \
        enum { V = FD_VECTORS_##ISA, STEP = W * FD_VECTORS_##ISA };                           \
        const VEC m0 = SET1(FD_M0), lane = LANES;                                             \
        const uint64_t b = block & FD_BLOCK_MASK;                                             \
        if ((uint32_t)b <= UINT32_MAX - (STEP - 1) && b <= FD_BLOCK_MASK - (STEP - 1)) {      \
            const uint64_t p1 = (uint64_t)purpose * FD_M1;                                    \
            const VEC w0 = SET1((uint32_t)(p1 >> 32) ^ (uint32_t)(b >> 32) ^ (uint32_t)k->seed); \
            const VEC w1 = SET1((uint32_t)p1), first = ADD(SET1((int64_t)b), lane);           \
            for (int u = 0; u < V; u++) {                                                     \
                /* the low halves are the blocks' low words; the high halves are junk */      \
                VEC p0 = MUL(ADD(first, SET1(W * u)), m0);                                    \
                c[0][u] = w0;                                                                 \
                c[1][u] = w1;                                                                 \
                c[2][u] = XOR(SRLI(p0, 32), k->k1[0]);                                        \
                c[3][u] = p0;                                                                 \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        const VEC m1 = SET1(FD_M1), count = SET1(purpose), mask = SET1((int64_t)FD_BLOCK_MASK); \
        for (int u = 0; u < V; u++) {                                                         \
            VEC bl = AND(ADD(SET1((int64_t)(block + (uint64_t)(W * u))), lane), mask);        \
            /* counter (bl, bl >> 32, purpose, 0); MUL ignores bl's high half */              \
            VEC p0 = MUL(bl, m0), p1 = MUL(count, m1);                                        \
            c[0][u] = XOR3(SRLI(p1, 32), SRLI(bl, 32), k->k0[0]);                             \
            c[1][u] = p1;                                                                     \
            c[2][u] = XOR(SRLI(p0, 32), k->k1[0]);                                            \
            c[3][u] = p0;                                                                     \
        }                                                                                     \
    }

#define FD_AVX2_VECTORS 3 /* vectors of four blocks a step of fd_step_avx2 draws */
#define FD_VECTORS_avx2 FD_AVX2_VECTORS
#define FD_TARGET_AVX2 __attribute__((target("avx2")))

/* The round keys of seed, broadcast to every 64-bit lane (words in the low halves). */
typedef struct {
    __m256i k0[10], k1[10];
    uint64_t seed;
} fd_keys256;

FD_TARGET_AVX2 static inline void fd_keys_avx2(fd_keys256 *k, uint64_t seed)
{
    k->seed = seed;
    for (int r = 0; r < 10; r++) {
        k->k0[r] = _mm256_set1_epi64x((uint32_t)((uint32_t)seed + (uint32_t)r * FD_W0));
        k->k1[r] = _mm256_set1_epi64x((uint32_t)((uint32_t)(seed >> 32) + (uint32_t)r * FD_W1));
    }
}

#define FD_XOR3_AVX2(a, b, c) _mm256_xor_si256(_mm256_xor_si256(a, b), c)
FD_ROUND0(avx2, FD_TARGET_AVX2, __m256i, fd_keys256, 4, _mm256_set_epi64x(3, 2, 1, 0),
          _mm256_set1_epi64x, _mm256_add_epi64, _mm256_and_si256, _mm256_mul_epu32,
          _mm256_srli_epi64, _mm256_xor_si256, FD_XOR3_AVX2)

/* The words of blocks block, ..., block + 4 FD_AVX2_VECTORS - 1 (mod 2**62), in position
 * order: lo[u] holds the eight words of blocks block + 4u and block + 4u + 1, hi[u] those
 * of the next two. Each 32-bit word lives in the low half of a 64-bit lane, so vpmuludq
 * gives the whole 64-bit product of a round in one instruction with no packing. The high
 * halves collect junk (products, XORs), which vpmuludq ignores. A round is a chain of
 * multiply, shift and two XORs: three independent vectors a step keep the multipliers
 * busy through its latency. */
FD_TARGET_AVX2 static inline void fd_step_avx2(__m256i *lo, __m256i *hi, const fd_keys256 *k,
                                               uint64_t block, uint32_t purpose)
{
    enum { V = FD_AVX2_VECTORS };
    const __m256i m0 = _mm256_set1_epi64x(FD_M0), m1 = _mm256_set1_epi64x(FD_M1);
    __m256i c[4][V];
    fd_round0_avx2(c, k, block, purpose);
    for (int r = 1; r < 10; r++) {
        for (int u = 0; u < V; u++) {
            __m256i p0 = _mm256_mul_epu32(c[0][u], m0), p1 = _mm256_mul_epu32(c[2][u], m1);
            c[0][u] =
                _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), c[1][u]), k->k0[r]);
            c[2][u] =
                _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c[3][u]), k->k1[r]);
            c[1][u] = p1;
            c[3][u] = p0;
        }
    }
    for (int u = 0; u < V; u++) {
        /* Lane l holds block 4u + l. Gather each block's four low halves. */
        __m256i w01 = _mm256_blend_epi32(c[0][u], _mm256_slli_epi64(c[1][u], 32), 0xAA);
        __m256i w23 = _mm256_blend_epi32(c[2][u], _mm256_slli_epi64(c[3][u], 32), 0xAA);
        __m256i even = _mm256_unpacklo_epi64(w01, w23); /* blocks 0 and 2 */
        __m256i odd = _mm256_unpackhi_epi64(w01, w23);  /* blocks 1 and 3 */
        lo[u] = _mm256_permute2x128_si256(even, odd, 0x20);
        hi[u] = _mm256_permute2x128_si256(even, odd, 0x31);
    }
}

/* fd_words_portable's words with fd_step_avx2. A last, partial step is drawn whole into a
 * buffer. */
FD_TARGET_AVX2 static void fd_words_avx2(uint32_t *out, uint64_t block, int64_t nblocks,
                                         uint64_t seed, uint32_t purpose)
{
    enum { V = FD_AVX2_VECTORS, STEP = 4 * FD_AVX2_VECTORS };
    fd_keys256 k;
    uint32_t last[4 * STEP];
    fd_keys_avx2(&k, seed);
    for (int64_t q = 0; q < nblocks; q += STEP) {
        __m256i lo[V], hi[V];
        fd_step_avx2(lo, hi, &k, block + (uint64_t)q, purpose);
        uint32_t *o = nblocks - q >= STEP ? out + 4 * q : last;
        for (int u = 0; u < V; u++) {
            _mm256_storeu_si256((__m256i *)(o + 16 * u), lo[u]);
            _mm256_storeu_si256((__m256i *)(o + 16 * u + 8), hi[u]);
        }
        if (o == last)
            memcpy(out + 4 * q, last, (size_t)(4 * (nblocks - q)) * sizeof *out);
    }
}

#define FD_AVX512_VECTORS 4 /* vectors of eight blocks a step of fd_step_avx512 draws */
#define FD_VECTORS_avx512 FD_AVX512_VECTORS
#define FD_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

/* The round keys of seed, broadcast to every 64-bit lane (words in the low halves). */
typedef struct {
    __m512i k0[10], k1[10];
    uint64_t seed;
} fd_keys512;

FD_TARGET_AVX512 static inline void fd_keys_avx512(fd_keys512 *k, uint64_t seed)
{
    k->seed = seed;
    for (int r = 0; r < 10; r++) {
        k->k0[r] = _mm512_set1_epi64((uint32_t)((uint32_t)seed + (uint32_t)r * FD_W0));
        k->k1[r] = _mm512_set1_epi64((uint32_t)((uint32_t)(seed >> 32) + (uint32_t)r * FD_W1));
    }
}

#define FD_XOR3_AVX512(a, b, c) _mm512_ternarylogic_epi64(a, b, c, 0x96) /* 0x96: a ^ b ^ c */
FD_ROUND0(avx512, FD_TARGET_AVX512, __m512i, fd_keys512, 8,
          _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi64, _mm512_add_epi64,
          _mm512_and_si512, _mm512_mul_epu32, _mm512_srli_epi64, _mm512_xor_si512, FD_XOR3_AVX512)

/* The words of blocks block, ..., block + 8 FD_AVX512_VECTORS - 1 (mod 2**62), in
 * position order: lo[u] holds the sixteen words of blocks block + 8u to block + 8u + 3,
 * hi[u] those of the next four. fd_words_avx2 with AVX-512: eight blocks a vector, and
 * vpternlogq for each round's three-way XOR. Block l of a vector ends with its words w
 * in the low halves of c[w][l]. Four two-source permutations put them in order: one
 * pairs words 0 and 1 of each block (and one words 2 and 3), one 32-bit lane at a time,
 * then one interleaves the pairs of blocks 0 to 3 (and one of blocks 4 to 7), 64 bits at
 * a time. */
FD_TARGET_AVX512 static inline void fd_step_avx512(__m512i *lo, __m512i *hi,
                                                   const fd_keys512 *k, uint64_t block,
                                                   uint32_t purpose)
{
    enum { V = FD_AVX512_VECTORS };
    const __m512i m0 = _mm512_set1_epi64(FD_M0), m1 = _mm512_set1_epi64(FD_M1);
    /* lane 2l: the low half of lane l of the first source; 2l + 1: of the second's */
    const __m512i pair = _mm512_set_epi32(30, 14, 28, 12, 26, 10, 24, 8, 22, 6, 20, 4, 18, 2,
                                          16, 0);
    const __m512i first = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i second = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
    __m512i c[4][V];
    fd_round0_avx512(c, k, block, purpose);
    for (int r = 1; r < 10; r++) {
        for (int u = 0; u < V; u++) {
            __m512i p0 = _mm512_mul_epu32(c[0][u], m0), p1 = _mm512_mul_epu32(c[2][u], m1);
            /* 0x96: a ^ b ^ c */
            c[0][u] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), c[1][u], k->k0[r],
                                                0x96);
            c[2][u] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), c[3][u], k->k1[r],
                                                0x96);
            c[1][u] = p1;
            c[3][u] = p0;
        }
    }
    for (int u = 0; u < V; u++) {
        __m512i w01 = _mm512_permutex2var_epi32(c[0][u], pair, c[1][u]); /* lane l: block l */
        __m512i w23 = _mm512_permutex2var_epi32(c[2][u], pair, c[3][u]);
        lo[u] = _mm512_permutex2var_epi64(w01, first, w23);
        hi[u] = _mm512_permutex2var_epi64(w01, second, w23);
    }
}

/* fd_words_portable's words with fd_step_avx512. A last, partial step is drawn whole into
 * a buffer. */
FD_TARGET_AVX512 static void fd_words_avx512(uint32_t *out, uint64_t block, int64_t nblocks,
                                             uint64_t seed, uint32_t purpose)
{
    enum { V = FD_AVX512_VECTORS, STEP = 8 * FD_AVX512_VECTORS };
    fd_keys512 k;
    uint32_t last[4 * STEP];
    fd_keys_avx512(&k, seed);
    for (int64_t q = 0; q < nblocks; q += STEP) {
        __m512i lo[V], hi[V];
        fd_step_avx512(lo, hi, &k, block + (uint64_t)q, purpose);
        uint32_t *o = nblocks - q >= STEP ? out + 4 * q : last;
        for (int u = 0; u < V; u++) {
            _mm512_storeu_si512((void *)(o + 32 * u), lo[u]);
            _mm512_storeu_si512((void *)(o + 32 * u + 16), hi[u]);
        }
        if (o == last)
            memcpy(out + 4 * q, last, (size_t)(4 * (nblocks - q)) * sizeof *out);
    }
}

/* flags[i] = word i >= threshold for the words fd_words_avx512 would write: compared in
 * the registers, so that a mask is never stored as words and read back. */
FD_TARGET_AVX512 static void fd_flags_avx512(uint8_t *flags, uint64_t block, int64_t nblocks,
                                             uint64_t seed, uint32_t purpose,
                                             uint32_t threshold)
{
    enum { V = FD_AVX512_VECTORS, STEP = 8 * FD_AVX512_VECTORS };
    const __m512i t = _mm512_set1_epi32((int)threshold);
    fd_keys512 k;
    uint8_t last[4 * STEP];
    fd_keys_avx512(&k, seed);
    for (int64_t q = 0; q < nblocks; q += STEP) {
        __m512i lo[V], hi[V];
        fd_step_avx512(lo, hi, &k, block + (uint64_t)q, purpose);
        uint8_t *o = nblocks - q >= STEP ? flags + 4 * q : last;
        for (int u = 0; u < V; u++) {
            _mm_storeu_si128((__m128i *)(o + 32 * u),
                             _mm_maskz_set1_epi8(_mm512_cmpge_epu32_mask(lo[u], t), 1));
            _mm_storeu_si128((__m128i *)(o + 32 * u + 16),
                             _mm_maskz_set1_epi8(_mm512_cmpge_epu32_mask(hi[u], t), 1));
        }
        if (o == last)
            memcpy(flags + 4 * q, last, (size_t)(4 * (nblocks - q)));
    }
}

/* The instruction sets fd_words may use, from fd_use_simd. */
enum { FD_PORTABLE = 0, FD_AVX2 = 1, FD_AVX512 = 2 };
static int fd_simd = FD_PORTABLE; /* fd_words's and bfloat16's loop's: AVX-512, AVX2, C */
static int fd_f16c = 0;           /* whether affine.h converts float16 with F16C */

/* Draw words (and run affine.h's bfloat16 loop) with at most the instruction set level
 * (FD_AVX512, FD_AVX2, FD_PORTABLE), and convert float16 with F16C from FD_AVX2 on, where
 * the CPU has them; returns the level in use. */
static int fd_use_simd(int level)
{
    __builtin_cpu_init();
    if (level >= FD_AVX512 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        fd_simd = FD_AVX512;
    else if (level >= FD_AVX2 && __builtin_cpu_supports("avx2"))
        fd_simd = FD_AVX2;
    else
        fd_simd = FD_PORTABLE;
    fd_f16c = fd_simd >= FD_AVX2 && __builtin_cpu_supports("f16c");
    return fd_simd;
}
#else
static int fd_use_simd(int level)
{
    (void)level;
    return 0;
}
#endif

/* fd_words_portable's words, through fd_words_avx512 or fd_words_avx2 where enabled. */
static inline void fd_words(uint32_t *out, uint64_t block, int64_t nblocks, uint64_t seed,
                            uint32_t purpose)
{
#ifdef FD_AVX2_VECTORS
    if (fd_simd == FD_AVX512) {
        fd_words_avx512(out, block, nblocks, seed, purpose);
        return;
    }
    if (fd_simd == FD_AVX2) {
        fd_words_avx2(out, block, nblocks, seed, purpose);
        return;
    }
#endif
    fd_words_portable(out, block, nblocks, seed, purpose);
}

/* Blocks drawn at a time into a buffer on the stack: about 4 KiB of words, in whole steps
 * of fd_words_avx2 (24 of them) and fd_words_avx512 (9). */
#define FD_CHUNK 288

/* On x86-64 Linux fd_keep, fd_normal (and affine.h's loops) are compiled for the x86-64-v4
 * (AVX-512), x86-64-v3 (AVX2, F16C) and baseline instruction sets and picked at load time
 * (tested with GCC 12).
 * fd_keep's work is all integer; the floating point is +, -, *, / and sqrt, and float16
 * conversions, each correctly rounded in every instruction set, and the build turns off
 * FMA contraction (-ffp-contract=off), so every version gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && \
    (!defined(__clang__) || __clang_major__ >= 18)
#define FD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
/* Clang before 18 takes no arch= in target_clones. */
#define FD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FD_CLONES
#endif

/* Keep flags for positions [pos, pos + n):
 *     flags[(pos & 3) + k] = draw(pos + k) >= threshold,  0 <= k < n.
 * Returns pos & 3. flags holds at least n + 6 bytes (whole blocks); the extra ones are
 * scratch. threshold 0 keeps everything and above 2**32 - 1 nothing, without running
 * Philox. */
FD_CLONES
static int fd_keep(uint8_t *flags, uint64_t pos, int64_t n, uint64_t seed, uint32_t purpose,
                   uint64_t threshold)
{
    uint64_t block = pos >> 2;
    int skip = (int)(pos & 3);
    int64_t nblocks = (skip + n + 3) >> 2;
    if (threshold == 0 || threshold > UINT32_MAX) { /* p = 0, or no 32-bit draw reaches 2**32 */
        memset(flags, threshold == 0, (size_t)(4 * nblocks));
        return skip;
    }
    uint32_t t = (uint32_t)threshold, words[4 * FD_CHUNK];
#ifdef FD_AVX2_VECTORS
    if (fd_simd == FD_AVX512) { /* compared in the registers: no words stored */
        fd_flags_avx512(flags, block, nblocks, seed, purpose, t);
        return skip;
    }
#endif
    for (int64_t q0 = 0; q0 < nblocks; q0 += FD_CHUNK) {
        int64_t m = nblocks - q0 < FD_CHUNK ? nblocks - q0 : FD_CHUNK;
        fd_words(words, block + (uint64_t)q0, m, seed, purpose);
        uint8_t *f = flags + 4 * q0;
        for (int64_t i = 0; i < 4 * m; i++) f[i] = words[i] >= t;
    }
    return skip;
}

/* The Box-Muller transform of fastdrop/_numpy/philox.py, operation for operation. */
#define FD_LN2 0x1.62e42fefa39efp-1
#define FD_SQRT2 0x1.6a09e667f3bcdp+0
#define FD_PI_2M32 0x1.921fb54442d18p-31 /* pi / 2**32 */
#define FD_MANTISSA ((((uint64_t)1) << 52) - 1)
#define FD_ONE_BITS (((uint64_t)1023) << 52) /* the bits of 1.0 */

static const double FD_LOG[11] = { /* 1 / (2k + 1) */
    0x1p+0, 0x1.5555555555555p-2, 0x1.999999999999ap-3, 0x1.2492492492492p-3,
    0x1.c71c71c71c71cp-4, 0x1.745d1745d1746p-4, 0x1.3b13b13b13b14p-4, 0x1.1111111111111p-4,
    0x1.e1e1e1e1e1e1ep-5, 0x1.af286bca1af28p-5, 0x1.8618618618618p-5,
};
static const double FD_SIN[9] = { /* (-1)**k / (2k + 1)! */
    0x1p+0, -0x1.5555555555555p-3, 0x1.1111111111111p-7, -0x1.a01a01a01a01ap-13,
    0x1.71de3a556c734p-19, -0x1.ae64567f544e4p-26, 0x1.6124613a86d09p-33,
    -0x1.ae7f3e733b81fp-41, 0x1.952c77030ad4ap-49,
};
static const double FD_COS[9] = { /* (-1)**k / (2k)! */
    0x1p+0, -0x1p-1, 0x1.5555555555555p-5, -0x1.6c16c16c16c17p-10, 0x1.a01a01a01a01ap-16,
    -0x1.27e4fb7789f5cp-22, 0x1.1eed8eff8d898p-29, -0x1.93974a8c07c9dp-37,
    0x1.ae7f3e733b81fp-45,
};

/* sum_k c[k] * z**k by Horner's rule, highest power first. */
static inline double fd_series(const double *c, int n, double z)
{
    double acc = c[n - 1];
    for (int k = n - 2; k >= 0; k--) acc = acc * z + c[k];
    return acc;
}

/* sqrt(-2 ln U) for U = (2u + 1) / 2**33. */
static inline double fd_radius(uint32_t u)
{
    double y = 2.0 * (double)u + 1.0; /* exact: below 2**33 */
    uint64_t bits;
    memcpy(&bits, &y, sizeof bits);
    int e = (int)(bits >> 52) - 1023; /* y = m * 2**e, m in [1, 2) */
    uint64_t mbits = (bits & FD_MANTISSA) | FD_ONE_BITS;
    double m;
    memcpy(&m, &mbits, sizeof m);
    int big = m > FD_SQRT2;
    m = big ? m * 0.5 : m; /* now m in [sqrt(1/2), sqrt(2)) */
    e += big;
    double s = (m - 1.0) / (m + 1.0);
    double ln_m = (2.0 * s) * fd_series(FD_LOG, 11, s * s);
    double ln_u = (double)(e - 33) * FD_LN2 + ln_m;
    return sqrt(-2.0 * ln_u);
}

/* cos and sin of 2 pi V for V = (2v + 1) / 2**33. */
static inline void fd_cos_sin(uint32_t v, double *cos_t, double *sin_t)
{
    int64_t q = 2 * (int64_t)v + 1; /* theta = pi * q / 2**32 = k * pi/2 + a */
    int64_t k = (q + (1 << 30)) >> 31;
    double a = (double)(int32_t)(q - (k << 31)) * FD_PI_2M32; /* exact integer, |a| <= pi/4 */
    double a2 = a * a;
    double sin_a = a * fd_series(FD_SIN, 9, a2);
    double cos_a = fd_series(FD_COS, 9, a2);
    /* By quadrant k & 3 = 0, 1, 2, 3: cos t = cos a, -sin a, -cos a, sin a and
     * sin t = sin a, cos a, -sin a, -cos a. Negation is exact. */
    int quadrant = (int)(k & 3);
    double c = quadrant & 1 ? sin_a : cos_a;
    double s = quadrant & 1 ? cos_a : sin_a;
    *cos_t = (quadrant + 1) & 2 ? -c : c;
    *sin_t = quadrant & 2 ? -s : s;
}

/* Standard normals for positions [pos, pos + n), drawn under purpose FD_GAUSSIAN:
 *     z[(pos & 3) + k] = normal(pos + k),  0 <= k < n.
 * Returns pos & 3. z holds at least n + 6 doubles (whole blocks); the extra ones are
 * scratch. Words 0 and 1 of a block give its positions 0 and 1 (r cos t, r sin t), words
 * 2 and 3 its positions 2 and 3. */
FD_CLONES
static int fd_normal(double *z, uint64_t pos, int64_t n, uint64_t seed)
{
    uint64_t block = pos >> 2;
    int skip = (int)(pos & 3);
    int64_t nblocks = (skip + n + 3) >> 2;
    uint32_t words[4 * FD_CHUNK];
    for (int64_t q0 = 0; q0 < nblocks; q0 += FD_CHUNK) {
        int64_t m = nblocks - q0 < FD_CHUNK ? nblocks - q0 : FD_CHUNK;
        fd_words(words, block + (uint64_t)q0, m, seed, FD_GAUSSIAN);
        double *o = z + 4 * q0;
        for (int64_t i = 0; i < 4 * m; i += 2) { /* words (u, v): r cos t, then r sin t */
            double r = fd_radius(words[i]), cos_t, sin_t;
            fd_cos_sin(words[i + 1], &cos_t, &sin_t);
            o[i] = r * cos_t;
            o[i + 1] = r * sin_t;
        }
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

/* bfloat16 <-> float32 in integer arithmetic, which vectorises in every instruction set.
 * bfloat16 is float32's top half, so widening is exact; narrowing rounds as ml_dtypes
 * does: to nearest even, by adding 0x7FFF and the kept half's last bit, then dropping the
 * low half (a carry out of the largest finite values gives inf); a NaN becomes the quiet
 * NaN 0x7FC0 with its sign. */
static inline float fd_b2f(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t fd_f2b(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t even = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = ((u >> 16) & 0x8000u) | 0x7FC0u;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : even);
}

#endif
