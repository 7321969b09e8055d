"""The general driver of a recurrent layer call over per-step kernels (numpy, Numba, Cython).

A backend built on this module gives it its eight cell kernels (``rnn_forward`` ...
``gru_v1_backward``, see :mod:`fastrnn.kernels.rnn`; for minGRU, minLSTM and IndRNN those of
:mod:`fastrnn.kernels.minimal`, run by :mod:`fastrnn.kernels._mincells`) and gets the layer-level
entry points of the backend protocol (:mod:`fastrnn._backend`): :func:`forward`, :func:`backward`
and :func:`stream`.

The batch the layer prepared (sorted by length, longest first; see
:class:`fastrnn.nn._plan.Plan`) is made time-major, so that at step ``t`` the sequences still
running are the first ``batch_sizes[t]`` rows; the reverse direction reads each sequence from its
own last real step back to its first. Per layer-direction ("unit") the input projection of all steps
is one matrix product, the recurrence runs in the kernel, and in the backward the weight and input
gradients are one matrix product each.
"""

import numpy as np

__all__ = ["forward", "backward", "stream", "to_time_major", "to_batch_first"]


def to_time_major(X, plan, dtype):
    """The sorted, time-major copy ``(Tm, B, F)`` of a batch-first array, zero at padded steps."""
    if plan.unpadded:  # nothing to sort or to zero: one copy
        return np.array(X.transpose(1, 0, 2), dtype=dtype, order="C")
    out = np.ascontiguousarray(X[plan.order, :plan.Tm].transpose(1, 0, 2), dtype=dtype)
    out[~plan.real] = 0.0
    return out


def to_batch_first(y, plan, dtype):
    """Scatter a sorted, time-major ``(Tm, B, F)`` array back to ``(B, T, F)`` (a new array), zero
    past each length."""
    if plan.unpadded:
        return np.array(y.transpose(1, 0, 2), dtype=dtype, order="C")
    out = np.zeros((plan.B, plan.T, y.shape[2]), dtype)
    out[plan.order, :plan.Tm] = y.transpose(1, 0, 2)
    return out


def _reversed(a, plan):
    """``a`` (Tm, B, ...) with each sorted sequence reversed in time within its own length (a
    copy)."""
    if plan.unpadded:  # every sequence has all the steps
        return np.ascontiguousarray(a[::-1])
    return np.ascontiguousarray(a[plan.rev, plan.cols])


def _sorted(a, plan):
    """The rows of ``a`` (B, ...) in the plan's sorted order (``a`` itself when that order is the
    identity, as it is for an unpadded batch)."""
    return a if plan.unpadded else a[plan.order]


def _unsort(out, a, plan):
    """``out[plan.order] = a``: rows of the sorted batch back in the caller's order."""
    if plan.unpadded:
        out[...] = a
    else:
        out[plan.order] = a


def _peep(spec, params, sfx):
    p = params.get("weight_peephole" + sfx)
    return p if p is not None else np.zeros((3, spec.hidden_size), spec.dtype)


def _mask_args(hmask, dtype):
    if hmask is None:
        return np.zeros((0, 0), dtype), False
    return hmask, True


def _project(params, x, sfx, rec_bias=True):
    """Input projection of all steps at once: ``x W_ih^T + b_ih (+ b_hh)``, shape (T, B, G*H)."""
    Tm, B, size = x.shape
    xp = x.reshape(Tm * B, size) @ params["weight_ih" + sfx].T
    xp += params["bias_ih" + sfx]
    if rec_bias:
        xp += params["bias_hh" + sfx]
    return xp.reshape(Tm, B, -1)


