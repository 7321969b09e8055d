# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
"""Element-wise cell mathematics of the Cython kernels (twin of ``fastrnn/kernels/_cellmath.py``).

Every function is ``inline``, ``nogil`` and fused over ``float``/``double``; C compilers inline
them into the kernels' loops. Notation as in ``_cellmath.py``: ``a*`` gate pre-activations,
``i, f, g, o`` and ``r, z, n`` the activated gates, ``d*`` gradients. No ``-ffast-math``: NaN and
Inf propagate, so that training can detect divergence.

float32 ``tanh`` is the rational function of the Numba fast path (:mod:`fastrnn.kernels._vmath`,
relative error below 4e-7), written without branches or calls so that C compilers vectorise the
loops over a row of units (``*_row`` functions); the logistic function is ``(1 + tanh(x/2)) / 2``.
At batch 1 these loops, not the matrix-vector product, were most of a step's time with libm
(about 6 ns per float32 ``tanh``: 5 of them per LSTM unit). float64 uses libc ``tanh`` and ``exp``.
"""

from cython cimport floating
from libc.math cimport exp, expf, log1p, log1pf, tanh


cdef inline floating c_exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline float tanh32(float x) noexcept nogil:
    """Rational tanh (the coefficients of :mod:`fastrnn.kernels._vmath`, written out as C literals:
    ``tests/test_cython_build.py`` compares them with those constants); NaN in, NaN out (the clamps
    are ordered comparisons, false for NaN)."""
    cdef float hi = 9.0, lo = -9.0, one = 1.0, mone = -1.0
    cdef float u, p, q, t
    x = hi if x > hi else x
    x = lo if x < lo else x
    u = x * x
    p = <float>1.7907569119775997e-11 * u + <float>-1.2631788156694172e-08
    p = p * u + <float>9.214284242774527e-06
    p = p * u + <float>0.002914718542505523
    p = p * u + <float>0.12913561011303934
    p = p * u + <float>0.999999950038826
    q = <float>0.00022727670254344686 * u + <float>0.023738263470305637
    q = q * u + <float>0.46246845127699604
    q = q * u + one
    t = x * p / q
    t = one if t > one else t
    return mone if t < mone else t


cdef inline floating c_tanh(floating x) noexcept nogil:
    if floating is float:
        return tanh32(x)
    else:
        return tanh(x)


cdef inline floating sigmoid(floating x) noexcept nogil:
    """Logistic function. float32: ``(1 + tanh(x/2)) / 2`` (vectorisable, the identity the numpy
    reference uses); float64: ``1 / (1 + exp(-x))``, branch-free (for ``x`` below -709 ``exp(-x)``
    overflows to inf and the result is 0). NaN propagates."""
    cdef floating one = 1, half = 0.5
    if floating is float:
        return half + half * tanh32(half * x)
    else:
        return one / (one + c_exp(-x))


cdef inline floating rnn_act(floating a, bint relu) noexcept nogil:
    cdef floating zero = 0
    if relu:
        # 0 * a keeps a NaN (a > 0 is false for NaN)
        return a if a > zero else zero * a
    return c_tanh(a)


cdef inline floating rnn_dact(floating h, bint relu) noexcept nogil:
    """Derivative of the activation, written in terms of its output ``h``."""
    cdef floating zero = 0, one = 1
    if relu:
        return one if h > zero else zero
    return one - h * h


cdef inline void sigmoid_row(Py_ssize_t n, floating* v, bint on) noexcept nogil:
    """``v[:n] = sigmoid(v[:n])`` in place, or 1 where the gate is ablated (``on`` false)."""
    cdef Py_ssize_t j
    cdef floating one = 1
    if on:
        for j in range(n):
            v[j] = sigmoid(v[j])
    else:
        for j in range(n):
            v[j] = one


cdef inline void tanh_row(Py_ssize_t n, const floating* v, floating* out) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        out[j] = c_tanh(v[j])


