"""Numba kernels of the cells whose recurrence is element-wise: minGRU and minLSTM (Feng et al.
2024, arXiv:2410.01201) and IndRNN (Li et al. 2018, arXiv:1803.04831).

The gates of minGRU and minLSTM read the input alone, so their projections for all steps are one
matrix product (done by the caller) and the recurrence is the first-order linear one
``h_t = a_t * h_{t-1} + b_t``, element by element. The kernels here split that work in three:

* ``*_gates`` turn the pre-activations ``xp`` into the coefficients ``a`` and ``b`` of every step;
* ``scan_*`` run the recurrence, either lane by lane sequentially over time (``scan_range``), or
  in blocks of time that run in parallel (``scan_local`` scans a block from a zero state and
  records the product of its ``a``; once the caller has propagated the true state at each block's
  start, ``scan_apply`` adds it, times the running product of ``a``, to the block's states);
* ``*_grads`` turn the gradients arriving at every state into the pre-activation gradients.

The backward runs the same scan on the reversed recurrence of the gradients (see
:mod:`fastrnn.kernels._scan`). Every kernel works on a range of steps or of lanes (``t0, t1`` or
``l0, l1``), so that the caller can run disjoint ranges on separate threads (the kernels release
the GIL).

The fused kernels ``min*_forward`` and ``min*_backward`` do the three in one pass over memory for
rows ``b0 <= r < b1`` of the batch (a part of the rows per thread): the forward computes each
step's coefficients and applies them at once, the backward recomputes them from ``xp`` while it
runs the gradient recurrence backwards in time and writes the pre-activation gradients on the
way, so that neither ``a``, ``b`` nor the gradients of the states are ever stored. In float32,
both cells run on 16 lanes at a time with the vector functions of :mod:`fastrnn.kernels._vmath`:
minGRU's logistic function and both cells' candidate with its rational tanh (absolute error below
4e-7, as in the float32 LSTM and GRU kernels), minLSTM's normalised gates with its exponential
(relative accuracy, see ``_minlstm_coef_f32``); float64 uses the scalar functions of
:mod:`fastrnn.kernels._cellmath`.

IndRNN, ``h_t = act(W x_t + u * h_{t-1} + b)`` with a vector ``u``, is not linear, but its
units are independent: ``indrnn_forward`` and ``indrnn_backward`` run rows ``b0 <= b < b1`` of the
batch sequentially over time.

Conventions of :mod:`fastrnn.kernels.rnn`: time-major arrays, the batch sorted by length (rows
``b >= batch_sizes[t]`` are finished at step ``t``), ``hs`` of shape ``(T+1, B, H)`` with
``hs[0]`` the initial state. A finished row gets ``a = 1``, ``b = 0`` (it carries its state) and
zero pre-activation gradients. The numpy twins in :mod:`fastrnn.kernels.numpy_ref` have the same
signatures, but for the fused kernels, which have no twin: the other backends run the three
passes, and the tests compare the fused kernels with those.
"""

from numba import types
from numba.extending import overload

from .._config import NUMBA_OPTS
from ._jit import (mingru_ab, mingru_bwd, minlstm_ab, minlstm_bwd, njit, njit_inline, rnn_act,
                   rnn_dact)
from ._simd import vfma, vgt_select, vload_n, vsplat, vstore_n, vzero
from ._vmath import vexp, vsigmoid


@njit
def _gates(xp, batch_sizes, cand, a, b, t0, t1, lstm):
    """Coefficients of either cell (``lstm``: minLSTM); see :func:`mingru_gates`."""
    B, H = a.shape[1], a.shape[2]
    for t in range(t0, t1):
        n = batch_sizes[t]
        a[t, n:] = 1.0  # finished rows carry their state
        b[t, n:] = 0.0
        for r in range(n):
            for j in range(H):
                if lstm:
                    a[t, r, j], b[t, r, j] = minlstm_ab(xp[t, r, j], xp[t, r, H + j],
                                                        xp[t, r, 2 * H + j], cand)
                else:
                    a[t, r, j], b[t, r, j] = mingru_ab(xp[t, r, j], xp[t, r, H + j], cand)


