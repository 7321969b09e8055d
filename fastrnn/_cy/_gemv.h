/* Matrix-vector products of one-sequence inference (fastrnn/_cy/_infer.pyx), in three instruction
 * set levels (fastrnn/_cy/_infer.h chooses one when the module is imported).
 *
 * float32: y[r] = sum_k W[r, k] x[k] for the rows r < R of a row-major W (leading dimension ldw),
 * read in place: a layer's weight_hh is used as it is stored, with no transposed copy per call.
 * Each output is a dot product of a row with x; the AVX-512 kernel keeps 16 rows in flight and
 * reduces the 16 accumulators into one vector of 16 sums by a transpose tree, the AVX2 kernel does
 * the same with 8 rows, the portable kernel sums 8 interleaved partial sums per row.
 *
 * int8: y[r] = (float)acc[r] * sx * sw[r] with the exact integer acc[r] = sum_k Wq[r, k] q[k] of
 * int8 weights (one scale sw[r] per row) and int8 activations q (one scale sx). The weights are
 * packed once, when the model is quantized, into blocks of 16 rows by 4 columns (64 bytes: row
 * r's four weights, then row r+1's, ...), rows padded to a multiple of 16 and columns to a multiple
 * of 4 with zeros. AVX-512 VNNI's vpdpbusd multiplies unsigned by signed bytes: the activations
 * enter as u = q + 128 (q XOR 0x80) and 128 * sum_k Wq[r, k] (precomputed per row, ``corr``) is
 * subtracted. The AVX2 kernel widens both to int16 (vpmaddwd, no saturation: vpmaddubsw could
 * saturate its int16 pair sums); the portable kernel loops over int32 products. All three give
 * the same integers, so the same floats.
 *
 * Levels: 2 = AVX-512 (avx512f for float32; avx512f, avx512bw and avx512vnni for int8), 1 = AVX2
 * with FMA, 0 = portable C. The kernels of levels 1 and 2 carry GCC/Clang target attributes, so a
 * build with the default (portable) flags still has them; other compilers get level 0 only.
 */
#ifndef FASTRNN_GEMV_H
#define FASTRNN_GEMV_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FR_X86 1
#include <immintrin.h>
#define FR_T512 __attribute__((target("avx512f,fma")))
#define FR_TVNNI __attribute__((target("avx512f,fma,avx512bw,avx512vnni")))
#define FR_T256 __attribute__((target("avx2,fma")))
#define FR_TBF16 __attribute__((target("avx512f,fma,avx512bw,avx512bf16")))
#endif

typedef ptrdiff_t fr_idx;

/* ------------------------------------------------------------------------------- portable C */

static void fr_sgemv_c(const float *W, fr_idx ldw, fr_idx R, fr_idx K, const float *x, float *y)
{
    fr_idx r, k, i;
    for (r = 0; r < R; r++) {
        const float *w = W + r * ldw;
        float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (k = 0; k + 8 <= K; k += 8)
            for (i = 0; i < 8; i++)
                s[i] += w[k + i] * x[k + i];
        for (; k < K; k++)
            s[0] += w[k] * x[k];
        y[r] = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    }
}

/* The integer products of packed int8 weights P (see the top of this file) with the int8 vector
 * q (Kp entries, padded with zeros): acc[r] for r < Rp. */
static void fr_qdot_c(const int8_t *P, fr_idx Rp, fr_idx Kp, const int8_t *q, int32_t *acc)
{
    fr_idx rb, kg, r, j;
    for (rb = 0; rb < Rp / 16; rb++) {
        int32_t s[16];
        for (r = 0; r < 16; r++)
            s[r] = 0;
        for (kg = 0; kg < Kp / 4; kg++) {
            const int8_t *blk = P + (rb * (Kp / 4) + kg) * 64;
            for (r = 0; r < 16; r++)
                for (j = 0; j < 4; j++)
                    s[r] += (int32_t)blk[4 * r + j] * (int32_t)q[4 * kg + j];
        }
        for (r = 0; r < 16; r++)
            acc[16 * rb + r] = s[r];
    }
}