def _input_grads(params, grads, unit, dxp, dhp, hin_prev, rec_bias=True):
    """Weight, bias and input gradients from the pre-activation gradients (one GEMM each).

    ``dxp`` (T, B, G*H) are the gradients of the input projections, ``dhp`` those of the recurrent
    products whose input was ``hin_prev`` (T, B, H). Returns the input gradient (T, B, size).
    """
    sfx, x = unit["sfx"], unit["x"]
    Tm, B, size = x.shape
    GH = dxp.shape[2]
    dxp2 = dxp.reshape(Tm * B, GH)
    np.dot(dxp2.T, x.reshape(Tm * B, size), out=grads["weight_ih" + sfx])
    np.sum(dxp2, axis=0, out=grads["bias_ih" + sfx])
    if dhp is not None:
        dhp2 = dhp.reshape(Tm * B, GH)
        np.dot(dhp2.T, hin_prev.reshape(Tm * B, -1), out=grads["weight_hh" + sfx])
        if rec_bias:
            np.sum(dhp2, axis=0, out=grads["bias_hh" + sfx])
    return (dxp2 @ params["weight_ih" + sfx]).reshape(Tm, B, size)


def _states(first, Tm, dt):
    """The states of every step, ``(Tm + 1, B, H)``: ``first`` at step 0, the rest left to the
    kernel."""
    states = np.empty((Tm + 1,) + first.shape, dt)
    states[0] = first
    return states


def _hin_prev(unit):
    """The recurrent products' input at every step: ``h_{t-1}``, masked by recurrent dropout."""
    hprev = unit["hs"][:-1]
    return hprev * unit["hmask"] if unit["hmask"] is not None else hprev


# ------------------------------------------------------------------------------------ the cells
# A cell's forward runs the time loop of one unit into the states ``hs`` (and ``cs``), whose step 0
# the caller has set, and returns the caches its backward needs besides them.
def _rnn_forward(k, spec, params, sfx, x, hs, cs, batch_sizes, mask):
    _, B, _ = x.shape
    H, dt = spec.hidden_size, spec.dtype
    xp = _project(params, x, sfx)
    whh_t = np.ascontiguousarray(params["weight_hh" + sfx].T)
    k.rnn_forward(xp, whh_t, batch_sizes, *mask, spec.relu, hs, np.empty((B, H), dt),
                  np.empty((B, H), dt))
    return {}


def _rnn_backward(k, spec, params, grads, unit, dy, dh, dc, batch_sizes):
    dgates = np.empty_like(dy)
    m, use = _mask_args(unit["hmask"], spec.dtype)
    k.rnn_backward(dy, unit["hs"], params["weight_hh" + unit["sfx"]], batch_sizes, m, use,
                   spec.relu, dgates, dh)
    return _input_grads(params, grads, unit, dgates, dgates, _hin_prev(unit))


def _lstm_forward(k, spec, params, sfx, x, hs, cs, batch_sizes, mask):
    Tm, B, _ = x.shape
    H, dt = spec.hidden_size, spec.dtype
    xp = _project(params, x, sfx)
    acts = np.empty((Tm, B, 4 * H), dt)
    whh_t = np.ascontiguousarray(params["weight_hh" + sfx].T)
    k.lstm_forward(xp, whh_t, batch_sizes, *mask, _peep(spec, params, sfx), spec.gates_on, hs, cs,
                   acts, np.empty((B, H), dt), np.empty((B, 4 * H), dt))
    return dict(acts=acts)


def _lstm_backward(k, spec, params, grads, unit, dy, dh, dc, batch_sizes):
    sfx = unit["sfx"]
    Tm, B, H = dy.shape
    dgates = np.empty((Tm, B, 4 * H), spec.dtype)
    dpeep = np.zeros((3, H), spec.dtype)
    m, use = _mask_args(unit["hmask"], spec.dtype)
    k.lstm_backward(dy, unit["cs"], unit["acts"], params["weight_hh" + sfx], batch_sizes, m, use,
                    _peep(spec, params, sfx), spec.gates_on, dgates, dh, dc, dpeep)
    if spec.peephole:
        grads["weight_peephole" + sfx][...] = dpeep
    return _input_grads(params, grads, unit, dgates, dgates, _hin_prev(unit))


