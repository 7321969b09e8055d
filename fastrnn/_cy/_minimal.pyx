# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""Cython kernels of minGRU, minLSTM and IndRNN: the cells with an element-wise recurrence.

Same signatures and semantics as :mod:`fastrnn.kernels.minimal` (its docstring has the
mathematics and the conventions). float32 and float64 through fused types; every float array of a
call shares one dtype (that of the first argument) and is C-contiguous. The loops run without the
GIL, so that the caller may run disjoint ranges of steps, lanes or rows on separate threads.
"""

from cython cimport floating
from libc.stdint cimport int64_t

from ._argcheck cimport check_batch_sizes, expect_shape
from ._cellmath cimport candidate, dcandidate, minlstm_keep, rnn_act, rnn_dact, sigmoid

from ._errors import call


cdef int check_range(str kernel, str what, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t n,
                     bint nonempty=False) except -1:
    if not (0 <= lo <= hi <= n) or (nonempty and lo == hi):
        raise ValueError(
            f"{kernel}: {what} = ({lo}, {hi}) must satisfy 0 <= start "
            f"{'<' if nonempty else '<='} stop <= {n}. Pass a range within the arrays."
        )
    return 0


cdef int check_gates(str kernel, const Py_ssize_t* xp_shape, Py_ssize_t G,
                     const int64_t[::1] batch_sizes, const Py_ssize_t* a_shape,
                     const Py_ssize_t* b_shape, str a_name, str b_name, Py_ssize_t t0,
                     Py_ssize_t t1) except -1:
    cdef Py_ssize_t T = a_shape[0], B = a_shape[1], H = a_shape[2]
    expect_shape(kernel, "xp", xp_shape, 3, T, B, G * H)
    expect_shape(kernel, b_name, b_shape, 3, T, B, H)
    check_batch_sizes(kernel, batch_sizes, T, B)
    check_range(kernel, "(t0, t1)", t0, t1, T)
    return 0


def _gates(const floating[:, :, ::1] xp, const int64_t[::1] batch_sizes, bint cand,
           floating[:, :, ::1] a, floating[:, :, ::1] b, Py_ssize_t t0, Py_ssize_t t1,
           bint lstm):
    cdef str k = "minlstm_gates" if lstm else "mingru_gates"
    cdef Py_ssize_t B = a.shape[1], H = a.shape[2]
    cdef Py_ssize_t t, r, j, n
    cdef floating z, fn, one = 1, zero = 0
    check_gates(k, xp.shape, 3 if lstm else 2, batch_sizes, a.shape, b.shape, "a", "b", t0, t1)
    with nogil:
        for t in range(t0, t1):
            n = batch_sizes[t]
            for r in range(B):
                for j in range(H):
                    if r >= n:
                        a[t, r, j] = one
                        b[t, r, j] = zero
                    elif lstm:
                        fn = minlstm_keep(xp[t, r, j], xp[t, r, H + j])
                        a[t, r, j] = fn
                        b[t, r, j] = (one - fn) * candidate(xp[t, r, 2 * H + j], cand)
                    else:
                        z = sigmoid(xp[t, r, j])
                        a[t, r, j] = one - z
                        b[t, r, j] = z * candidate(xp[t, r, H + j], cand)


def _grads(const floating[:, :, ::1] xp, const floating[:, :, ::1] hs,
           const floating[:, :, ::1] g, const int64_t[::1] batch_sizes, bint cand,
           floating[:, :, ::1] dxp, Py_ssize_t t0, Py_ssize_t t1, bint lstm):
    cdef str k = "minlstm_grads" if lstm else "mingru_grads"
    cdef Py_ssize_t T = g.shape[0], B = g.shape[1], H = g.shape[2]
    cdef Py_ssize_t t, r, j, n, q, G = 3 if lstm else 2
    cdef floating z, fn, dd, ht, one = 1, zero = 0
    expect_shape(k, "xp", xp.shape, 3, T, B, G * H)
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "dxp", dxp.shape, 3, T, B, G * H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_range(k, "(t0, t1)", t0, t1, T)
    with nogil:
        for t in range(t0, t1):
            n = batch_sizes[t]
            for r in range(B):
                for j in range(H):
                    if r >= n:
                        for q in range(G):
                            dxp[t, r, q * H + j] = zero
                    elif lstm:
                        fn = minlstm_keep(xp[t, r, j], xp[t, r, H + j])
                        ht = candidate(xp[t, r, 2 * H + j], cand)
                        dd = g[t, r, j] * (hs[t, r, j] - ht) * fn * (one - fn)
                        dxp[t, r, j] = dd * (one - sigmoid(xp[t, r, j]))
                        dxp[t, r, H + j] = -dd * (one - sigmoid(xp[t, r, H + j]))
                        dxp[t, r, 2 * H + j] = (g[t, r, j] * (one - fn)
                                                * dcandidate(xp[t, r, 2 * H + j], cand))
                    else:
                        z = sigmoid(xp[t, r, j])
                        ht = candidate(xp[t, r, H + j], cand)
                        dxp[t, r, j] = g[t, r, j] * (ht - hs[t, r, j]) * z * (one - z)
                        dxp[t, r, H + j] = g[t, r, j] * z * dcandidate(xp[t, r, H + j], cand)


def _scan_range(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] hs,
                Py_ssize_t t0, Py_ssize_t t1, Py_ssize_t l0, Py_ssize_t l1):
    cdef str k = "scan_range"
    cdef Py_ssize_t T = a.shape[0], N = a.shape[1], t, q
    expect_shape(k, "b", b.shape, 2, T, N)
    expect_shape(k, "hs", hs.shape, 2, T + 1, N)
    check_range(k, "(t0, t1)", t0, t1, T)
    check_range(k, "(l0, l1)", l0, l1, N)
    with nogil:
        for t in range(t0, t1):
            for q in range(l0, l1):
                hs[t + 1, q] = a[t, q] * hs[t, q] + b[t, q]


def _scan_local(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] hs,
                floating[::1] prod, Py_ssize_t t0, Py_ssize_t t1):
    cdef str k = "scan_local"
    cdef Py_ssize_t T = a.shape[0], N = a.shape[1], t, q
    expect_shape(k, "b", b.shape, 2, T, N)
    expect_shape(k, "hs", hs.shape, 2, T + 1, N)
    expect_shape(k, "prod", prod.shape, 1, N)
    check_range(k, "(t0, t1)", t0, t1, T, True)
    with nogil:
        for q in range(N):
            hs[t0 + 1, q] = b[t0, q]
            prod[q] = a[t0, q]
        for t in range(t0 + 1, t1):
            for q in range(N):
                hs[t + 1, q] = a[t, q] * hs[t, q] + b[t, q]
                prod[q] *= a[t, q]


def _scan_apply(const floating[:, ::1] a, floating[:, ::1] hs, const floating[::1] carry,
                floating[::1] run, Py_ssize_t t0, Py_ssize_t t1):
    cdef str k = "scan_apply"
    cdef Py_ssize_t T = a.shape[0], N = a.shape[1], t, q
    cdef floating one = 1
    expect_shape(k, "hs", hs.shape, 2, T + 1, N)
    expect_shape(k, "carry", carry.shape, 1, N)
    expect_shape(k, "run", run.shape, 1, N)
    check_range(k, "(t0, t1)", t0, t1, T)
    with nogil:
        for q in range(N):
            run[q] = one
        for t in range(t0, t1):
            for q in range(N):
                run[q] *= a[t, q]
                hs[t + 1, q] += run[q] * carry[q]


def _indrnn_forward(const floating[:, :, ::1] xp, const floating[:, ::1] u,
                    const int64_t[::1] batch_sizes, bint relu, floating[:, :, ::1] hs,
                    Py_ssize_t b0, Py_ssize_t b1):
    cdef str k = "indrnn_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], H = xp.shape[2], t, r, j, n
    expect_shape(k, "u", u.shape, 2, B, H)
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_range(k, "(b0, b1)", b0, b1, B)
    with nogil:
        for t in range(T):
            n = batch_sizes[t]
            for r in range(b0, b1):
                for j in range(H):
                    if r < n:
                        hs[t + 1, r, j] = rnn_act(xp[t, r, j] + u[r, j] * hs[t, r, j], relu)
                    else:
                        hs[t + 1, r, j] = hs[t, r, j]


def _indrnn_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
                     const floating[:, ::1] u, const int64_t[::1] batch_sizes, bint relu,
                     floating[:, :, ::1] dxp, floating[:, ::1] dh, floating[:, ::1] du,
                     Py_ssize_t b0, Py_ssize_t b1):
    cdef str k = "indrnn_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], t, r, j, n
    cdef floating d, zero = 0
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "u", u.shape, 2, B, H)
    expect_shape(k, "dxp", dxp.shape, 3, T, B, H)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    expect_shape(k, "du", du.shape, 2, B, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_range(k, "(b0, b1)", b0, b1, B)
    with nogil:
        for r in range(b0, b1):
            for j in range(H):
                du[r, j] = zero
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
                        dxp[t, r, j] = zero


_GATES_SPEC = (("xp", "f3"), ("batch_sizes", "i1"), ("cand", "flag"), ("a", "f3w"),
               ("b", "f3w"), ("t0", "flag"), ("t1", "flag"))
_GRADS_SPEC = (("xp", "f3"), ("hs", "f3"), ("g", "f3"), ("batch_sizes", "i1"), ("cand", "flag"),
               ("dxp", "f3w"), ("t0", "flag"), ("t1", "flag"))
_RANGE_SPEC = (("a", "f2"), ("b", "f2"), ("hs", "f2w"), ("t0", "flag"), ("t1", "flag"),
               ("l0", "flag"), ("l1", "flag"))
_LOCAL_SPEC = (("a", "f2"), ("b", "f2"), ("hs", "f2w"), ("prod", "f1w"), ("t0", "flag"),
               ("t1", "flag"))
_APPLY_SPEC = (("a", "f2"), ("hs", "f2w"), ("carry", "f1"), ("run", "f1w"), ("t0", "flag"),
               ("t1", "flag"))
_IND_FORWARD_SPEC = (("xp", "f3"), ("u", "f2"), ("batch_sizes", "i1"), ("relu", "flag"),
                     ("hs", "f3w"), ("b0", "flag"), ("b1", "flag"))
_IND_BACKWARD_SPEC = (("dy", "f3"), ("hs", "f3"), ("u", "f2"), ("batch_sizes", "i1"),
                      ("relu", "flag"), ("dxp", "f3w"), ("dh", "f2w"), ("du", "f2w"),
                      ("b0", "flag"), ("b1", "flag"))


def _with(fused, flag):
    """``fused`` with a last argument fixed (the cell), for :func:`call`'s dispatch by dtype."""
    class _Bound:
        def __getitem__(self, key):
            f = fused[key]
            return lambda *args: f(*args, flag)
    return _Bound()


