"""The general driver's units of the cells with an element-wise recurrence: minGRU, minLSTM and
IndRNN (see :mod:`fastrnn.kernels.minimal` for the mathematics and the kernels).

:mod:`fastrnn.kernels._driver` runs these units like those of the other cells (same layout, same
padding, dropout between layers, both directions); they take the backend's kernels ``k``
(``mingru_gates`` ... ``indrnn_backward``) and split their work over threads
(:func:`fastrnn._parallel.run_parts`; the Numba and Cython kernels release the GIL):

* the recurrence ``h_t = a_t * h_{t-1} + b_t`` of minGRU and minLSTM runs as a scan (:func:`scan`):
  lane by lane over time, the lanes (units of sequences) split over threads, when the batch has a
  row per thread or more; else, for a long sequence, in blocks of time scanned in parallel from a
  zero state, whose true starting states are then propagated from block to block and applied;
* the backward runs the same scan on the gradients, backwards in time:
  ``g_t = dy_t + a_{t+1} g_{t+1}``, from ``g_{T-1} = dy_{T-1} + dh_n``;
* IndRNN runs rows of the batch on separate threads.

Where the backend has fused kernels (``mingru_forward`` ... ``minlstm_backward``: Numba), minGRU
and minLSTM run them instead of the three passes above, rows of the batch per thread (see
:func:`_fused`). The input projection and the input and weight gradients are matrix products on
ranges of the ``T * B`` rows, one per thread (the layer runs BLAS on one thread).
"""

import numpy as np

from .._config import min_rows_per_thread, num_threads
from .._parallel import run_parts
from . import _driver

__all__ = ["KINDS", "UNIT_FORWARD", "UNIT_BACKWARD", "scan", "scan_plan", "Stepper"]

#: the cells of this module (``CellSpec.kind``)
KINDS = ("mingru", "minlstm", "indrnn")

#: fewer steps times lanes than this run on one thread (a thread's start costs more)
MIN_PARALLEL_WORK = 1 << 15


def _bounds(n, parts):
    """``parts`` contiguous ranges ``(lo, hi)`` covering ``range(n)``, none empty."""
    parts = max(1, min(parts, n))
    edges = np.linspace(0, n, parts + 1).astype(np.int64)
    return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:])]


def _call(fn, *args):
    return fn(*args)


def scan_plan(T, B, N, threads=None):
    """How :func:`scan` splits a recurrence of ``T`` steps over ``N`` lanes of ``B`` rows.

    Returns
    -------
    mode : {"lanes", "time"}
        ``"lanes"``: each part runs its lanes sequentially over time; ``"time"``: blocks of steps.
    parts : int
        Number of parts (threads).
    """
    if T * N < MIN_PARALLEL_WORK:  # before num_threads(), which imports Numba
        return "lanes", 1
    threads = num_threads() if threads is None else threads
    if threads == 1:
        return "lanes", 1
    if B >= threads or T < 8 * threads:
        return "lanes", min(threads, B)
    return "time", threads


def scan(k, a, b, hs, B=None, mode=None, parts=None):
    """``hs[t+1] = a[t] * hs[t] + b[t]`` for every step, from ``hs[0]``.

    Parameters
    ----------
    k : namespace
        The backend's kernels (``scan_range``, ``scan_local``, ``scan_apply``).
    a, b : ndarray of shape (T, N)
        Coefficients, C-contiguous.
    hs : ndarray of shape (T+1, N)
        States, C-contiguous; ``hs[0]`` is read.
    B : int, optional
        Rows of the batch the lanes come from (``N = B * H``); lanes are split on row boundaries.
        Default ``N``.
    mode, parts : optional
        Force a split (see :func:`scan_plan`, which chooses by default).
    """
    T, N = a.shape
    B = N if B is None else B
    if mode is None:
        mode, parts = scan_plan(T, B, N)
    if mode == "lanes" or parts == 1 or T < 2:
        H = N // B
        rows = _bounds(B, parts)
        run_parts(k.scan_range, [(a, b, hs, 0, T, lo * H, hi * H) for lo, hi in rows])
        return
    blocks = _bounds(T, parts)
    prod = np.empty((len(blocks), N), a.dtype)
    # first pass: the first block from the true initial state, the others from zero
    t0, t1 = blocks[0]
    run_parts(_call, [(k.scan_range, a, b, hs, t0, t1, 0, N)] +
              [(k.scan_local, a, b, hs, prod[i], lo, hi) for i, (lo, hi) in enumerate(blocks)
               if i])
    # the true state before each block: sequential over the blocks, one vector operation each
    carry = np.empty((len(blocks), N), a.dtype)
    carry[1] = hs[blocks[0][1]]
    for i in range(1, len(blocks) - 1):
        carry[i + 1] = hs[blocks[i][1]] + prod[i] * carry[i]
    run = np.empty_like(carry)
    run_parts(k.scan_apply, [(a, hs, carry[i], run[i], lo, hi)
                             for i, (lo, hi) in enumerate(blocks) if i])


