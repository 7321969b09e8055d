/* One-sequence inference in C (used by fastrnn/_cy/_infer.pyx): the float32 cell rows, the
 * matrix-vector product of a step (float32 or int8, fastrnn/_cy/_gemv.h), the recurrence of one
 * layer-direction compiled for each instruction set level (fastrnn/_cy/_recur_body.h), and the
 * choice of level.
 *
 * The cell rows are the float32 mathematics of fastrnn/_cy/_cellmath.pxd, the same operations in
 * the same order, written in C so that each level's recurrence inlines and vectorises them (the
 * Cython functions are compiled once, for the baseline instruction set): the rational tanh of the
 * Numba fast path (fastrnn/kernels/_vmath.py; tests/test_infer.py checks these literals against
 * its constants), the logistic function as (1 + tanh(x/2)) / 2. No -ffast-math: NaN propagates.
 */
#ifndef FASTRNN_INFER_H
#define FASTRNN_INFER_H

#include "_gemv.h"

enum { FR_RNN = 0, FR_LSTM = 1, FR_GRU = 2, FR_GRU_V1 = 3 };

/* inlined into each level's recurrence, so that their loops are compiled for that level */
#if defined(__GNUC__) || defined(__clang__)
#define FR_INLINE static inline __attribute__((always_inline))
#else
#define FR_INLINE static inline
#endif
/* the rows a cell function reads and those it writes never overlap (without this promise the
 * compiler, unable to check so many pointers at run time, leaves some loops scalar) */
#define FR_R __restrict

/* ------------------------------------------------------------------------------- cell rows */

FR_INLINE float fr_tanh(float x)
{
    const float hi = (float)9.0, lo = (float)-9.0;
    float u, p, q, t;
    x = x > hi ? hi : x;
    x = x < lo ? lo : x;
    u = x * x;
    p = (float)1.7907569119775997e-11 * u + (float)-1.2631788156694172e-08;
    p = p * u + (float)9.214284242774527e-06;
    p = p * u + (float)0.002914718542505523;
    p = p * u + (float)0.12913561011303934;
    p = p * u + (float)0.999999950038826;
    q = (float)0.00022727670254344686 * u + (float)0.023738263470305637;
    q = q * u + (float)0.46246845127699604;
    q = q * u + 1.0f;
    t = x * p / q;
    t = t > 1.0f ? 1.0f : t;
    return t < -1.0f ? -1.0f : t;
}

FR_INLINE float fr_sigmoid(float x)
{
    return 0.5f + 0.5f * fr_tanh(0.5f * x);
}

FR_INLINE float fr_rnn_act(float a, int relu)
{
    if (relu)
        return a > 0 ? a : 0.0f * a;  /* 0 * a keeps a NaN */
    return fr_tanh(a);
}

FR_INLINE void fr_sigmoid_row(fr_idx n, float *v, int on)
{
    fr_idx j;
    if (on)
        for (j = 0; j < n; j++)
            v[j] = fr_sigmoid(v[j]);
    else
        for (j = 0; j < n; j++)
            v[j] = 1.0f;
}

FR_INLINE void fr_tanh_row(fr_idx n, const float *v, float *out)
{
    fr_idx j;
    for (j = 0; j < n; j++)
        out[j] = fr_tanh(v[j]);
}

/* One step of H LSTM units (see lstm_fwd_row of _cellmath.pxd): x + a the pre-activations (4H),
 * cp the previous cell, w* the peepholes; writes the gates i, f, g, o to act, the cell to c and
 * the state to h. */
