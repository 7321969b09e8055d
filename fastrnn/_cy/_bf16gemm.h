/* Mixed-precision matrix product of training (fastrnn/_cy/_bf16.pyx):
 *
 *     C[i, j] (+)= sum_k bf16(A[i, k]) * bf16(B[k, j])
 *
 * with both operands rounded from float32 to bfloat16 (to nearest, ties to even) and the sums kept
 * in float32. The structure is the usual one of a packed matrix product (Goto & van de Geijn,
 * ACM TOMS 34(3), 2008): B is packed once per call into panels of NR = 32 columns, A is packed per
 * block of MC rows and KC steps of the inner dimension, and a register-blocked micro-kernel
 * computes an MR x NR = 8 x 32 tile of C from one panel of each.
 *
 * The layouts follow AVX-512 BF16's vdpbf16ps, which multiplies pairs of bf16 values along k and
 * adds both products to a float32 lane:
 *
 *   packed B (fr_bpack): panel jb (columns 32 jb .. 32 jb + 31) starts at jb * Kp * NR, Kp = K
 *     rounded up to even; in it the pair kp (rows 2 kp and 2 kp + 1) is 64 values, column j's
 *     two values side by side: element (k, j) at 2 NR (k / 2) + 2 j + (k % 2). Missing rows (odd K)
 *     and columns (N not a multiple of 32) are zeros.
 *   packed A (frb_apack): one micro-panel of MR rows and kc steps, the pair kp of row r (two bf16
 *     values, 32 bits) at pair index r a_rs + kp a_ps: "pairs first" (a_rs = 1, a_ps = MR) or
 *     "rows first" (a_rs = kc / 2 rounded up, a_ps = 1), whichever the operand's storage reads
 *     best; again zeros past the valid rows and steps.
 *
 * Row tables: a row of A, B or C is given by the offset of its first element (int64), so a
 * transposed matrix, a block of rows or rows gathered from a padded batch are all the same case;
 * columns are a_cs (A), b_cs (B) apart, or adjacent (C). A negative offset is a row of zeros (A,
 * B) or a row not written (C).
 *
 * Two levels, chosen at run time (frb_set): AVX-512 BF16 (vdpbf16ps, and packing with AVX-512
 * vectors) where the CPU has it, else portable C that adds the two exact float32 products of a
 * pair one after the other. Both round with the same integer arithmetic, the products of two bf16
 * values are exact in float32 (8-bit significands), and both kernels walk k in the same order, so
 * they agree up to the order of the float32 additions inside a pair (and vdpbf16ps flushes
 * denormals to zero).
 */
#ifndef FASTRNN_BF16GEMM_H
#define FASTRNN_BF16GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FRB_X86 1
#include <immintrin.h>
#define FRB_TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

typedef ptrdiff_t frb_idx;

#define FRB_MR 8
#define FRB_NR 32
/* The inner dimension is cut into blocks of at most FRB_KC steps, of equal length (rounded up to
 * even: a block never splits a pair). Long blocks matter: C is loaded and stored again for every
 * block, and on the whole-sequence products (K = T * B or 4H in the thousands) blocks of 256
 * steps ran at 145-165 GFLOP/s on one Zen 4 core against 185-200 with blocks of up to 2048 (a
 * packed panel of B, 2048 x 32 bf16, then lives in L2). The step products of the sweeps keep
 * their packed block of A on the stack: blocks of at most FRB_KC_STEP there. */
#define FRB_KC 2048
#define FRB_KC_STEP 512
#define FRB_MC 64

/* float32 -> bf16, to nearest, ties to even; a NaN stays a (quiet) NaN. */
static inline uint16_t frb_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float frb_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* uint16 values of a packed K x N matrix B. */
static frb_idx frb_bpack_size(frb_idx K, frb_idx N)
{
    return ((K + 1) / 2) * 2 * ((N + FRB_NR - 1) / FRB_NR) * FRB_NR;
}

/* uint16 values of the work space of frb_gemm (one packed block of A) for blocks of FRB_KC. */
static frb_idx frb_work_size(void)
{
    return (frb_idx)FRB_MC * FRB_KC;
}