@njit
def _grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1, lstm):
    """Pre-activation gradients of either cell (``lstm``: minLSTM); see :func:`mingru_grads`."""
    H = g.shape[2]
    for t in range(t0, t1):
        n = batch_sizes[t]
        dxp[t, n:] = 0.0  # finished rows
        for r in range(n):
            for j in range(H):
                if lstm:
                    dxp[t, r, j], dxp[t, r, H + j], dxp[t, r, 2 * H + j] = minlstm_bwd(
                        g[t, r, j], xp[t, r, j], xp[t, r, H + j], xp[t, r, 2 * H + j],
                        hs[t, r, j], cand)
                else:
                    dxp[t, r, j], dxp[t, r, H + j] = mingru_bwd(
                        g[t, r, j], xp[t, r, j], xp[t, r, H + j], hs[t, r, j], cand)


@njit
def mingru_gates(xp, batch_sizes, cand, a, b, t0, t1):
    """minGRU coefficients of steps ``t0 <= t < t1``.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 2*H)
        Pre-activations of the update gate ``z`` and of the candidate, in that order (input
        projection plus bias).
    batch_sizes : ndarray of shape (T,), int64
    cand : bool
        The candidate through ``g`` (see :mod:`fastrnn.kernels._cellmath`) instead of the identity.
    a, b : ndarray of shape (T, B, H)
        Output: ``h_t = a_t * h_{t-1} + b_t``.
    t0, t1 : int
    """
    _gates(xp, batch_sizes, cand, a, b, t0, t1, False)


@njit
def minlstm_gates(xp, batch_sizes, cand, a, b, t0, t1):
    """minLSTM coefficients of steps ``t0 <= t < t1``; ``xp`` of shape (T, B, 3*H) holds the
    pre-activations of the forget gate, the input gate and the candidate, in that order. Otherwise
    as :func:`mingru_gates`."""
    _gates(xp, batch_sizes, cand, a, b, t0, t1, True)


@njit
def mingru_grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1):
    """minGRU pre-activation gradients of steps ``t0 <= t < t1``.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 2*H)
        Pre-activations, as in :func:`mingru_gates`.
    hs : ndarray of shape (T+1, B, H)
        States from the forward.
    g : ndarray of shape (T, B, H)
        Gradient of the loss with respect to ``h_t`` (through the outputs and every later step).
    batch_sizes : ndarray of shape (T,), int64
    cand : bool
    dxp : ndarray of shape (T, B, 2*H)
        Output; zero for finished rows.
    t0, t1 : int
    """
    _grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1, False)


@njit
def minlstm_grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1):
    """minLSTM pre-activation gradients of steps ``t0 <= t < t1``; ``xp`` and ``dxp`` of shape
    (T, B, 3*H). Otherwise as :func:`mingru_grads`."""
    _grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1, True)


@njit
def scan_range(a, b, hs, t0, t1, l0, l1):
    """``hs[t+1, l] = a[t, l] * hs[t, l] + b[t, l]`` for ``t0 <= t < t1`` and lanes
    ``l0 <= l < l1``, starting from ``hs[t0]``.

    Parameters
    ----------
    a, b : ndarray of shape (T, N)
        Coefficients of every step and lane (a lane is one unit of one sequence).
    hs : ndarray of shape (T+1, N)
        States; ``hs[t0]`` is read, ``hs[t0+1:t1+1]`` written.
    t0, t1, l0, l1 : int
    """
    for t in range(t0, t1):
        for k in range(l0, l1):
            hs[t + 1, k] = a[t, k] * hs[t, k] + b[t, k]


@njit
def scan_local(a, b, hs, prod, t0, t1):
    """The first pass of the blocked scan over steps ``t0 <= t < t1`` (``t1 > t0``), every lane:
    the recurrence from a zero state before ``t0`` into ``hs[t0+1:t1+1]``, and ``prod`` of shape
    (N,), the product of ``a[t0:t1]``."""
    N = a.shape[1]
    for k in range(N):
        hs[t0 + 1, k] = b[t0, k]
        prod[k] = a[t0, k]
    for t in range(t0 + 1, t1):
        for k in range(N):
            hs[t + 1, k] = a[t, k] * hs[t, k] + b[t, k]
            prod[k] *= a[t, k]