_MINGRU_GATES, _MINLSTM_GATES = _with(_gates, False), _with(_gates, True)
_MINGRU_GRADS, _MINLSTM_GRADS = _with(_grads, False), _with(_grads, True)


def mingru_gates(xp, batch_sizes, cand, a, b, t0, t1):
    """minGRU coefficients of steps ``t0 <= t < t1``: the arguments and results of
    :func:`fastrnn.kernels.minimal.mingru_gates`."""
    call("mingru_gates", _GATES_SPEC, _MINGRU_GATES, (xp, batch_sizes, cand, a, b, t0, t1))


def minlstm_gates(xp, batch_sizes, cand, a, b, t0, t1):
    """minLSTM coefficients: see :func:`fastrnn.kernels.minimal.minlstm_gates`."""
    call("minlstm_gates", _GATES_SPEC, _MINLSTM_GATES, (xp, batch_sizes, cand, a, b, t0, t1))


def mingru_grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1):
    """minGRU pre-activation gradients: see :func:`fastrnn.kernels.minimal.mingru_grads`."""
    call("mingru_grads", _GRADS_SPEC, _MINGRU_GRADS, (xp, hs, g, batch_sizes, cand, dxp, t0, t1))


def minlstm_grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1):
    """minLSTM pre-activation gradients: see :func:`fastrnn.kernels.minimal.minlstm_grads`."""
    call("minlstm_grads", _GRADS_SPEC, _MINLSTM_GRADS,
         (xp, hs, g, batch_sizes, cand, dxp, t0, t1))