/* Pack B[k, j] = B[b_rows[k] + j * b_cs] (K x N) into out (frb_bpack_size(K, N) values). */
static void frb_bpack_c(frb_idx K, frb_idx N, const float *B, const int64_t *b_rows, frb_idx b_cs,
                      uint16_t *out)
{
    frb_idx Kp = (K + 1) / 2, nb = (N + FRB_NR - 1) / FRB_NR, jb, kp, j, h;
    for (jb = 0; jb < nb; jb++) {
        uint16_t *panel = out + jb * Kp * 2 * FRB_NR;
        frb_idx j0 = jb * FRB_NR, jn = N - j0 < FRB_NR ? N - j0 : FRB_NR;
        for (kp = 0; kp < Kp; kp++) {
            uint16_t *dst = panel + kp * 2 * FRB_NR;
            for (h = 0; h < 2; h++) {
                frb_idx k = 2 * kp + h;
                int64_t r = k < K ? b_rows[k] : -1;
                for (j = 0; j < FRB_NR; j++)
                    dst[2 * j + h] = (r >= 0 && j < jn) ? frb_round(B[r + (j0 + j) * b_cs]) : 0;
            }
        }
    }
}

/* Pack the micro-panel of rows a_rows[0 .. mr-1] (mr <= MR) and steps k0 .. k0 + kc - 1 of A,
 * pairs first. */
static void frb_apack_c(frb_idx mr, frb_idx kc, const float *A, const int64_t *a_rows, frb_idx a_cs,
                      frb_idx k0, uint16_t *out)
{
    frb_idx kcp = (kc + 1) / 2, kp, r, h;
    for (kp = 0; kp < kcp; kp++)
        for (r = 0; r < FRB_MR; r++) {
            int64_t row = r < mr ? a_rows[r] : -1;
            for (h = 0; h < 2; h++) {
                frb_idx k = 2 * kp + h;
                out[2 * (FRB_MR * kp + r) + h] =
                    (row >= 0 && k < kc) ? frb_round(A[row + (k0 + k) * a_cs]) : 0;
            }
        }
}

/* One tile: C[r, 0:nr] (+)= sum over the kcp pairs of the packed A (Ap, pair strides a_rs, a_ps)
 * and B (Bp) panels, for the rows r < mr with c_rows[r] >= 0; ``load``: start from the values in
 * C, else from zero. */
typedef void (*frb_kernel)(frb_idx kcp, const uint16_t *Ap, frb_idx a_rs, frb_idx a_ps,
                           const uint16_t *Bp, float *C, const int64_t *c_rows, int mr, int nr,
                           int load);

static void frb_kernel_c(frb_idx kcp, const uint16_t *Ap, frb_idx a_rs, frb_idx a_ps,
                         const uint16_t *Bp, float *C, const int64_t *c_rows, int mr, int nr,
                         int load)
{
    float acc[FRB_MR][FRB_NR];
    frb_idx kp;
    int r, j;
    for (r = 0; r < FRB_MR; r++)
        for (j = 0; j < FRB_NR; j++)
            acc[r][j] = (load && r < mr && j < nr && c_rows[r] >= 0) ? C[c_rows[r] + j] : 0.0f;
    for (kp = 0; kp < kcp; kp++) {
        const uint16_t *b = Bp + 2 * FRB_NR * kp;
        for (r = 0; r < FRB_MR; r++) {
            const uint16_t *a = Ap + 2 * (r * a_rs + kp * a_ps);
            float a0 = frb_float(a[0]), a1 = frb_float(a[1]);
            for (j = 0; j < FRB_NR; j++) {
                /* each product is exact in float32: one rounding per addition */
                acc[r][j] += a1 * frb_float(b[2 * j + 1]);
                acc[r][j] += a0 * frb_float(b[2 * j]);
            }
        }
    }
    for (r = 0; r < mr; r++)
        if (c_rows[r] >= 0)
            for (j = 0; j < nr; j++)
                C[c_rows[r] + j] = acc[r][j];
}

#ifdef FRB_X86
FRB_TBF16 static void frb_kernel_512(frb_idx kcp, const uint16_t *Ap, frb_idx a_rs, frb_idx a_ps,
                                     const uint16_t *Bp, float *C, const int64_t *c_rows, int mr,
                                     int nr, int load)
{
    __m512 c0[FRB_MR], c1[FRB_MR];
    const uint16_t *ar[FRB_MR];
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff
                   : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u) : (__mmask16)0;
    frb_idx kp;
    int r;
#pragma GCC unroll 8
    for (r = 0; r < FRB_MR; r++) {
        ar[r] = Ap + 2 * r * a_rs;
        if (load && r < mr && c_rows[r] >= 0) {
            c0[r] = _mm512_maskz_loadu_ps(m0, C + c_rows[r]);
            c1[r] = _mm512_maskz_loadu_ps(m1, C + c_rows[r] + 16);
        } else {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
    }
    for (kp = 0; kp < kcp; kp++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)(Bp + 2 * FRB_NR * kp));
        __m512bh b1 = (__m512bh)_mm512_loadu_si512((const void *)(Bp + 2 * FRB_NR * kp + 32));
        frb_idx off = 2 * kp * a_ps;