def _gru_forward(k, spec, params, sfx, x, hs, cs, batch_sizes, mask):
    Tm, B, _ = x.shape
    H, dt = spec.hidden_size, spec.dtype
    w = params["weight_hh" + sfx]
    xp = _project(params, x, sfx, rec_bias=False)
    acts = np.empty((Tm, B, 4 * H), dt)
    k.gru_forward(xp, np.ascontiguousarray(w.T), params["bias_hh" + sfx], batch_sizes, *mask, hs,
                  acts, np.empty((B, H), dt), np.empty((B, 3 * H), dt))
    return dict(acts=acts)


def _gru_backward(k, spec, params, grads, unit, dy, dh, dc, batch_sizes):
    Tm, B, H = dy.shape
    dt = spec.dtype
    m, use = _mask_args(unit["hmask"], dt)
    dxp = np.empty((Tm, B, 3 * H), dt)
    dhp = np.empty_like(dxp)
    k.gru_backward(dy, unit["hs"], unit["acts"], params["weight_hh" + unit["sfx"]], batch_sizes, m,
                   use, dxp, dhp, dh, np.empty((B, H), dt))
    return _input_grads(params, grads, unit, dxp, dhp, _hin_prev(unit))


def _gru_v1_forward(k, spec, params, sfx, x, hs, cs, batch_sizes, mask):
    Tm, B, _ = x.shape
    H, dt = spec.hidden_size, spec.dtype
    w = params["weight_hh" + sfx]
    xp = _project(params, x, sfx)
    acts = np.empty((Tm, B, 3 * H), dt)
    rh = np.empty((Tm, B, H), dt)
    k.gru_v1_forward(xp, np.ascontiguousarray(w[:2 * H].T), np.ascontiguousarray(w[2 * H:].T),
                     batch_sizes, *mask, hs, acts, rh, np.empty((B, H), dt),
                     np.empty((B, 2 * H), dt), np.empty((B, H), dt))
    return dict(acts=acts, rh=rh)


def _gru_v1_backward(k, spec, params, grads, unit, dy, dh, dc, batch_sizes):
    sfx = unit["sfx"]
    Tm, B, H = dy.shape
    dt = spec.dtype
    w = params["weight_hh" + sfx]
    m, use = _mask_args(unit["hmask"], dt)
    dgates = np.empty((Tm, B, 3 * H), dt)
    scratch = [np.empty((B, k_ * H), dt) for k_ in (1, 2, 1, 1, 1)]
    k.gru_v1_backward(dy, unit["hs"], unit["acts"], np.ascontiguousarray(w[:2 * H]),
                      np.ascontiguousarray(w[2 * H:]), batch_sizes, m, use, dgates, dh, *scratch)
    dx = _input_grads(params, grads, unit, dgates, None, None)
    g = grads["weight_hh" + sfx]
    d2 = dgates.reshape(Tm * B, 3 * H)
    np.dot(d2[:, :2 * H].T, _hin_prev(unit).reshape(Tm * B, H), out=g[:2 * H])
    np.dot(d2[:, 2 * H:].T, unit["rh"].reshape(Tm * B, H), out=g[2 * H:])
    grads["bias_hh" + sfx][...] = grads["bias_ih" + sfx]
    return dx


_UNIT_FORWARD = {"rnn": _rnn_forward, "lstm": _lstm_forward, "gru": _gru_forward,
                 "gru_v1": _gru_v1_forward}
_UNIT_BACKWARD = {"rnn": _rnn_backward, "lstm": _lstm_backward, "gru": _gru_backward,
                  "gru_v1": _gru_v1_backward}

# minGRU, minLSTM and IndRNN: their units (fastrnn.kernels._mincells, which reads the helpers above)
from . import _mincells  # noqa: E402

_UNIT_FORWARD.update(_mincells.UNIT_FORWARD)
_UNIT_BACKWARD.update(_mincells.UNIT_BACKWARD)


