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

IndRNN, ``h_t = act(W x_t + u * h_{t-1} + b)`` with a vector ``u``, is not linear, but its
units are independent: ``indrnn_forward`` and ``indrnn_backward`` run rows ``b0 <= b < b1`` of the
batch sequentially over time.

Conventions of :mod:`fastrnn.kernels.rnn`: time-major arrays, the batch sorted by length (rows
``b >= batch_sizes[t]`` are finished at step ``t``), ``hs`` of shape ``(T+1, B, H)`` with
``hs[0]`` the initial state. A finished row gets ``a = 1``, ``b = 0`` (it carries its state) and
zero pre-activation gradients. The numpy twins in :mod:`fastrnn.kernels.numpy_ref` have the same
signatures.
"""

from ._jit import mingru_ab, mingru_bwd, minlstm_ab, minlstm_bwd, njit, rnn_act, rnn_dact


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