/* bf16 (the upper 16 bits of a float32) weights packed in blocks of 16 rows by 2 columns (64
 * bytes: row r's two weights, then row r+1's, ...), times the bf16 vector b (Kp entries, padded
 * with zeros), summed in float32: y[r] for r < Rp. */
static inline float fr_bf16_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void fr_bdot_c(const uint16_t *P, fr_idx Rp, fr_idx Kp, const uint16_t *b, float *y)
{
    fr_idx rb, kp, r;
    for (rb = 0; rb < Rp / 16; rb++) {
        float s[16];
        for (r = 0; r < 16; r++)
            s[r] = 0;
        for (kp = 0; kp < Kp / 2; kp++) {
            const uint16_t *blk = P + (rb * (Kp / 2) + kp) * 32;
            float x0 = fr_bf16_float(b[2 * kp]), x1 = fr_bf16_float(b[2 * kp + 1]);
            for (r = 0; r < 16; r++)
                s[r] += fr_bf16_float(blk[2 * r]) * x0 + fr_bf16_float(blk[2 * r + 1]) * x1;
        }
        for (r = 0; r < 16; r++)
            y[16 * rb + r] = s[r];
    }
}

#ifdef FR_X86
/* --------------------------------------------------------------------------------- AVX-512 */

/* Sixteen vectors -> one vector whose lane i is the sum of the lanes of v[i]. */
FR_T512 static inline __m512 fr_sum16(__m512 *v)
{
    __m512 t[8], u[4], w0, w1;
    int i;
    for (i = 0; i < 8; i++)  /* per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3] */
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (i = 0; i < 4; i++)  /* per 128-bit lane: the partial sums of rows 4i .. 4i+3 */
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0xEE));
    /* across the four 128-bit lanes */
    w0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88),
                       _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
    w1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88),
                       _mm512_shuffle_f32x4(u[2], u[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w0, w1, 0x88), _mm512_shuffle_f32x4(w0, w1, 0xDD));
}

FR_T512 static void fr_sgemv_512(const float *W, fr_idx ldw, fr_idx R, fr_idx K, const float *x,
                                 float *y)
{
    fr_idx r = 0, k, i, K16 = K & ~(fr_idx)15;
    __mmask16 tail = (__mmask16)((1u << (K & 15)) - 1u);
    for (; r + 16 <= R; r += 16) {
        __m512 a[16], xv;
        const float *w = W + r * ldw;
        for (i = 0; i < 16; i++)
            a[i] = _mm512_setzero_ps();
        for (k = 0; k < K16; k += 16) {
            xv = _mm512_loadu_ps(x + k);
            for (i = 0; i < 16; i++)
                a[i] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i * ldw + k), xv, a[i]);
        }
        if (tail) {
            xv = _mm512_maskz_loadu_ps(tail, x + k);
            for (i = 0; i < 16; i++)
                a[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + i * ldw + k), xv, a[i]);
        }
        _mm512_storeu_ps(y + r, fr_sum16(a));
    }
    for (; r < R; r++) {
        __m512 acc = _mm512_setzero_ps();
        const float *w = W + r * ldw;
        for (k = 0; k < K16; k += 16)
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + k), _mm512_loadu_ps(x + k), acc);
        if (tail)
            acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, w + k),
                                  _mm512_maskz_loadu_ps(tail, x + k), acc);
        y[r] = _mm512_reduce_add_ps(acc);
    }
}