FR_INLINE void fr_lstm_row(fr_idx H, const float *FR_R x, const float *FR_R a,
                          const float *FR_R cp, const float *FR_R wci, const float *FR_R wcf,
                          const float *FR_R wco, int on_i, int on_f, int on_o, float *FR_R act,
                          float *FR_R c, float *FR_R h)
{
    fr_idx j;
    for (j = 0; j < H; j++) {
        act[j] = x[j] + a[j] + wci[j] * cp[j];
        act[H + j] = x[H + j] + a[H + j] + wcf[j] * cp[j];
    }
    fr_sigmoid_row(H, act, on_i);
    fr_sigmoid_row(H, act + H, on_f);
    for (j = 0; j < H; j++)
        act[2 * H + j] = x[2 * H + j] + a[2 * H + j];
    fr_tanh_row(H, act + 2 * H, act + 2 * H);
    for (j = 0; j < H; j++) {
        c[j] = act[H + j] * cp[j] + act[j] * act[2 * H + j];
        act[3 * H + j] = x[3 * H + j] + a[3 * H + j] + wco[j] * c[j];
    }
    fr_sigmoid_row(H, act + 3 * H, on_o);
    fr_tanh_row(H, c, h);
    for (j = 0; j < H; j++)
        h[j] = act[3 * H + j] * h[j];
}

/* One step of H GRU units, reset gate after the product (gru_fwd_row of _cellmath.pxd). */
FR_INLINE void fr_gru_row(fr_idx H, const float *FR_R x, const float *FR_R a,
                         const float *FR_R bhh, const float *FR_R hp, float *FR_R act,
                         float *FR_R h)
{
    fr_idx j;
    for (j = 0; j < 2 * H; j++)
        act[j] = x[j] + a[j] + bhh[j];
    fr_sigmoid_row(2 * H, act, 1);
    for (j = 0; j < H; j++) {
        act[3 * H + j] = a[2 * H + j] + bhh[2 * H + j];
        act[2 * H + j] = x[2 * H + j] + act[j] * act[3 * H + j];
    }
    fr_tanh_row(H, act + 2 * H, act + 2 * H);
    for (j = 0; j < H; j++)
        h[j] = (1.0f - act[H + j]) * act[2 * H + j] + act[H + j] * hp[j];
}

/* The original GRU (reset gate before the product): the gates r, z and r * h (gru_v1_gates_row),
 * then the candidate and the state (gru_v1_out_row). */
FR_INLINE void fr_gru_v1_gates_row(fr_idx H, const float *FR_R x, const float *FR_R a,
                                  const float *FR_R hp, float *FR_R act, float *FR_R rh)
{
    fr_idx j;
    for (j = 0; j < 2 * H; j++)
        act[j] = x[j] + a[j];
    fr_sigmoid_row(2 * H, act, 1);
    for (j = 0; j < H; j++)
        rh[j] = act[j] * hp[j];
}

FR_INLINE void fr_gru_v1_out_row(fr_idx H, const float *FR_R x, const float *FR_R an,
                                const float *FR_R hp, float *FR_R act, float *FR_R h)
{
    fr_idx j;
    for (j = 0; j < H; j++)
        act[2 * H + j] = x[2 * H + j] + an[j];
    fr_tanh_row(H, act + 2 * H, act + 2 * H);
    for (j = 0; j < H; j++)
        h[j] = (1.0f - act[H + j]) * act[2 * H + j] + act[H + j] * hp[j];
}

/* ------------------------------------------------------------------------ one step's product */

/* float32 weights (R, K) row-major with leading dimension ldw, or (w NULL) packed int8 weights
 * (see _gemv.h) with their row scales and VNNI offsets. */
typedef struct {
    const float *w;
    fr_idx ldw;
    const uint16_t *bf;  /* packed bf16 weights (see fr_bdot_c), or NULL */
    const int8_t *p;
    const int32_t *corr;
    const float *scale;
    fr_idx R, K, Rp, Kp;
} fr_mat;

typedef struct {
    int kind, relu, on_i, on_f, on_o;
    fr_idx L, H, G;
} fr_spec;

typedef void (*fr_sgemv_fn)(const float *, fr_idx, fr_idx, fr_idx, const float *, float *);
typedef void (*fr_qdot_fn)(const int8_t *, fr_idx, fr_idx, const int8_t *, int32_t *);