cdef inline void lstm_fwd_row(Py_ssize_t H, const floating* x, const floating* a,
                              const floating* c_prev, const floating* wci, const floating* wcf,
                              const floating* wco, bint on_i, bint on_f, bint on_o,
                              floating* act, floating* c, floating* h) noexcept nogil:
    """One row (one sequence, one step) of LSTM units.

    ``x + a`` are the pre-activations ``(4H,)`` (input projection plus recurrent product),
    ``c_prev`` the previous cell ``(H,)``, ``w*`` the peephole weights ``(H,)`` each (0 when
    unused), ``on_*`` switch a gate on (an ablated gate is fixed at 1). Writes the activated gates
    ``i, f, g, o`` to ``act`` ``(4H,)`` and the new cell and state to ``c``, ``h`` ``(H,)``.

    The libm calls are scalar and one unit's chain (i, f, g -> c -> o, tanh c -> h) is long, so the
    work is split into passes over the units: element-wise arithmetic (which the compiler
    vectorises) and tight loops of independent libm calls, which keep many calls in flight.
    """
    cdef Py_ssize_t j
    for j in range(H):
        act[j] = x[j] + a[j] + wci[j] * c_prev[j]
        act[H + j] = x[H + j] + a[H + j] + wcf[j] * c_prev[j]
    sigmoid_row(H, act, on_i)
    sigmoid_row(H, act + H, on_f)
    for j in range(H):
        act[2 * H + j] = x[2 * H + j] + a[2 * H + j]
    tanh_row(H, act + 2 * H, act + 2 * H)
    for j in range(H):
        c[j] = act[H + j] * c_prev[j] + act[j] * act[2 * H + j]
        act[3 * H + j] = x[3 * H + j] + a[3 * H + j] + wco[j] * c[j]
    sigmoid_row(H, act + 3 * H, on_o)
    tanh_row(H, c, h)
    for j in range(H):
        h[j] = act[3 * H + j] * h[j]


cdef inline void lstm_bwd(floating dh, floating dc, floating i, floating f, floating g, floating o,
                          floating c, floating c_prev, floating wci, floating wcf, floating wco,
                          bint on_i, bint on_f, bint on_o, floating* dai, floating* daf,
                          floating* dag, floating* dao, floating* dc_prev) noexcept nogil:
    """Back through one LSTM unit; ``dh``, ``dc`` are the gradients arriving at ``h_t`` and ``c_t``.
    Writes the pre-activation gradients ``dai, daf, dag, dao`` and ``dc_prev``."""
    cdef floating tc = c_tanh(c)
    cdef floating dct, zero = 0, one = 1
    dao[0] = dh * tc * o * (one - o) if on_o else zero
    dct = dc + dh * o * (one - tc * tc) + dao[0] * wco
    dai[0] = dct * g * i * (one - i) if on_i else zero
    daf[0] = dct * c_prev * f * (one - f) if on_f else zero
    dag[0] = dct * i * (one - g * g)
    dc_prev[0] = dct * f + dai[0] * wci + daf[0] * wcf


cdef inline void gru_fwd_row(Py_ssize_t H, const floating* x, const floating* a,
                             const floating* bhh, const floating* h_prev, floating* act,
                             floating* h) noexcept nogil:
    """One row of GRU units, the reset gate applied after the recurrent product (``reset_after``).

    ``x`` ``(3H,)`` is the input projection (with ``b_ih``), ``a`` ``(3H,)`` the recurrent product
    ``W_hh h`` and ``bhh`` ``(3H,)`` its bias. Writes ``r, z, n`` and the candidate's recurrent part
    ``hn = W_hn h + b_hn`` to ``act`` ``(4H,)``, and the new state to ``h`` ``(H,)``. Passes of
    element-wise arithmetic and tight loops of libm calls, as in :func:`lstm_fwd_row`.
    """
    cdef Py_ssize_t j
    cdef floating one = 1
    for j in range(2 * H):
        act[j] = x[j] + a[j] + bhh[j]
    sigmoid_row(2 * H, act, True)
    for j in range(H):
        act[3 * H + j] = a[2 * H + j] + bhh[2 * H + j]
        act[2 * H + j] = x[2 * H + j] + act[j] * act[3 * H + j]
    tanh_row(H, act + 2 * H, act + 2 * H)
    for j in range(H):
        h[j] = (one - act[H + j]) * act[2 * H + j] + act[H + j] * h_prev[j]


cdef inline void gru_v1_gates_row(Py_ssize_t H, const floating* x, const floating* a,
                                  const floating* h_in, floating* act,
                                  floating* rh) noexcept nogil:
    """Reset and update gates of one row of the original GRU (reset gate before the product).

    ``x`` ``(3H,)`` is the input projection with both biases, ``a`` ``(2H,)`` the recurrent
    product of the ``r, z`` blocks and ``h_in`` ``(H,)`` the state that entered it. Writes
    ``r, z`` to ``act[:2H]`` and ``r * h_in`` (the input of the candidate's product) to ``rh``.
    """
    cdef Py_ssize_t j
    for j in range(2 * H):
        act[j] = x[j] + a[j]
    sigmoid_row(2 * H, act, True)
    for j in range(H):
        rh[j] = act[j] * h_in[j]