FR_TVNNI static void fr_qdot_vnni(const int8_t *P, fr_idx Rp, fr_idx Kp, const int8_t *q,
                                  int32_t *acc)
{
    fr_idx rb = 0, kg, KG = Kp / 4, NB = Rp / 16;
    int32_t u;
    __m512i a0, a1, a2, a3, xv;
    /* four blocks of 16 rows at once: four independent chains of vpdpbusd */
    for (; rb + 4 <= NB; rb += 4) {
        const int8_t *p = P + rb * KG * 64;
        a0 = a1 = a2 = a3 = _mm512_setzero_si512();
        for (kg = 0; kg < KG; kg++) {
            memcpy(&u, q + 4 * kg, 4);
            xv = _mm512_set1_epi32(u ^ (int32_t)0x80808080u);
            a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512((const void *)(p + kg * 64)));
            a1 = _mm512_dpbusd_epi32(a1, xv,
                                     _mm512_loadu_si512((const void *)(p + (KG + kg) * 64)));
            a2 = _mm512_dpbusd_epi32(a2, xv,
                                     _mm512_loadu_si512((const void *)(p + (2 * KG + kg) * 64)));
            a3 = _mm512_dpbusd_epi32(a3, xv,
                                     _mm512_loadu_si512((const void *)(p + (3 * KG + kg) * 64)));
        }
        _mm512_storeu_si512((void *)(acc + 16 * rb), a0);
        _mm512_storeu_si512((void *)(acc + 16 * rb + 16), a1);
        _mm512_storeu_si512((void *)(acc + 16 * rb + 32), a2);
        _mm512_storeu_si512((void *)(acc + 16 * rb + 48), a3);
    }
    for (; rb < NB; rb++) {
        const int8_t *p = P + rb * KG * 64;
        a0 = _mm512_setzero_si512();
        for (kg = 0; kg < KG; kg++) {
            memcpy(&u, q + 4 * kg, 4);
            xv = _mm512_set1_epi32(u ^ (int32_t)0x80808080u);
            a0 = _mm512_dpbusd_epi32(a0, xv, _mm512_loadu_si512((const void *)(p + kg * 64)));
        }
        _mm512_storeu_si512((void *)(acc + 16 * rb), a0);
    }
}

/* vdpbf16ps: each float lane (a row) adds the products of its two bf16 weights with the two
 * bf16 activations broadcast to every lane; four blocks of 16 rows at once. */
FR_TBF16 static void fr_bdot_512(const uint16_t *P, fr_idx Rp, fr_idx Kp, const uint16_t *b,
                                 float *y)
{
    fr_idx rb = 0, kp, KP = Kp / 2, NB = Rp / 16;
    int32_t u;
    __m512 a0, a1, a2, a3;
    __m512bh xv;
    for (; rb + 4 <= NB; rb += 4) {
        const uint16_t *p = P + rb * KP * 32;
        a0 = a1 = a2 = a3 = _mm512_setzero_ps();
        for (kp = 0; kp < KP; kp++) {
            memcpy(&u, b + 2 * kp, 4);
            xv = (__m512bh)_mm512_set1_epi32(u);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512((const void *)(p + kp * 32)),
                                  xv);
            a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(
                (const void *)(p + (KP + kp) * 32)), xv);
            a2 = _mm512_dpbf16_ps(a2, (__m512bh)_mm512_loadu_si512(
                (const void *)(p + (2 * KP + kp) * 32)), xv);
            a3 = _mm512_dpbf16_ps(a3, (__m512bh)_mm512_loadu_si512(
                (const void *)(p + (3 * KP + kp) * 32)), xv);
        }
        _mm512_storeu_ps(y + 16 * rb, a0);
        _mm512_storeu_ps(y + 16 * rb + 16, a1);
        _mm512_storeu_ps(y + 16 * rb + 32, a2);
        _mm512_storeu_ps(y + 16 * rb + 48, a3);
    }
    for (; rb < NB; rb++) {
        const uint16_t *p = P + rb * KP * 32;
        a0 = _mm512_setzero_ps();
        for (kp = 0; kp < KP; kp++) {
            memcpy(&u, b + 2 * kp, 4);
            xv = (__m512bh)_mm512_set1_epi32(u);
            a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512((const void *)(p + kp * 32)),
                                  xv);
        }
        _mm512_storeu_ps(y + 16 * rb, a0);
    }
}