#pragma GCC unroll 8
        for (r = 0; r < FRB_MR; r++) {
            uint32_t pair;
            memcpy(&pair, ar[r] + off, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair);
            c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
        }
    }
    for (r = 0; r < mr; r++)
        if (c_rows[r] >= 0) {
            _mm512_mask_storeu_ps(C + c_rows[r], m0, c0[r]);
            _mm512_mask_storeu_ps(C + c_rows[r] + 16, m1, c1[r]);
        }
}
#endif

#ifdef FRB_X86
/* frb_round of 16 floats: the bf16 bits in the low half of each 32-bit lane. */
FRB_TBF16 static inline __m512i frb_round_512(__m512 x)
{
    __m512i u = _mm512_castps_si512(x);
    __m512i hi = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)),
                                                   _mm512_and_si512(hi, _mm512_set1_epi32(1))),
                                  16);
    __m512i q = _mm512_or_si512(hi, _mm512_set1_epi32(0x40));
    return _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), q);
}

static inline __mmask16 frb_mask(frb_idx n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* The pairs (rows 2 kp, 2 kp + 1) of 16 columns of B from row offsets r0, r1 (negative: zeros). */
FRB_TBF16 static inline __m512i frb_pairs_512(const float *B, int64_t r0, int64_t r1, frb_idx col,
                                              __mmask16 m)
{
    __m512 x0 = r0 >= 0 ? _mm512_maskz_loadu_ps(m, B + r0 + col) : _mm512_setzero_ps();
    __m512 x1 = r1 >= 0 ? _mm512_maskz_loadu_ps(m, B + r1 + col) : _mm512_setzero_ps();
    return _mm512_or_si512(frb_round_512(x0), _mm512_slli_epi32(frb_round_512(x1), 16));
}

/* frb_bpack for b_cs == 1 (rows of B contiguous), with vectors. */
FRB_TBF16 static void frb_bpack_512(frb_idx K, frb_idx N, const float *B, const int64_t *b_rows,
                                    uint16_t *out)
{
    frb_idx Kp = (K + 1) / 2, nb = (N + FRB_NR - 1) / FRB_NR, jb, kp;
    for (jb = 0; jb < nb; jb++) {
        uint16_t *panel = out + jb * Kp * 2 * FRB_NR;
        frb_idx j0 = jb * FRB_NR;
        __mmask16 m0 = frb_mask(N - j0), m1 = frb_mask(N - j0 - 16);
        for (kp = 0; kp < Kp; kp++) {
            int64_t r0 = b_rows[2 * kp], r1 = 2 * kp + 1 < K ? b_rows[2 * kp + 1] : -1;
            uint16_t *dst = panel + kp * 2 * FRB_NR;
            _mm512_storeu_si512((void *)dst, frb_pairs_512(B, r0, r1, j0, m0));
            _mm512_storeu_si512((void *)(dst + 32), frb_pairs_512(B, r0, r1, j0 + 16, m1));
        }
    }
}

/* Pack a micro-panel of A with vectors where its storage allows; returns 0 where it does not (the
 * caller then packs it with frb_apack_c), else 1 with the layout in *a_rs, *a_ps. Rows
 * contiguous (a_cs == 1): rows first. Columns contiguous over the mr consecutive rows (a
 * transposed matrix): pairs first. */
FRB_TBF16 static int frb_apack_512(frb_idx mr, frb_idx kc, const float *A, const int64_t *a_rows,
                                   frb_idx a_cs, frb_idx k0, uint16_t *out, frb_idx *a_rs,
                                   frb_idx *a_ps)
{
    frb_idx kcp = (kc + 1) / 2, r, k, kp;
    if (a_cs == 1) {
        for (r = 0; r < FRB_MR; r++) {
            int64_t row = r < mr ? a_rows[r] : -1;
            uint16_t *dst = out + 2 * kcp * r;
            for (k = 0; k < 2 * kcp; k += 16) {
                __m512 x = row >= 0 ? _mm512_maskz_loadu_ps(frb_mask(kc - k), A + row + k0 + k)
                                    : _mm512_setzero_ps();
                _mm512_mask_cvtepi32_storeu_epi16((void *)(dst + k), frb_mask(2 * kcp - k),
                                                  frb_round_512(x));
            }
        }
        *a_rs = kcp;
        *a_ps = 1;
        return 1;
    }
    for (r = 0; r < mr; r++)
        if (a_rows[r] != a_rows[0] + r || a_rows[0] < 0)
            return 0;
    {
        __mmask16 m = frb_mask(mr);
        const float *a = A + a_rows[0] + k0 * a_cs;
        for (kp = 0; kp < kcp; kp++) {
            int64_t r0 = 2 * kp * a_cs, r1 = 2 * kp + 1 < kc ? r0 + a_cs : -1;
            _mm512_mask_storeu_epi32((void *)(out + 2 * FRB_MR * kp), (__mmask16)0xff,
                                     frb_pairs_512(a, r0, r1, 0, m));
        }
    }
    *a_rs = 1;
    *a_ps = FRB_MR;
    return 1;
}

/* Pack a block of mb consecutive rows (mb a multiple of MR) of a transposed A, row i at
 * A + i, steps a_cs apart, into its mb / MR micro-panels (pairs first), reading along the
 * contiguous rows of the storage: for each pair of steps, 16 rows (two micro-panels) per vector.
 * The same layout as frb_apack_512 per micro-panel, with long reads instead of 32-byte ones. */
FRB_TBF16 static void frb_apack_block_t_512(frb_idx mb, frb_idx kc, const float *A, frb_idx a_cs,
                                            uint16_t *out)
{
    frb_idx kcp = (kc + 1) / 2, panel = 2 * FRB_MR * kcp, kp, i;
    for (kp = 0; kp < kcp; kp++) {
        int64_t r0 = 2 * kp * a_cs, r1 = 2 * kp + 1 < kc ? r0 + a_cs : -1;
        uint16_t *dst = out + 2 * FRB_MR * kp;
        for (i = 0; i < mb; i += 16) {
            __m512i p = frb_pairs_512(A, r0, r1, i, frb_mask(mb - i));
            _mm256_storeu_si256((__m256i *)(dst + (i / FRB_MR) * panel),
                                _mm512_castsi512_si256(p));
            if (mb - i > FRB_MR)
                _mm256_storeu_si256((__m256i *)(dst + (i / FRB_MR + 1) * panel),
                                    _mm512_extracti64x4_epi64(p, 1));
        }
    }
}
#endif

static frb_kernel frb_micro = frb_kernel_c;
static int frb_level = 0;

/* Whether the CPU runs the AVX-512 BF16 kernel. */
static int frb_supported(void)
{
#ifdef FRB_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* Use the AVX-512 BF16 kernel (level 2) when asked for and supported, else portable C (0);
 * returns the level set. */
static int frb_set(int level)
{
    frb_micro = frb_kernel_c;
    frb_level = 0;
#ifdef FRB_X86
    if (level >= 2 && frb_supported()) {
        frb_micro = frb_kernel_512;
        frb_level = 2;
    }
#endif
    return frb_level;
}

/* Pack B (see frb_bpack_c), with vectors at level 2 when its rows are contiguous. */
static void frb_bpack(frb_idx K, frb_idx N, const float *B, const int64_t *b_rows, frb_idx b_cs,
                      uint16_t *out)
{
#ifdef FRB_X86
    if (frb_level == 2 && b_cs == 1) {
        frb_bpack_512(K, N, B, b_rows, out);
        return;
    }
#endif
    frb_bpack_c(K, N, B, b_rows, b_cs, out);
}

/* Pack a micro-panel of A (see frb_apack_c); its layout goes to *a_rs, *a_ps. */
static void frb_apack(frb_idx mr, frb_idx kc, const float *A, const int64_t *a_rows, frb_idx a_cs,
                      frb_idx k0, uint16_t *out, frb_idx *a_rs, frb_idx *a_ps)
{
#ifdef FRB_X86
    if (frb_level == 2 && frb_apack_512(mr, kc, A, a_rows, a_cs, k0, out, a_rs, a_ps))
        return;
#endif
    frb_apack_c(mr, kc, A, a_rows, a_cs, k0, out);
    *a_rs = 1;
    *a_ps = FRB_MR;
}

/* Whether the n row offsets are first, first + 1, ... (first >= 0): consecutive rows of a
 * transposed matrix. */
static int frb_consecutive(const int64_t *rows, frb_idx n)
{
    frb_idx i;
    for (i = 0; i < n; i++)
        if (rows[i] != rows[0] + i)
            return 0;
    return rows[0] >= 0;
}

/* C (+)= A B: A (M x K) by its row table and column stride, B packed by frb_bpack (K x N), C
 * (M x N) by its row table; work holds FRB_MC * kc_max values (kc_max even), the longest block of
 * the inner dimension. Without ``accumulate`` the rows of C are overwritten. The sums of each
 * element run over k in order whatever the blocks. */
static void frb_gemm_kc(frb_idx M, frb_idx N, frb_idx K, const float *A, const int64_t *a_rows,
                        frb_idx a_cs, const uint16_t *Bp, float *C, const int64_t *c_rows,
                        int accumulate, uint16_t *work, frb_idx kc_max)
{
    frb_idx Kp = (K + 1) / 2, nb = (N + FRB_NR - 1) / FRB_NR, k0, i0, i, jb, j, nkb, kstep;
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        if (!accumulate)
            for (i = 0; i < M; i++)
                if (c_rows[i] >= 0)
                    for (j = 0; j < N; j++)
                        C[c_rows[i] + j] = 0.0f;
        return;
    }
    nkb = (K + kc_max - 1) / kc_max;          /* blocks of equal length, even */
    kstep = ((K + nkb - 1) / nkb + 1) / 2 * 2;
    for (k0 = 0; k0 < K; k0 += kstep) {
        frb_idx kc = K - k0 < kstep ? K - k0 : kstep, kcp = (kc + 1) / 2;
        int load = accumulate || k0 > 0;
        for (i0 = 0; i0 < M; i0 += FRB_MC) {
            frb_idx i1 = M - i0 < FRB_MC ? M : i0 + FRB_MC;
            frb_idx rs[FRB_MC / FRB_MR], ps[FRB_MC / FRB_MR]; /* layout of each micro-panel */
#ifdef FRB_X86
            if (frb_level == 2 && a_cs != 1 && (i1 - i0) % FRB_MR == 0
                && frb_consecutive(a_rows + i0, i1 - i0)) {
                frb_apack_block_t_512(i1 - i0, kc, A + a_rows[i0] + k0 * a_cs, a_cs, work);
                for (i = 0; i < (i1 - i0) / FRB_MR; i++) {
                    rs[i] = 1;
                    ps[i] = FRB_MR;
                }
            } else
#endif
            for (i = i0; i < i1; i += FRB_MR)
                frb_apack(i1 - i < FRB_MR ? i1 - i : FRB_MR, kc, A, a_rows + i, a_cs, k0,
                          work + (i - i0) * 2 * kcp, &rs[(i - i0) / FRB_MR],
                          &ps[(i - i0) / FRB_MR]);
            for (jb = 0; jb < nb; jb++) {
                const uint16_t *bp = Bp + jb * Kp * 2 * FRB_NR + k0 * FRB_NR;
                int nr = (int)(N - jb * FRB_NR < FRB_NR ? N - jb * FRB_NR : FRB_NR);
                for (i = i0; i < i1; i += FRB_MR)
                    frb_micro(kcp, work + (i - i0) * 2 * kcp, rs[(i - i0) / FRB_MR],
                              ps[(i - i0) / FRB_MR], bp, C + jb * FRB_NR, c_rows + i,
                              (int)(i1 - i < FRB_MR ? i1 - i : FRB_MR), nr, load);
            }
        }
    }
}

/* frb_gemm with the rows of A contiguous (a_cs = 1) and its work space on the stack: the product
 * of a step of the recurrent sweeps, which the compiled kernels call through its address (one
 * call per step and part of the batch; fastrnn/kernels/_bf16step.py). */
static void frb_gemm_rows(frb_idx M, frb_idx N, frb_idx K, const float *A, const int64_t *a_rows,
                          const uint16_t *Bp, float *C, const int64_t *c_rows, int accumulate)
{
    uint16_t work[FRB_MC * FRB_KC_STEP];
    frb_gemm_kc(M, N, K, A, a_rows, 1, Bp, C, c_rows, accumulate, work, FRB_KC_STEP);
}

/* frb_gemm_kc with blocks of up to FRB_KC and a work space of frb_work_size() values. */
static void frb_gemm(frb_idx M, frb_idx N, frb_idx K, const float *A, const int64_t *a_rows,
                     frb_idx a_cs, const uint16_t *Bp, float *C, const int64_t *c_rows,
                     int accumulate, uint16_t *work)
{
    frb_gemm_kc(M, N, K, A, a_rows, a_cs, Bp, C, c_rows, accumulate, work, FRB_KC);
}

#endif /* FASTRNN_BF16GEMM_H */