@njit
def scan_apply(a, hs, carry, run, t0, t1):
    """The second pass of the blocked scan: add the true state before step ``t0``, ``carry`` of
    shape (N,), times the product of ``a[t0:t+1]``, to ``hs[t+1]`` for ``t0 <= t < t1``; ``run``
    of shape (N,) is scratch for that product (multiplied in the order of :func:`scan_local`'s
    ``prod``, so that at a block's end it is the same number)."""
    N = a.shape[1]
    for k in range(N):
        run[k] = 1.0
    for t in range(t0, t1):
        for k in range(N):
            run[k] *= a[t, k]
            hs[t + 1, k] += run[k] * carry[k]


@njit
def indrnn_forward(xp, u, batch_sizes, relu, hs, b0, b1):
    """IndRNN forward of rows ``b0 <= r < b1`` over all steps.

    Parameters
    ----------
    xp : ndarray of shape (T, B, H)
        Input projections plus both biases.
    u : ndarray of shape (B, H)
        Recurrent weight of every row and unit (the layer's ``u`` times the row's
        recurrent-dropout mask).
    batch_sizes : ndarray of shape (T,), int64
    relu : bool
        relu (else tanh).
    hs : ndarray of shape (T+1, B, H)
        Output; ``hs[0]`` holds ``h_0`` on entry.
    b0, b1 : int
    """
    T, H = xp.shape[0], xp.shape[2]
    for t in range(T):
        n = batch_sizes[t]
        for r in range(b0, b1):
            for j in range(H):
                if r < n:
                    hs[t + 1, r, j] = rnn_act(xp[t, r, j] + u[r, j] * hs[t, r, j], relu)
                else:
                    hs[t + 1, r, j] = hs[t, r, j]


@njit
def indrnn_backward(dy, hs, u, batch_sizes, relu, dxp, dh, du, b0, b1):
    """IndRNN backward of rows ``b0 <= r < b1``.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
        Gradient with respect to the outputs (zero past each length).
    hs, u, batch_sizes, relu
        As in :func:`indrnn_forward`.
    dxp : ndarray of shape (T, B, H)
        Output: pre-activation gradients (zero for finished rows).
    dh : ndarray of shape (B, H)
        ``dh_n`` on entry, the gradient of ``h_0`` on exit.
    du : ndarray of shape (B, H)
        Output: each row's gradient of its ``u`` (overwritten).
    b0, b1 : int
    """
    T, H = dy.shape[0], dy.shape[2]
    for r in range(b0, b1):
        for j in range(H):
            du[r, j] = 0.0
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        for r in range(b0, b1):
            for j in range(H):
                if r < n:
                    d = (dh[r, j] + dy[t, r, j]) * rnn_dact(hs[t + 1, r, j], relu)
                    dxp[t, r, j] = d
                    du[r, j] += d * hs[t, r, j]
                    dh[r, j] = d * u[r, j]
                else:
                    dxp[t, r, j] = 0.0


# --------------------------------------------------------------------------------------------------
# Fused kernels (Numba backend): gates, recurrence and, in the backward, the gradient recurrence
# and the pre-activation gradients of rows b0 <= r < b1 in one pass, the bias added to the input
# projections as they are read. The row helpers take flat arrays and offsets; their float32 forms
# work on 16 units at a time.
# --------------------------------------------------------------------------------------------------

_OV = dict(inline="always", jit_options={k: v for k, v in NUMBA_OPTS.items() if k != "cache"})


@njit_inline
def _xb(xp, bias, xo, k, m):
    """``m`` lanes of a row's pre-activations from offset ``k``: ``xp[xo + k:]`` plus the bias."""
    return vload_n(xp, xo + k, m) + vload_n(bias, k, m)


@njit_inline
def _vcandidate(x, cand):
    """:func:`candidate` of 16 float32 lanes: ``x + 0.5`` where ``x >= 0``, else ``sigmoid(x)``
    (with ``cand``); ``x`` itself without."""
    if cand:
        return vgt_select(vzero(), x, vsigmoid(x), x + vsplat(0.5))
    return x


@njit_inline
def _vdcandidate(x, cand):
    """Derivative of :func:`_vcandidate` at 16 float32 lanes."""
    one = vsplat(1.0)
    if cand:
        s = vsigmoid(x)
        return vgt_select(vzero(), x, s * (one - s), one)
    return one