def scan_range(a, b, hs, t0, t1, l0, l1):
    """The sequential scan of lanes ``l0 <= l < l1``: see
    :func:`fastrnn.kernels.minimal.scan_range`."""
    call("scan_range", _RANGE_SPEC, _scan_range, (a, b, hs, t0, t1, l0, l1))


def scan_local(a, b, hs, prod, t0, t1):
    """The blocked scan's first pass: see :func:`fastrnn.kernels.minimal.scan_local`."""
    call("scan_local", _LOCAL_SPEC, _scan_local, (a, b, hs, prod, t0, t1))


def scan_apply(a, hs, carry, run, t0, t1):
    """The blocked scan's second pass: see :func:`fastrnn.kernels.minimal.scan_apply`."""
    call("scan_apply", _APPLY_SPEC, _scan_apply, (a, hs, carry, run, t0, t1))


def indrnn_forward(xp, u, batch_sizes, relu, hs, b0, b1):
    """IndRNN forward of rows ``b0 <= r < b1``: see
    :func:`fastrnn.kernels.minimal.indrnn_forward`."""
    call("indrnn_forward", _IND_FORWARD_SPEC, _indrnn_forward,
         (xp, u, batch_sizes, relu, hs, b0, b1))


def indrnn_backward(dy, hs, u, batch_sizes, relu, dxp, dh, du, b0, b1):
    """IndRNN backward of rows ``b0 <= r < b1``: see
    :func:`fastrnn.kernels.minimal.indrnn_backward`."""
    call("indrnn_backward", _IND_BACKWARD_SPEC, _indrnn_backward,
         (dy, hs, u, batch_sizes, relu, dxp, dh, du, b0, b1))