static fr_sgemv_fn fr_sgemv = fr_sgemv_c;
static fr_qdot_fn fr_qdot = fr_qdot_c;
typedef void (*fr_bdot_fn)(const uint16_t *, fr_idx, fr_idx, const uint16_t *, float *);
static fr_bdot_fn fr_bdot = fr_bdot_c;
static int fr_level_f32 = 0, fr_level_i8 = 0, fr_level_bf16 = 0;

/* x[:K] rounded to bf16 (to nearest, ties to even) into b[:Kp], zeros past K. */
FR_INLINE void fr_to_bf16(const float *x, fr_idx K, fr_idx Kp, uint16_t *b)
{
    fr_idx k;
    uint32_t u;
    for (k = 0; k < K; k++) {
        memcpy(&u, x + k, 4);
        b[k] = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }
    for (; k < Kp; k++)
        b[k] = 0;
}

/* Quantise x[:K] symmetrically to q[:Kp] (zeros past K): scale = max|x| / 127, q = rint(x /
 * scale) computed as rint(x * (127 / max|x|)). Returns the scale (0 for an all-zero x, whose q
 * is all zero). */
FR_INLINE float fr_quantize(const float *x, fr_idx K, fr_idx Kp, int8_t *q)
{
    fr_idx k;
    float amax = 0, inv, v;
    for (k = 0; k < K; k++) {
        v = fabsf(x[k]);
        amax = v > amax ? v : amax;
    }
    if (!(amax > 0)) {
        memset(q, 0, (size_t)Kp);
        return 0;
    }
    inv = 127.0f / amax;
    for (k = 0; k < K; k++) {
        v = rintf(x[k] * inv);
        v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
        q[k] = (int8_t)v;
    }
    for (; k < Kp; k++)
        q[k] = 0;
    return amax / 127.0f;
}

/* y[:R] = m @ x[:K]: float32, or x quantised into qbuf (Kp bytes), the integer products into acc
 * (Rp entries) and y = (float)(acc - corr) * sx * scale (corr for the VNNI kernel only). */
FR_INLINE void fr_matvec(const fr_mat *m, const float *x, float *y, int8_t *qbuf,
                             int32_t *acc)
{
    fr_idx r;
    float sx;
    if (m->w != NULL) {
        fr_sgemv(m->w, m->ldw, m->R, m->K, x, y);
        return;
    }
    if (m->bf != NULL) {  /* bf16: the activations rounded to bf16, float32 sums */
        fr_to_bf16(x, m->K, m->Kp, (uint16_t *)qbuf);
        fr_bdot(m->bf, m->Rp, m->Kp, (const uint16_t *)qbuf, (float *)acc);
        for (r = 0; r < m->R; r++)
            y[r] = ((const float *)acc)[r];
        return;
    }
    sx = fr_quantize(x, m->K, m->Kp, qbuf);
    fr_qdot(m->p, m->Rp, m->Kp, qbuf, acc);
    if (fr_level_i8 == 2)
        for (r = 0; r < m->R; r++)
            acc[r] -= m->corr[r];
    for (r = 0; r < m->R; r++)
        y[r] = (float)acc[r] * sx * m->scale[r];
}

/* ------------------------------------------------------------- the recurrence, per level */

#define FR_TARGET
#define FR_NAME(f) f##_c
#include "_recur_body.h"
#undef FR_TARGET
#undef FR_NAME

#ifdef FR_X86
#define FR_TARGET FR_T256
#define FR_NAME(f) f##_256
#include "_recur_body.h"
#undef FR_TARGET
#undef FR_NAME

#define FR_TARGET FR_T512
#define FR_NAME(f) f##_512
#include "_recur_body.h"
#undef FR_TARGET
#undef FR_NAME
#endif

/* ------------------------------------------------------- the input projection, AVX-512 */