@njit_inline
def _mingru_row_fwd_f32(xp, bias, xo, hs, hp, hn, H, cand):
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        z = vsigmoid(_xb(xp, bias, xo, j, m))
        c = _vcandidate(_xb(xp, bias, xo, H + j, m), cand)
        vstore_n(hs, hn + j, vfma(one - z, vload_n(hs, hp + j, m), z * c), m)


@njit_inline
def _mingru_row_bwd_f32(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand):
    one = vsplat(1.0)
    for j in range(0, H, 16):
        m = min(16, H - j)
        az = _xb(xp, bias, xo, j, m)
        ah = _xb(xp, bias, xo, H + j, m)
        z = vsigmoid(az)
        g = vload_n(dy, do + j, m) + vload_n(dh, dho + j, m)
        gz = g * z
        dz = gz * (one - z)
        vstore_n(dxp, xo + j, dz * (_vcandidate(ah, cand) - vload_n(hs, hp + j, m)), m)
        vstore_n(dxp, xo + H + j, gz * _vdcandidate(ah, cand), m)
        vstore_n(dh, dho + j, g - gz, m)


@njit_inline
def _minlstm_coef_f32(af, ai):
    """minLSTM's ``f' = f / (f + i)`` and ``i' = i / (f + i)`` of 16 float32 lanes from the gates'
    pre-activations, and ``den, ef, ea`` for the backward. Multiplying numerator and denominator by
    ``(1 + exp(-af)) (1 + exp(-ai)) exp(-M)`` gives ``f' = (e0 + ea) / den``,
    ``i' = (e0 + ef) / den`` with ``e0 = exp(-M)``, ``ea = exp(-ai - M)``, ``ef = exp(-af - M)``,
    ``den = 2 e0 + ea + ef`` and ``M = max(0, -af, -ai)``: no exponential exceeds 1 and one of them
    is 1, so nothing overflows and ``den >= 1`` for every input (``f + i`` itself underflows to 0
    when both pre-activations are very negative)."""
    zero = vzero()
    naf = zero - af
    nai = zero - ai
    m = vgt_select(naf, zero, naf, zero)
    m = vgt_select(nai, m, nai, m)
    e0 = vexp(zero - m)
    ea = vexp(nai - m)
    ef = vexp(naf - m)
    den = e0 + e0 + ea + ef
    return (e0 + ea) / den, (e0 + ef) / den, den, ef, ea


@njit_inline
def _minlstm_row_fwd_f32(xp, bias, xo, hs, hp, hn, H, cand):
    for j in range(0, H, 16):
        m = min(16, H - j)
        fa, ia, _, _, _ = _minlstm_coef_f32(_xb(xp, bias, xo, j, m),
                                            _xb(xp, bias, xo, H + j, m))
        c = _vcandidate(_xb(xp, bias, xo, 2 * H + j, m), cand)
        vstore_n(hs, hn + j, vfma(fa, vload_n(hs, hp + j, m), ia * c), m)


@njit_inline
def _minlstm_row_bwd_f32(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand):
    # with f' (1 - f') = fa * ia, 1 - sigmoid(af) = ef / (e0 + ef) and ia = (e0 + ef) / den:
    # daf = g (h_prev - c) fa ef / den, dai = -g (h_prev - c) ia ea / den
    for j in range(0, H, 16):
        m = min(16, H - j)
        fa, ia, den, ef, ea = _minlstm_coef_f32(_xb(xp, bias, xo, j, m),
                                                _xb(xp, bias, xo, H + j, m))
        ah = _xb(xp, bias, xo, 2 * H + j, m)
        g = vload_n(dy, do + j, m) + vload_n(dh, dho + j, m)
        q = g * (vload_n(hs, hp + j, m) - _vcandidate(ah, cand)) / den
        vstore_n(dxp, xo + j, q * fa * ef, m)
        vstore_n(dxp, xo + H + j, vzero() - q * ia * ea, m)
        vstore_n(dxp, xo + 2 * H + j, g * ia * _vdcandidate(ah, cand), m)
        vstore_n(dh, dho + j, fa * g, m)