def _time_parts(work):
    """Parts of the time axis for an element-wise kernel over ``work`` values."""
    return 1 if work < MIN_PARALLEL_WORK else num_threads()


def _row_parts(B, work):
    """Parts of the batch for IndRNN's kernels."""
    if work < MIN_PARALLEL_WORK:
        return 1
    return max(1, min(num_threads(), B // min_rows_per_thread()))


def _elementwise(fn, Tm, work, *args):
    """``fn(*args, t0, t1)`` over the steps, split over threads."""
    run_parts(fn, [(*args, lo, hi) for lo, hi in _bounds(Tm, _time_parts(work))])


def _project_part(x2, w, bias, xp2, lo, hi):
    np.dot(x2[lo:hi], w.T, out=xp2[lo:hi])
    if bias is not None:
        xp2[lo:hi] += bias


def _project(params, x, sfx, bias=True):
    """``x W_ih^T + b_ih`` of all steps (without ``bias``: ``x W_ih^T``), shape (T, B, G*H): one
    matrix product per thread, each on a range of the ``T * B`` rows (the layer runs BLAS on one
    thread)."""
    Tm, B, size = x.shape
    w = params["weight_ih" + sfx]
    xp2 = np.empty((Tm * B, w.shape[0]), x.dtype)
    x2 = x.reshape(Tm * B, size)
    b = params["bias_ih" + sfx] if bias else None
    run_parts(_project_part, [(x2, w, b, xp2, lo, hi)
                              for lo, hi in _bounds(Tm * B, _time_parts(xp2.size))])
    return xp2.reshape(Tm, B, -1)


def _input_grads_part(d2, x2, w, dx2, dw, db, lo, hi):
    np.dot(d2[lo:hi].T, x2[lo:hi], out=dw)
    np.sum(d2[lo:hi], axis=0, out=db)
    np.dot(d2[lo:hi], w, out=dx2[lo:hi])


def _input_grads(params, grads, unit, dxp):
    """Weight, bias and input gradients from the pre-activation gradients ``dxp`` (T, B, G*H), as
    :func:`fastrnn.kernels._driver._input_grads` does, with the ``T * B`` rows split over the
    threads: each part's products and sums, then the sum of the parts' weight and bias gradients.
    Returns the input gradient (T, B, size)."""
    parts = _time_parts(dxp.size)
    if parts == 1:
        return _driver._input_grads(params, grads, unit, dxp, None, None)
    sfx, x = unit["sfx"], unit["x"]
    Tm, B, size = x.shape
    GH = dxp.shape[2]
    bounds = _bounds(Tm * B, parts)
    dw = np.empty((len(bounds), GH, size), x.dtype)
    db = np.empty((len(bounds), GH), x.dtype)
    dx2 = np.empty((Tm * B, size), x.dtype)
    run_parts(_input_grads_part, [(dxp.reshape(Tm * B, GH), x.reshape(Tm * B, size),
                                   params["weight_ih" + sfx], dx2, dw[i], db[i], lo, hi)
                                  for i, (lo, hi) in enumerate(bounds)])
    np.sum(dw, axis=0, out=grads["weight_ih" + sfx])
    np.sum(db, axis=0, out=grads["bias_ih" + sfx])
    return dx2.reshape(Tm, B, size)


def _fused(k, spec, Tm, B, H):
    """The fused kernel pair of the cell (``min*_forward``, ``min*_backward``) and the rows of each
    part, where the backend has them; else None.

    The rows are split over the threads as :func:`scan_plan` splits the lanes; where it would split
    time instead (fewer rows than threads), the fused kernels run the rows on one thread: at a
    fraction of a nanosecond per unit and step forward and about one backward, the whole recurrence
    of a sequence of 10,000 steps and 128 units takes a few milliseconds, less than the products
    around it, and a blocked scan over time would need two more passes over the coefficients."""
    fwd = getattr(k, spec.kind + "_forward", None)
    if fwd is None:
        return None
    mode, parts = scan_plan(Tm, B, B * H)
    return fwd, getattr(k, spec.kind + "_backward"), _bounds(B, parts if mode == "lanes" else 1)


def _scan_forward(k, spec, params, sfx, x, hs, cs, batch_sizes, mask):
    Tm, B, _ = x.shape
    H, dt = spec.hidden_size, spec.dtype
    fused = _fused(k, spec, Tm, B, H)
    if fused is not None:  # the kernels add the bias as they read the projections
        xp = _project(params, x, sfx, bias=False)
        bias = params["bias_ih" + sfx]
        run_parts(fused[0], [(xp, bias, batch_sizes, spec.cand, hs, lo, hi)
                             for lo, hi in fused[2]])
        return dict(xp=xp, fused=fused)
    xp = _project(params, x, sfx)
    a = np.empty((Tm, B, H), dt)
    b = np.empty((Tm, B, H), dt)
    gates = k.mingru_gates if spec.kind == "mingru" else k.minlstm_gates
    _elementwise(gates, Tm, xp.size, xp, batch_sizes, spec.cand, a, b)
    scan(k, a.reshape(Tm, B * H), b.reshape(Tm, B * H), hs.reshape(Tm + 1, B * H), B)
    return dict(xp=xp, a=a)


def grad_scan(k, a, dy, dh):
    """The gradients ``g_t`` of the loss with respect to every state ``h_t`` of the recurrence
    ``h_t = a_t * h_{t-1} + b_t``, from those of the outputs ``dy`` (T, B, H) and of the last
    state ``dh`` (B, H); ``dh`` is overwritten with the gradient of ``h_0``. Returns ``g``
    (T, B, H)."""
    Tm, B, H = dy.shape
    N = B * H
    # reversed time s = T-1-t: g'_s = a_{T-s} g'_{s-1} + dy_{T-1-s}, from g'_{-1} = dh
    ar = np.empty((Tm, N), a.dtype)
    ar[0] = 1.0
    ar[1:] = a[:0:-1].reshape(Tm - 1, N)
    br = np.ascontiguousarray(dy[::-1].reshape(Tm, N))
    gs = np.empty((Tm + 1, N), a.dtype)
    gs[0] = dh.reshape(N)
    scan(k, ar, br, gs, B)
    g = np.ascontiguousarray(gs[:0:-1].reshape(Tm, B, H))
    dh[...] = a[0] * g[0]
    return g


def _scan_backward(k, spec, params, grads, unit, dy, dh, dc, batch_sizes):
    Tm, B, H = dy.shape
    xp = unit["xp"]
    dxp = np.empty_like(xp)
    if unit.get("fused") is not None:
        bias = params["bias_ih" + unit["sfx"]]
        run_parts(unit["fused"][1], [(xp, bias, unit["hs"], dy, batch_sizes, spec.cand, dh, dxp,
                                      lo, hi) for lo, hi in unit["fused"][2]])
        return _input_grads(params, grads, unit, dxp)
    g = grad_scan(k, unit["a"], dy, dh)
    fn = k.mingru_grads if spec.kind == "mingru" else k.minlstm_grads
    _elementwise(fn, Tm, xp.size, xp, unit["hs"], g, batch_sizes, spec.cand, dxp)
    return _input_grads(params, grads, unit, dxp)


def _indrnn_u(params, sfx, hmask, B):
    """The recurrent weight of every row: ``u`` times the row's recurrent-dropout mask."""
    u = params["weight_hh" + sfx]
    return np.ascontiguousarray(u * hmask if hmask is not None else np.broadcast_to(u, (B, len(u))))


def _indrnn_forward(k, spec, params, sfx, x, hs, cs, batch_sizes, mask):
    Tm, B, _ = x.shape
    xp = _driver._project(params, x, sfx)
    u = _indrnn_u(params, sfx, mask[0] if mask[1] else None, B)
    run_parts(k.indrnn_forward, [(xp, u, batch_sizes, spec.relu, hs, lo, hi)
                                 for lo, hi in _bounds(B, _row_parts(B, xp.size))])
    return dict(u=u)


def _indrnn_backward(k, spec, params, grads, unit, dy, dh, dc, batch_sizes):
    Tm, B, H = dy.shape
    sfx = unit["sfx"]
    dxp = np.empty_like(dy)
    du = np.empty((B, H), dy.dtype)
    run_parts(k.indrnn_backward, [(dy, unit["hs"], unit["u"], batch_sizes, spec.relu, dxp, dh, du,
                                   lo, hi) for lo, hi in _bounds(B, _row_parts(B, dy.size))])
    dx = _driver._input_grads(params, grads, unit, dxp, None, None)
    if unit["hmask"] is not None:
        du *= unit["hmask"]
    np.sum(du, axis=0, out=grads["weight_hh" + sfx])
    grads["bias_hh" + sfx][...] = grads["bias_ih" + sfx]
    return dx


UNIT_FORWARD = {"mingru": _scan_forward, "minlstm": _scan_forward, "indrnn": _indrnn_forward}
UNIT_BACKWARD = {"mingru": _scan_backward, "minlstm": _scan_backward, "indrnn": _indrnn_backward}


class Stepper:
    """One streaming step of every layer of these cells with the kernels ``k``, over a
    :class:`fastrnn.nn.StreamState`'s buffers (same arithmetic as the forward; nothing allocated
    per step)."""

    def __init__(self, k, spec, params, state):
        self.k, self.spec, self.params, self.state = k, spec, params, state
        B, H, G, dt = state.batch_size, spec.hidden_size, spec.G, spec.dtype
        self.xp = np.empty((1, B, G * H), dt)
        self.a = np.empty((1, B, H), dt)
        self.b = np.empty((1, B, H), dt)
        self.hs = np.empty((2, B, H), dt)
        self.batch_sizes = np.full(1, B, np.int64)
        self.bias, self.u = [], []
        for layer in range(spec.num_layers):
            sfx = f"_l{layer}"
            bias = params["bias_ih" + sfx]
            if spec.kind == "indrnn":
                bias = bias + params["bias_hh" + sfx]
                self.u.append(_indrnn_u(params, sfx, None, B))
            self.bias.append(bias)

    def __call__(self):
        s = self.state
        if not np.all(np.isfinite(s.x)):
            return False
        k, spec, p = self.k, self.spec, self.params
        B, H = s.batch_size, spec.hidden_size
        inp = s.x
        for layer in range(spec.num_layers):
            xp2 = self.xp[0]
            np.dot(inp, p[f"weight_ih_l{layer}"].T, out=xp2)
            xp2 += self.bias[layer]
            self.hs[0] = s.h[layer]
            if spec.kind == "indrnn":
                k.indrnn_forward(self.xp, self.u[layer], self.batch_sizes, spec.relu, self.hs, 0, B)
            else:
                gates = k.mingru_gates if spec.kind == "mingru" else k.minlstm_gates
                gates(self.xp, self.batch_sizes, spec.cand, self.a, self.b, 0, 1)
                k.scan_range(self.a.reshape(1, B * H), self.b.reshape(1, B * H),
                             self.hs.reshape(2, B * H), 0, 1, 0, B * H)
            s.h[layer] = self.hs[1]
            inp = s.h[layer]
        return True
