"""The Cython backend's layer entry points: one-sequence inference in one C call, the general
driver for everything else.

:func:`forward` sends a float32 call of one sequence without dropout, of an RNN, LSTM or GRU, to
:func:`fastrnn._cy._infer.forward` (every layer and direction in one call, weights read as they
are stored); every other call goes to the general driver (:mod:`fastrnn.kernels._driver`), as
before. A backward after such a forward (a layer in evaluation mode may still be differentiated)
runs the general driver's forward first, for the activations it keeps, then its backward.

:func:`run_sequences` runs the same kernel for a quantised layer (:mod:`fastrnn.nn._quant`),
whose every call, whatever its batch, goes through it one sequence at a time.
"""

import numpy as np

from .._backend import one_blas_thread
from ..kernels import _driver
from ._infer import Weights
from ._infer import forward as _forward
from ._infer import projection_uses_blas

__all__ = ["forward", "backward", "calls_blas", "applies", "bind", "float_units", "run_sequences"]

#: the cells of :func:`fastrnn._cy._infer.forward`
KINDS = ("rnn", "lstm", "gru", "gru_v1")

_F32 = np.dtype(np.float32)


def applies(spec, plan, hmasks, drops):
    """Whether a call goes to the one-sequence kernel: float32, one sequence, no dropout."""
    return (plan.B == 1 and spec.kind in KINDS and spec.dtype == _F32
            and all(m is None for m in hmasks) and all(d is None for d in drops))


def float_units(spec, params):
    """The kernel's per-unit weights of a float32 layer: its arrays, as stored."""
    peep = spec.kind == "lstm"
    return [(params["weight_ih" + sfx], params["weight_hh" + sfx], params["bias_ih" + sfx],
             params["bias_hh" + sfx], params.get("weight_peephole" + sfx) if peep else None)
            for sfx in spec.units]


def bind(spec, units):
    """:class:`fastrnn._cy._infer.Weights` of a layer of ``spec`` over ``units``."""
    return Weights(spec.kind, spec.relu, spec.gates_on, units, spec.input_size, spec.hidden_size,
                   spec.num_directions)


#: Weights bound to the arrays of recent layers: ``id(params) -> (arrays, Weights)``. The kernel
#: reads the arrays at every call, so in-place changes need no rebinding; an entry is used only
#: while ``params`` holds the very same arrays (checked by identity at every call).
_BOUND = {}
_BOUND_MAX = 16


def _bound(spec, params):
    arrays = tuple(params.values())
    hit = _BOUND.get(id(params))
    if (hit is not None and len(hit[0]) == len(arrays)
            and all(a is b for a, b in zip(hit[0], arrays)) and hit[1][0] is spec):
        return hit[1][1]
    w = bind(spec, float_units(spec, params))
    if len(_BOUND) >= _BOUND_MAX:
        _BOUND.pop(next(iter(_BOUND)))
    _BOUND[id(params)] = (arrays, (spec, w))
    return w


def _one(w, x, length, h0, c0, y, hn, cn):
    """The kernel on sequence ``x`` (T, I); ``h0``/``c0``/``hn``/``cn`` (units, H) views (``c0``,
    ``cn`` None but for an LSTM)."""
    _forward(w, x, length, h0, h0 if c0 is None else c0, y, hn, hn if cn is None else cn)


def run_sequences(spec, w, X, lengths, h0, c0):
    """The kernel over each sequence of a batch in turn.

    Parameters
    ----------
    spec : fastrnn.nn.recurrent.CellSpec
    w : fastrnn._cy._infer.Weights
        The layer's weights, bound (:func:`bind`).
    X : ndarray of float32, shape (B, T, I)
        C-contiguous.
    lengths : ndarray of int64, shape (B,)
    h0, c0 : ndarray of float32, shape (num_layers * D, B, H)
        ``c0`` None but for an LSTM.

    Returns
    -------
    Y : ndarray of shape (B, T, D*H)
    hn, cn : ndarray of shape (num_layers * D, B, H) (``cn`` None but for an LSTM)
    """
    B, T, _ = X.shape
    H, D = spec.hidden_size, spec.num_directions
    Y = np.empty((B, T, D * H), _F32)
    hn = np.empty((len(spec.units), B, H), _F32)
    cn = np.empty_like(hn) if c0 is not None else None
    h0 = np.ascontiguousarray(h0.transpose(1, 0, 2), dtype=_F32)
    c0 = None if c0 is None else np.ascontiguousarray(c0.transpose(1, 0, 2), dtype=_F32)
    hb = np.empty((len(spec.units), H), _F32)
    cb = np.empty_like(hb)
    for b in range(B):
        _one(w, X[b], int(lengths[b]), h0[b], None if c0 is None else c0[b], Y[b], hb, cb)
        hn[:, b] = hb
        if cn is not None:
            cn[:, b] = cb
    return Y, hn, cn


def forward(k, spec, params, X, plan, h0, c0, hmasks, drops):
    """The backend's ``forward`` (see :mod:`fastrnn._backend`); ``k`` the per-step kernels of
    the general driver."""
    if not applies(spec, plan, hmasks, drops):
        with one_blas_thread():
            return _driver.forward(k, spec, params, X, plan, h0, c0, hmasks, drops)
    T, H = X.shape[1], spec.hidden_size
    Y = np.empty((1, T, spec.num_directions * H), _F32)
    hn = np.empty((len(spec.units), 1, H), _F32)
    cn = np.empty_like(hn) if c0 is not None else None
    args = (_bound(spec, params), X[0], plan.Tm, h0[:, 0], None if c0 is None else c0[:, 0], Y[0],
            hn[:, 0], None if cn is None else cn[:, 0])
    if projection_uses_blas():
        with one_blas_thread():
            _one(*args)
    else:  # no BLAS call: no thread count to limit (that costs a few microseconds)
        _one(*args)
    return Y, hn, cn, ("one", X, h0, c0, hmasks, drops)


def backward(k, spec, params, grads, plan, ctx, dY, dhn, dcn):
    """The backend's ``backward``: after a one-sequence forward, the general driver's forward
    again (for its activations), then its backward."""
    with one_blas_thread():
        if isinstance(ctx, tuple) and ctx and ctx[0] == "one":
            _, X, h0, c0, hmasks, drops = ctx
            *_, ctx = _driver.forward(k, spec, params, X, plan, h0, c0, hmasks, drops)
        return _driver.backward(k, spec, params, grads, plan, ctx, dY, dhn, dcn)


def calls_blas(spec):
    """The backend's ``calls_blas``: False, as :func:`forward` and :func:`backward` limit BLAS to
    one thread themselves, around the calls that use it."""
    return False