cdef inline void gru_v1_out_row(Py_ssize_t H, const floating* x, const floating* an,
                                const floating* h_prev, floating* act,
                                floating* h) noexcept nogil:
    """Candidate and new state of one row of the original GRU: ``an`` ``(H,)`` is
    ``(r * h) W_hn^T``, ``act[:2H]`` holds ``r, z`` (:func:`gru_v1_gates_row`); writes ``n`` to
    ``act[2H:3H]`` and ``h = (1 - z) n + z h_prev``."""
    cdef Py_ssize_t j
    cdef floating one = 1
    for j in range(H):
        act[2 * H + j] = x[2 * H + j] + an[j]
    tanh_row(H, act + 2 * H, act + 2 * H)
    for j in range(H):
        h[j] = (one - act[H + j]) * act[2 * H + j] + act[H + j] * h_prev[j]


cdef inline void gru_bwd(floating dh, floating r, floating z, floating n, floating hn,
                         floating h_prev, floating* dar, floating* daz, floating* dan,
                         floating* dhn, floating* ddirect) noexcept nogil:
    """Back through one GRU unit (reset after). Writes the pre-activation gradients ``dar``,
    ``daz``, ``dan`` (``dan`` of the candidate's input part), ``dhn`` (of its recurrent part ``hn``)
    and the direct gradient to ``h_prev`` through the update gate."""
    cdef floating one = 1
    cdef floating dz = dh * (h_prev - n)
    dan[0] = dh * (one - z) * (one - n * n)
    dar[0] = dan[0] * hn * r * (one - r)
    daz[0] = dz * z * (one - z)
    dhn[0] = dan[0] * r
    ddirect[0] = dh * z


cdef inline void gru_v1_bwd_zn(floating dh, floating z, floating n, floating h_prev, floating* daz,
                               floating* dan, floating* ddirect) noexcept nogil:
    """Back through the update gate and the candidate's tanh of one unit of the original GRU.
    Writes the pre-activation gradients ``daz``, ``dan`` and the direct gradient to ``h_prev``
    through the update gate."""
    cdef floating one = 1
    daz[0] = dh * (h_prev - n) * z * (one - z)
    dan[0] = dh * (one - z) * (one - n * n)
    ddirect[0] = dh * z


cdef inline floating gru_v1_bwd_r(floating drh, floating r, floating h_in) noexcept nogil:
    """Gradient of the reset gate's pre-activation of one unit of the original GRU, from ``drh``,
    that of ``r * h_in``."""
    cdef floating one = 1
    return drh * h_in * r * (one - r)


# The minimal cells (minGRU, minLSTM): ``h_t = a_t h_{t-1} + b_t`` (see ``_cellmath.py``).

cdef inline floating softplus(floating x) noexcept nogil:
    """``log(1 + exp(x))`` without overflow; NaN propagates."""
    if floating is float:
        return x + log1pf(expf(-x)) if x > 0 else log1pf(expf(x))
    else:
        return x + log1p(exp(-x)) if x > 0 else log1p(exp(x))


cdef inline floating candidate(floating x, bint cand) noexcept nogil:
    """The candidate from its pre-activation: the identity, or with ``cand`` the paper's ``g``
    (``x + 0.5`` for ``x >= 0``, else ``sigmoid(x)``)."""
    cdef floating half = 0.5
    if cand:
        return x + half if x >= 0 else sigmoid(x)
    return x


cdef inline floating dcandidate(floating x, bint cand) noexcept nogil:
    """Derivative of :func:`candidate` at ``x``."""
    cdef floating one = 1, s
    if cand and x < 0:
        s = sigmoid(x)
        return s * (one - s)
    return one


cdef inline floating minlstm_keep(floating af, floating ai) noexcept nogil:
    """minLSTM's ``f / (f + i)`` with ``f = sigmoid(af)``, ``i = sigmoid(ai)``, as
    ``sigmoid(softplus(-ai) - softplus(-af))`` (finite when both gates underflow)."""
    return sigmoid(softplus(-ai) - softplus(-af))