#ifdef FR_X86
/* Rows 0..15 of v (16 floats each) transposed in place (three rounds of shuffles). */
FR_T512 static inline void fr_transpose16(__m512 *v)
{
    __m512 t[16], u[16], a, b, c, d;
    int i, q, m;
    for (i = 0; i < 8; i++) {  /* per 128-bit lane: [a0 b0 a1 b1], [a2 b2 a3 b3] */
        t[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (q = 0; q < 4; q++) {  /* u[4q+m], lane L: column 4L+m of rows 4q .. 4q+3 */
        u[4 * q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
    for (m = 0; m < 4; m++) {  /* the 4 x 4 transpose of the 128-bit lanes */
        a = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x44);
        b = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xEE);
        c = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x44);
        d = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xEE);
        v[m] = _mm512_shuffle_f32x4(a, c, 0x88);
        v[4 + m] = _mm512_shuffle_f32x4(a, c, 0xDD);
        v[8 + m] = _mm512_shuffle_f32x4(b, d, 0x88);
        v[12 + m] = _mm512_shuffle_f32x4(b, d, 0xDD);
    }
}

/* out[t, :G] = b1 + b2 + W @ X[t] for t < L (W (G, K) row-major, X rows of leading dimension
 * ldx, b2 may be NULL): 64 outputs at a time, their weights transposed into ``panel`` (64 K
 * floats, in L1 for the small K of a recurrent layer), four steps per pass over it. */
FR_T512 static void fr_project_512(const float *W, fr_idx G, fr_idx K, const float *X, fr_idx ldx,
                                   fr_idx L, const float *b1, const float *b2, float *out,
                                   float *panel)
{
    fr_idx g0, k, k0, i, i0, t, c, nb;
    __m512 v[16], bias[4];
    float bb[64];
    for (g0 = 0; g0 < G; g0 += 64) {
        nb = G - g0 < 64 ? G - g0 : 64;
        for (i0 = 0; i0 < 64; i0 += 16) {  /* rows g0+i0 .. +15 into the panel's columns */
            if (i0 + 16 <= nb) {
                for (k0 = 0; k0 + 16 <= K; k0 += 16) {
                    for (i = 0; i < 16; i++)
                        v[i] = _mm512_loadu_ps(W + (g0 + i0 + i) * K + k0);
                    fr_transpose16(v);
                    for (i = 0; i < 16; i++)
                        _mm512_storeu_ps(panel + (k0 + i) * 64 + i0, v[i]);
                }
                for (k = k0; k < K; k++)
                    for (i = 0; i < 16; i++)
                        panel[k * 64 + i0 + i] = W[(g0 + i0 + i) * K + k];
            } else {
                for (k = 0; k < K; k++)
                    for (i = 0; i < 16; i++)
                        panel[k * 64 + i0 + i] = i0 + i < nb ? W[(g0 + i0 + i) * K + k] : 0.0f;
            }
        }
        for (i = 0; i < 64; i++)
            bb[i] = i < nb ? b1[g0 + i] + (b2 ? b2[g0 + i] : 0.0f) : 0.0f;
        for (c = 0; c < 4; c++)
            bias[c] = _mm512_loadu_ps(bb + 16 * c);
        for (t = 0; t < L; t += 4) {
            /* steps t .. t+3; past L the last step is computed again and not stored */
            const float *x0 = X + t * ldx, *x1 = X + (t + 1 < L ? t + 1 : t) * ldx;
            const float *x2 = X + (t + 2 < L ? t + 2 : t) * ldx;
            const float *x3 = X + (t + 3 < L ? t + 3 : t) * ldx;
            __m512 a[4][4], w[4], xv;
            int r;
            for (r = 0; r < 4; r++)
                for (c = 0; c < 4; c++)
                    a[r][c] = bias[c];
            for (k = 0; k < K; k++) {
                for (c = 0; c < 4; c++)
                    w[c] = _mm512_loadu_ps(panel + k * 64 + 16 * c);
                xv = _mm512_set1_ps(x0[k]);
                for (c = 0; c < 4; c++)
                    a[0][c] = _mm512_fmadd_ps(w[c], xv, a[0][c]);
                xv = _mm512_set1_ps(x1[k]);
                for (c = 0; c < 4; c++)
                    a[1][c] = _mm512_fmadd_ps(w[c], xv, a[1][c]);
                xv = _mm512_set1_ps(x2[k]);
                for (c = 0; c < 4; c++)
                    a[2][c] = _mm512_fmadd_ps(w[c], xv, a[2][c]);
                xv = _mm512_set1_ps(x3[k]);
                for (c = 0; c < 4; c++)
                    a[3][c] = _mm512_fmadd_ps(w[c], xv, a[3][c]);
            }
            for (r = 0; r < 4 && t + r < L; r++) {
                float *o = out + (t + r) * G + g0;
                for (c = 0; c < 4; c++) {
                    fr_idx left = nb - 16 * c;
                    if (left >= 16)
                        _mm512_storeu_ps(o + 16 * c, a[r][c]);
                    else if (left > 0)
                        _mm512_mask_storeu_ps(o + 16 * c, (__mmask16)((1u << left) - 1u),
                                              a[r][c]);
                }
            }
        }
    }
}
#endif