@njit_inline
def _row_fwd_any(xp, bias, xo, hs, hp, hn, H, cand, lstm):
    for j in range(H):
        x0, x1 = xp[xo + j] + bias[j], xp[xo + H + j] + bias[H + j]
        if lstm:
            a, b = minlstm_ab(x0, x1, xp[xo + 2 * H + j] + bias[2 * H + j], cand)
        else:
            a, b = mingru_ab(x0, x1, cand)
        hs[hn + j] = a * hs[hp + j] + b


@njit_inline
def _row_bwd_any(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand, lstm):
    for j in range(H):
        g = dy[do + j] + dh[dho + j]
        x0, x1 = xp[xo + j] + bias[j], xp[xo + H + j] + bias[H + j]
        if lstm:
            x2 = xp[xo + 2 * H + j] + bias[2 * H + j]
            a, _ = minlstm_ab(x0, x1, x2, cand)
            dxp[xo + j], dxp[xo + H + j], dxp[xo + 2 * H + j] = minlstm_bwd(g, x0, x1, x2,
                                                                            hs[hp + j], cand)
        else:
            a, _ = mingru_ab(x0, x1, cand)
            dxp[xo + j], dxp[xo + H + j] = mingru_bwd(g, x0, x1, hs[hp + j], cand)
        dh[dho + j] = a * g


def _mingru_row_fwd(xp, bias, xo, hs, hp, hn, H, cand):
    """One minGRU row of one step: ``hs[hn:hn+H]`` from the pre-activations ``xp[xo:xo+2H]`` and
    the previous state ``hs[hp:hp+H]`` (flat arrays); 16 lanes at a time in float32."""


def _mingru_row_bwd(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand):
    """One minGRU row of one step of the backward: ``g = dy[do:] + dh[dho:]`` (the gradient
    arriving at the state), the pre-activation gradients into ``dxp[xo:xo+2H]``, and ``a * g``, the
    gradient of the previous state, into ``dh[dho:]`` (flat arrays); 16 lanes at a time in
    float32."""


def _minlstm_row_fwd(xp, bias, xo, hs, hp, hn, H, cand):
    """As :func:`_mingru_row_fwd`, for minLSTM (``xp[xo:xo+3H]``)."""


def _minlstm_row_bwd(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand):
    """As :func:`_mingru_row_bwd`, for minLSTM (``xp``, ``dxp`` from ``xo`` to ``xo+3H``)."""


def _dispatch_fwd(stub, f32, lstm):
    """Compile calls of ``stub`` (a row of one step of the forward) to ``f32`` on float32 arrays
    and to :func:`_row_fwd_any` with the cell's flag ``lstm`` otherwise."""

    @overload(stub, **_OV)
    def _ov(xp, bias, xo, hs, hp, hn, H, cand):
        if xp.dtype == types.float32:
            return (lambda xp, bias, xo, hs, hp, hn, H, cand:
                    f32(xp, bias, xo, hs, hp, hn, H, cand))
        return (lambda xp, bias, xo, hs, hp, hn, H, cand:
                _row_fwd_any(xp, bias, xo, hs, hp, hn, H, cand, lstm))


def _dispatch_bwd(stub, f32, lstm):
    """As :func:`_dispatch_fwd`, for a row of one step of the backward."""

    @overload(stub, **_OV)
    def _ov(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand):
        if xp.dtype == types.float32:
            return (lambda xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand:
                    f32(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand))
        return (lambda xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand:
                _row_bwd_any(xp, bias, xo, hs, hp, dy, do, dh, dho, dxp, H, cand, lstm))


_dispatch_fwd(_mingru_row_fwd, _mingru_row_fwd_f32, False)
_dispatch_bwd(_mingru_row_bwd, _mingru_row_bwd_f32, False)
_dispatch_fwd(_minlstm_row_fwd, _minlstm_row_fwd_f32, True)
_dispatch_bwd(_minlstm_row_bwd, _minlstm_row_bwd_f32, True)


@njit
def _fused_forward(xp, bias, batch_sizes, cand, hs, b0, b1, lstm):
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    GH = xp.shape[2]
    xf = xp.reshape(xp.size)
    hf = hs.reshape(hs.size)
    for t in range(T):
        n = batch_sizes[t]
        for r in range(b0, b1):
            hp = (t * B + r) * H
            hn = hp + B * H
            if r >= n:  # a finished row carries its state
                for j in range(H):
                    hf[hn + j] = hf[hp + j]
            elif lstm:
                _minlstm_row_fwd(xf, bias, (t * B + r) * GH, hf, hp, hn, H, cand)
            else:
                _mingru_row_fwd(xf, bias, (t * B + r) * GH, hf, hp, hn, H, cand)