# --------------------------------------------------------------------------- the layer entry points
def forward(k, spec, params, X, plan, h0, c0, hmasks, drops):
    """Forward of every layer and direction with the per-step kernels ``k``.

    Parameters
    ----------
    k : namespace
        The backend's eight cell kernels.
    spec : fastrnn.nn.recurrent.CellSpec
    params : dict of str to ndarray
        The layer's parameters (PyTorch names).
    X : ndarray of shape (B, T, input_size)
        Validated input, batch-first.
    plan : fastrnn.nn._plan.Plan
    h0, c0 : ndarray of shape (num_layers * num_directions, B, H)
        Initial states in the caller's order (``c0`` None but for an LSTM).
    hmasks : list of (ndarray of shape (B, H) or None)
        Recurrent dropout mask of every unit, rows in sorted order.
    drops : list of (ndarray of shape (Tm, B, D*H) or None)
        Dropout mask on the outputs of every layer (time-major, sorted).

    Returns
    -------
    Y : ndarray of shape (B, T, D*H)
    hn, cn : ndarray of shape (num_layers * D, B, H) (``cn`` None but for an LSTM)
    ctx : dict
        What :func:`backward` needs.
    """
    real, Tm = plan.real, plan.Tm
    D, H, dt = spec.num_directions, spec.hidden_size, spec.dtype
    inp = to_time_major(X, plan, dt)
    hn = np.empty((spec.num_layers * D, plan.B, H), dt)
    cn = np.empty_like(hn) if c0 is not None else None
    units = []
    run_unit = _UNIT_FORWARD[spec.kind]
    for layer in range(spec.num_layers):
        outs = []
        for d in range(D):
            u = layer * D + d
            sfx = spec.units[u]
            x = _reversed(inp, plan) if d else inp
            hs = _states(_sorted(h0[u], plan), Tm, dt)
            cs = None if c0 is None else _states(_sorted(c0[u], plan), Tm, dt)
            unit = dict(sfx=sfx, x=x, hmask=hmasks[u], hs=hs, cs=cs)
            unit.update(run_unit(k, spec, params, sfx, x, hs, cs, plan.batch_sizes,
                                 _mask_args(hmasks[u], dt)))
            units.append(unit)
            # the outputs, zero at padded steps (read only: without padding, a view of the states)
            y = unit["hs"][1:] if plan.unpadded else unit["hs"][1:] * real[:, :, None]
            outs.append(_reversed(y, plan) if d else y)
            _unsort(hn[u], unit["hs"][Tm], plan)
            if cn is not None:
                _unsort(cn[u], unit["cs"][Tm], plan)
        inp = np.concatenate(outs, axis=2) if D == 2 else outs[0]
        if drops[layer] is not None:
            inp = inp * drops[layer]
        inp = np.ascontiguousarray(inp)
    return to_batch_first(inp, plan, dt), hn, cn, dict(units=units, drops=drops)


def backward(k, spec, params, grads, plan, ctx, dY, dhn, dcn):
    """Backward of :func:`forward`: fills ``grads``; returns ``(dX, dh0, dc0)`` in the caller's
    order (``dc0`` None but for an LSTM)."""
    order, rev, cols = plan.order, plan.rev, plan.cols
    D, H, L, dt = spec.num_directions, spec.hidden_size, spec.num_layers, spec.dtype
    dout = to_time_major(dY, plan, dt)
    dh0 = np.empty((L * D, plan.B, H), dt)
    dc0 = np.empty_like(dh0) if dcn is not None else None
    run_unit = _UNIT_BACKWARD[spec.kind]
    for layer in range(L - 1, -1, -1):
        if ctx["drops"][layer] is not None:
            dout = dout * ctx["drops"][layer]
        dinp = None
        for d in range(D):
            u = layer * D + d
            unit = ctx["units"][u]
            dy = dout[:, :, d * H:(d + 1) * H]
            dy = np.ascontiguousarray(dy[rev, cols] if d else dy)
            dh = np.ascontiguousarray(dhn[u][order])
            dc = None if dcn is None else np.ascontiguousarray(dcn[u][order])
            dx = run_unit(k, spec, params, grads, unit, dy, dh, dc, plan.batch_sizes)
            dh0[u][order] = dh
            if dc0 is not None:
                dc0[u][order] = dc
            if d:
                dx = dx[rev, cols]
            dinp = dx if dinp is None else dinp + dx
        dout = dinp
    return to_batch_first(dout, plan, dt), dh0, dc0


