/* AVX2 μ-law decode (16 samples per step), chosen at run time; the scalar table is the fallback.
 *
 * Why arithmetic and not the table: a 256-entry table cannot be gathered in one SIMD
 * instruction, but G.711's decode formula (audioop.c st_ulaw2linear16) can be computed in
 * 16-bit lanes: the variable shift `t << exp` becomes `t * (1 << exp)`, and (1 << exp) comes
 * from a byte shuffle (pshufb) of the eight powers of two. Bit-exact with the table by
 * construction; tests/core/test_codec.py checks both paths against audioop for every byte.
 *
 * Compiled with a per-function target attribute, so the extension still builds and runs on
 * any x86-64 (or non-x86) machine; `ulaw_simd_available()` asks the CPU once.
 */
#ifndef AL_ULAW_SIMD_H
#define AL_ULAW_SIMD_H

#include <stdint.h>
#include <stddef.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define AL_HAVE_AVX2_PATH 1

static int ulaw_simd_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

__attribute__((target("avx2"))) static inline __m256i al_ulaw16_avx2(__m128i bytes) {
    const __m256i pow2 = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0,
                                          1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0);
    __m256i u = _mm256_xor_si256(_mm256_cvtepu8_epi16(bytes), _mm256_set1_epi16(0xFF)); /* ~u */
    __m256i t = _mm256_add_epi16(_mm256_slli_epi16(_mm256_and_si256(u, _mm256_set1_epi16(0x0F)), 3),
                                 _mm256_set1_epi16(0x84));
    /* exponent in the low byte; 0x80 in the high byte makes pshufb write 0 there */
    __m256i idx = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(u, 4), _mm256_set1_epi16(7)),
                                  _mm256_set1_epi16((short)0x8000));
    t = _mm256_mullo_epi16(t, _mm256_shuffle_epi8(pow2, idx)); /* t << exp, at most 32256 */
    __m256i pos = _mm256_sub_epi16(t, _mm256_set1_epi16(0x84));
    __m256i neg = _mm256_sub_epi16(_mm256_setzero_si256(), pos); /* 0x84 - t */
    __m256i sign = _mm256_cmpeq_epi16(_mm256_and_si256(u, _mm256_set1_epi16(0x80)), _mm256_set1_epi16(0x80));
    return _mm256_blendv_epi8(pos, neg, sign);
}

/* Decodes the first n - n % 16 bytes; returns how many it did (the caller does the tail). */
__attribute__((target("avx2"))) static size_t ulaw_decode_avx2(const uint8_t *src, size_t n, int16_t *dst) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r = al_ulaw16_avx2(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), r);
    }
    return i;
}

/* Same, plus the exact sum of squares of the decoded samples (int64, no overflow: each
 * madd lane is at most 2 * 32124^2 < 2^31). */
__attribute__((target("avx2"))) static size_t ulaw_decode_sumsq_avx2(const uint8_t *src, size_t n, int16_t *dst,
                                                                      int64_t *sumsq) {
    size_t i = 0;
    __m256i acc = _mm256_setzero_si256(); /* 4 x int64 */
    for (; i + 16 <= n; i += 16) {
        __m256i r = al_ulaw16_avx2(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), r);
        __m256i sq = _mm256_madd_epi16(r, r); /* 8 x int32, non-negative */
        acc = _mm256_add_epi64(acc, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(sq)));
        acc = _mm256_add_epi64(acc, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(sq, 1)));
    }
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    *sumsq = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    return i;
}

#else
#define AL_HAVE_AVX2_PATH 0
static int ulaw_simd_available(void) { return 0; }
static size_t ulaw_decode_avx2(const uint8_t *src, size_t n, int16_t *dst) { (void)src; (void)n; (void)dst; return 0; }
static size_t ulaw_decode_sumsq_avx2(const uint8_t *src, size_t n, int16_t *dst, int64_t *sumsq) {
    (void)src; (void)n; (void)dst; *sumsq = 0; return 0;
}
#endif

#endif