/* ``out = b1 (+ b2) + X W^T`` by the kernel of the level in use; returns 0 where this level has
 * none (the caller then uses BLAS). ``panel``: 64 K floats of scratch. */
static int fr_project(const float *W, fr_idx G, fr_idx K, const float *X, fr_idx ldx, fr_idx L,
                      const float *b1, const float *b2, float *out, float *panel)
{
#ifdef FR_X86
    if (fr_level_f32 == 2) {
        fr_project_512(W, G, K, X, ldx, L, b1, b2, out, panel);
        return 1;
    }
#endif
    return 0;
}

typedef void (*fr_recur_fn)(const fr_spec *, int, const float *, const fr_mat *, const fr_mat *,
                            const float *, const float *, float *, fr_idx, const float *,
                            const float *, float *, float *, float *, int8_t *, int32_t *);
typedef void (*fr_qmatvec_fn)(const fr_mat *, const float *, float *, int8_t *, int32_t *);

static fr_recur_fn fr_recur = fr_recur_c;
static fr_qmatvec_fn fr_qmatvec = fr_qmatvec_c;

/* ---------------------------------------------------------------------------------- dispatch */

/* The highest level this CPU (and its operating system) supports: 2, 1 or 0 for the float32
 * kernels; *i8 receives that of the int8 kernels (level 2 needs VNNI), *bf that of the bf16
 * product (2 with AVX-512 BF16, else 0: portable C). */
static int fr_isa_supported(int *i8, int *bf)
{
    int f = 0, q = 0, b = 0;
#ifdef FR_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        f = q = 1;
    if (f && __builtin_cpu_supports("avx512f")) {
        f = 2;
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
            q = 2;
        if (__builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16"))
            b = 2;
    }
#endif
    if (i8)
        *i8 = q;
    if (bf)
        *bf = b;
    return f;
}

/* Use the kernels of level min(level, supported); returns the float32 level set. */
static int fr_isa_set(int level)
{
    int q, b, f = fr_isa_supported(&q, &b);
    f = level < f ? level : f;
    q = level < q ? level : q;
    b = level < b ? 0 : b;
    fr_sgemv = fr_sgemv_c;
    fr_qdot = fr_qdot_c;
    fr_bdot = fr_bdot_c;
    fr_recur = fr_recur_c;
    fr_qmatvec = fr_qmatvec_c;
#ifdef FR_X86
    if (f == 2) {
        fr_sgemv = fr_sgemv_512;
        fr_recur = fr_recur_512;
        fr_qmatvec = fr_qmatvec_512;
    } else if (f == 1) {
        fr_sgemv = fr_sgemv_256;
        fr_recur = fr_recur_256;
        fr_qmatvec = fr_qmatvec_256;
    }
    if (q == 2)
        fr_qdot = fr_qdot_vnni;
    else if (q == 1)
        fr_qdot = fr_qdot_256;
    if (b == 2)
        fr_bdot = fr_bdot_512;
#endif
    fr_level_f32 = f;
    fr_level_i8 = q;
    fr_level_bf16 = b;
    return f;
}

#endif /* FASTRNN_INFER_H */