/* ------------------------------------------------------------------------------------ AVX2 */

/* Eight vectors -> one vector whose lane i is the sum of the lanes of v[i]. */
FR_T256 static inline __m256 fr_sum8(const __m256 *v)
{
    __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
    __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20),
                         _mm256_permute2f128_ps(s0, s1, 0x31));
}

FR_T256 static void fr_sgemv_256(const float *W, fr_idx ldw, fr_idx R, fr_idx K, const float *x,
                                 float *y)
{
    fr_idx r = 0, k, i, K8 = K & ~(fr_idx)7;
    for (; r + 8 <= R; r += 8) {
        __m256 a[8], xv, s;
        float t[8];
        const float *w = W + r * ldw;
        for (i = 0; i < 8; i++)
            a[i] = _mm256_setzero_ps();
        for (k = 0; k < K8; k += 8) {
            xv = _mm256_loadu_ps(x + k);
            for (i = 0; i < 8; i++)
                a[i] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i * ldw + k), xv, a[i]);
        }
        s = fr_sum8(a);
        if (K8 < K) {
            for (i = 0; i < 8; i++) {
                float e = 0;
                for (k = K8; k < K; k++)
                    e += w[i * ldw + k] * x[k];
                t[i] = e;
            }
            s = _mm256_add_ps(s, _mm256_loadu_ps(t));
        }
        _mm256_storeu_ps(y + r, s);
    }
    if (r < R)
        fr_sgemv_c(W + r * ldw, ldw, R - r, K, x, y + r);
}

/* One block of 16 rows: a[j] collects rows 4j .. 4j+3, two partial sums each (columns 4kg,
 * 4kg+1 and 4kg+2, 4kg+3), from the 16-byte quarter j of each 64-byte group. */
FR_T256 static inline void fr_qblock_256(const int8_t *p, fr_idx KG, const int16_t *q16,
                                         int32_t *out)
{
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, xv;
    fr_idx kg;
    int64_t u;
    for (kg = 0; kg < KG; kg++) {
        const int8_t *g = p + kg * 64;
        memcpy(&u, q16 + 4 * kg, 8);
        xv = _mm256_set1_epi64x(u);  /* the group's 4 activations, in every 64-bit lane */
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)g)), xv));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g + 16))), xv));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g + 32))), xv));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(g + 48))), xv));
    }
    /* hadd of (rows 4j, 4j+1 | 4j+2, 4j+3) pairs -> [r0 r1 r4 r5 | r2 r3 r6 r7], reordered */
    _mm256_storeu_si256((__m256i *)out,
                        _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a0, a1), order));
    _mm256_storeu_si256((__m256i *)(out + 8),
                        _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(a2, a3), order));
}

FR_T256 static void fr_qdot_256(const int8_t *P, fr_idx Rp, fr_idx Kp, const int8_t *q,
                                int32_t *acc)
{
    enum { CHUNK = 1024 };  /* columns widened to int16 at a time */
    int16_t q16[CHUNK];
    int32_t part[16];
    fr_idx rb, k0, k, r, KG = Kp / 4, NB = Rp / 16;
    for (rb = 0; rb < Rp; rb++)
        acc[rb] = 0;
    for (k0 = 0; k0 < Kp; k0 += CHUNK) {
        fr_idx n = Kp - k0 < CHUNK ? Kp - k0 : CHUNK;
        for (k = 0; k < n; k++)
            q16[k] = q[k0 + k];
        for (rb = 0; rb < NB; rb++) {
            fr_qblock_256(P + (rb * KG + k0 / 4) * 64, n / 4, q16, part);
            for (r = 0; r < 16; r++)
                acc[16 * rb + r] += part[r];
        }
    }
}
#endif /* FR_X86 */

#endif /* FASTRNN_GEMV_H */