@njit
def _fused_backward(xp, bias, hs, dy, batch_sizes, cand, dh, dxp, b0, b1, lstm):
    T, B, H = dy.shape
    GH = xp.shape[2]
    xf = xp.reshape(xp.size)
    hf = hs.reshape(hs.size)
    yf = dy.reshape(dy.size)
    df = dh.reshape(dh.size)
    gf = dxp.reshape(dxp.size)
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        for r in range(b0, b1):
            o = t * B + r
            if r >= n:  # a finished row: a = 1, zero pre-activation gradients
                for j in range(H):
                    df[r * H + j] += yf[o * H + j]
                for j in range(GH):
                    gf[o * GH + j] = 0.0
            elif lstm:
                _minlstm_row_bwd(xf, bias, o * GH, hf, o * H, yf, o * H, df, r * H, gf, H, cand)
            else:
                _mingru_row_bwd(xf, bias, o * GH, hf, o * H, yf, o * H, df, r * H, gf, H, cand)


@njit
def mingru_forward(xp, bias, batch_sizes, cand, hs, b0, b1):
    """minGRU forward of rows ``b0 <= r < b1`` over all steps: the coefficients of
    :func:`mingru_gates` and the recurrence of :func:`scan_range` in one pass.

    Parameters
    ----------
    xp : ndarray of shape (T, B, 2*H)
        Input projections of the update gate and of the candidate, without the bias;
        C-contiguous, as are the other arrays.
    bias : ndarray of shape (2*H,)
        Added to every row of ``xp`` as it is read: ``xp + bias`` are the pre-activations of
        :func:`mingru_gates`.
    batch_sizes : ndarray of shape (T,), int64
    cand : bool
    hs : ndarray of shape (T+1, B, H)
        States; ``hs[0]`` is read, ``hs[1:]`` written (rows ``b0 .. b1-1``).
    b0, b1 : int
    """
    _fused_forward(xp, bias, batch_sizes, cand, hs, b0, b1, False)


@njit
def minlstm_forward(xp, bias, batch_sizes, cand, hs, b0, b1):
    """minLSTM forward of rows ``b0 <= r < b1``; ``xp`` of shape (T, B, 3*H) and ``bias`` of shape
    (3*H,). Otherwise as :func:`mingru_forward`."""
    _fused_forward(xp, bias, batch_sizes, cand, hs, b0, b1, True)


@njit
def mingru_backward(xp, bias, hs, dy, batch_sizes, cand, dh, dxp, b0, b1):
    """minGRU backward of rows ``b0 <= r < b1``: the gradient recurrence
    ``g_t = dy_t + a_{t+1} g_{t+1}`` from ``g_{T-1} = dy_{T-1} + dh_n``, backwards in time, with the
    coefficients recomputed from ``xp`` and the pre-activation gradients of :func:`mingru_grads`
    written at each step.

    Parameters
    ----------
    xp, bias
        As in :func:`mingru_forward`.
    hs : ndarray of shape (T+1, B, H)
        States from the forward.
    dy : ndarray of shape (T, B, H)
        Gradient with respect to the outputs (zero past each length).
    batch_sizes : ndarray of shape (T,), int64
    cand : bool
    dh : ndarray of shape (B, H)
        ``dh_n`` on entry, the gradient of ``h_0`` (``a_0 g_0``) on exit.
    dxp : ndarray of shape (T, B, 2*H)
        Output: pre-activation gradients (zero for finished rows).
    b0, b1 : int
    """
    _fused_backward(xp, bias, hs, dy, batch_sizes, cand, dh, dxp, b0, b1, False)


@njit
def minlstm_backward(xp, bias, hs, dy, batch_sizes, cand, dh, dxp, b0, b1):
    """minLSTM backward of rows ``b0 <= r < b1``; ``xp`` and ``dxp`` of shape (T, B, 3*H), ``bias``
    of shape (3*H,). Otherwise as :func:`mingru_backward`."""
    _fused_backward(xp, bias, hs, dy, batch_sizes, cand, dh, dxp, b0, b1, True)