# --------------------------------------------------------------------------------------- streaming
class _Stepper:
    """One step of every layer with the per-step kernels, over a :class:`StreamState`'s buffers.

    Built once by :func:`stream`: the transposed recurrent weights and every scratch array are made
    there, so a step allocates nothing.
    """

    def __init__(self, k, spec, params, state):
        self.k, self.spec, self.params, self.state = k, spec, params, state
        L, H, B, dt, G = spec.num_layers, spec.hidden_size, state.batch_size, spec.dtype, spec.G
        self.weights = []
        for layer in range(L):
            w = params[f"weight_hh_l{layer}"]
            if spec.kind == "lstm":
                self.weights.append((np.ascontiguousarray(w.T), _peep(spec, params, f"_l{layer}")))
            elif spec.kind == "gru_v1":
                self.weights.append((np.ascontiguousarray(w[:2 * H].T),
                                     np.ascontiguousarray(w[2 * H:].T)))
            else:
                self.weights.append((np.ascontiguousarray(w.T),))
        self.xp = np.empty((1, B, G * H), dt)
        self.hs = np.empty((2, B, H), dt)
        self.cs = np.empty((2, B, H), dt)
        self.acts = np.empty((1, B, (3 if spec.kind == "gru_v1" else 4) * H), dt)
        self.rh = np.empty((1, B, H), dt)
        self.hin = np.empty((B, H), dt)
        self.a = np.empty((B, G * H), dt)
        self.a2 = np.empty((B, 2 * H), dt)
        self.an = np.empty((B, H), dt)
        self.batch_sizes = np.full(1, B, np.int64)
        self.nomask = np.zeros((0, 0), dt)

    def __call__(self):
        s = self.state
        if not np.all(np.isfinite(s.x)):
            return False
        inp = s.x
        for layer in range(self.spec.num_layers):
            self._unit(layer, inp)
            s.h[layer] = self.hs[1]
            if s.c is not None:
                s.c[layer] = self.cs[1]
            inp = s.h[layer]
        return True

    def _unit(self, layer, inp):
        k, spec, p, s = self.k, self.spec, self.params, self.state
        sfx = f"_l{layer}"
        xp2 = self.xp[0]
        np.dot(inp, p["weight_ih" + sfx].T, out=xp2)
        xp2 += p["bias_ih" + sfx]
        if spec.kind != "gru":
            xp2 += p["bias_hh" + sfx]
        self.hs[0] = s.h[layer]
        w = self.weights[layer]
        if spec.kind == "rnn":
            k.rnn_forward(self.xp, w[0], self.batch_sizes, self.nomask, False, spec.relu, self.hs,
                          self.hin, self.a)
        elif spec.kind == "lstm":
            self.cs[0] = s.c[layer]
            k.lstm_forward(self.xp, w[0], self.batch_sizes, self.nomask, False, w[1],
                           spec.gates_on, self.hs, self.cs, self.acts, self.hin, self.a)
        elif spec.kind == "gru":
            k.gru_forward(self.xp, w[0], p["bias_hh" + sfx], self.batch_sizes, self.nomask, False,
                          self.hs, self.acts, self.hin, self.a)
        else:
            k.gru_v1_forward(self.xp, w[0], w[1], self.batch_sizes, self.nomask, False, self.hs,
                             self.acts, self.rh, self.hin, self.a2, self.an)


def stream(k, spec, params, state):
    """A step function over ``state`` (see :mod:`fastrnn._backend`): reads ``state.x``, advances
    ``state.h`` (and ``state.c``), returns ``False`` (and changes nothing) when ``state.x`` holds a
    non-finite value."""
    if spec.kind in _mincells.KINDS:
        return _mincells.Stepper(k, spec, params, state)
    return _Stepper(k, spec, params, state)
