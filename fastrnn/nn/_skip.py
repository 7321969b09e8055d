r"""Connections between the stacked layers of a recurrent layer (its ``skip`` argument).

With ``skip`` set, a recurrent layer runs its stack one layer at a time on its backend and joins
the layers here, in numpy, the same way for every backend. Layer ``l`` has the input ``x_l``
(``(B, T, size_l)``) and its recurrent outputs ``f_l = f_l(x_l)`` (``(B, T, F)``, ``F = D * H``,
both directions concatenated); the connection gives the layer's output ``z_l``:

``"residual"``
    ``z_l = f_l + x_l`` for ``l > 0`` (``+ P_l x_l``, a learned projection without bias, where
    ``size_l != F``); ``z_0 = f_0``. (He et al. 2016, "Deep residual learning for image
    recognition", CVPR.)
``"dense"``
    ``z_l = f_l``, and layer ``l`` reads the concatenation of the network input and the outputs of
    all the layers below it, ``x_l = [x_0, z_0, ..., z_{l-1}]`` (``size_l = input_size + l * F``),
    as in a densely connected network (Huang et al. 2017, "Densely connected convolutional
    networks", CVPR). The stack's output is the top layer's ``z_{L-1}``.
``"highway"``
    ``z_l = g_l * f_l + (1 - g_l) * P_l x_l`` with the gate ``g_l = sigmoid(W_l x_l + b_l)``, on
    every layer; ``P_l`` is the identity where ``size_l == F`` (every layer but, in general, the
    first), else a learned projection without bias (Srivastava et al. 2015, "Highway networks",
    arXiv:1505.00387).

Dropout between layers (the layer's ``dropout``) multiplies ``z_l`` for ``l < L - 1``, where it
leaves the layer. Every array is batch-first and zero at the padded steps of each sequence; the
padded steps of the input are set to zero before anything reads them.

Parameters, named per layer ``l`` beside the cell's: ``skip_proj_l{l}`` ``(F, size_l)``,
``skip_gate_weight_l{l}`` ``(F, size_l)`` and ``skip_gate_bias_l{l}`` ``(F,)``.
"""

import numpy as np

from . import init as _init

__all__ = ["SKIPS", "GATE_BIAS", "check_skip", "layer_input_size", "build", "forward", "backward",
           "Stream"]

#: the values of ``skip`` besides None
SKIPS = ("residual", "dense", "highway")

#: Initial bias of the highway gates: ``sigmoid(-1) = 0.27``, so a fresh layer passes about three
#: quarters of its input through unchanged. Srivastava et al. (2015) initialise the gate biases
#: negative (-1 to -3, more negative for deeper networks) so that the first updates see a
#: network close to the identity, through which gradients pass.
GATE_BIAS = -1.0


def check_skip(skip):
    """Return ``skip`` if it is None or one of :data:`SKIPS`, else raise ``ValueError``."""
    if skip is not None and skip not in SKIPS:
        raise ValueError(
            f"skip must be None, 'residual', 'dense' or 'highway', got {skip!r}. None stacks the "
            "layers plainly; the others add connections between them.")
    return skip


def layer_input_size(skip, input_size, width, layer):
    """Features per step that layer ``layer`` reads (``width`` = ``D * H``, a layer's output)."""
    if layer == 0:
        return input_size
    if skip == "dense":
        return input_size + layer * width
    return width


def _projected(skip, layer, size, width):
    """Whether the connection of layer ``layer`` has a projection ``P`` (sizes differ)."""
    return size != width and (skip == "highway" or (skip == "residual" and layer > 0))


def build(skip, params, input_size, width, num_layers, rng, dtype):
    """Add the connections' parameters of every layer to ``params`` (drawn from ``rng``)."""
    for layer in range(num_layers):
        size = layer_input_size(skip, input_size, width, layer)
        if _projected(skip, layer, size, width):
            params[f"skip_proj_l{layer}"] = _init.glorot_uniform((width, size), rng, dtype)
        if skip == "highway":
            params[f"skip_gate_weight_l{layer}"] = _init.glorot_uniform((width, size), rng, dtype)
            params[f"skip_gate_bias_l{layer}"] = np.full(width, GATE_BIAS, dtype)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _matmul_t(x, w):
    """``x @ w.T`` over the last axis of ``x`` (B, T, n) as one matrix product."""
    B, T, n = x.shape
    return (x.reshape(B * T, n) @ w.T).reshape(B, T, w.shape[0])


def _weight_grad(dy, x, out):
    """``out[...] = sum over steps of dy^T x`` (one matrix product)."""
    np.dot(dy.reshape(-1, dy.shape[2]).T, x.reshape(-1, x.shape[2]), out=out)


def connect(skip, params, layer, x, f):
    """The output ``z`` of layer ``layer`` from its input ``x`` and recurrent outputs ``f``, and
    what :func:`connect_backward` needs."""
    name = f"_l{layer}"
    if skip == "dense" or (skip == "residual" and layer == 0):
        return f, None
    P = params.get("skip_proj" + name)
    p = x if P is None else _matmul_t(x, P)
    if skip == "residual":
        return f + p, dict(x=x)
    g = _sigmoid(_matmul_t(x, params["skip_gate_weight" + name]) + params["skip_gate_bias" + name])
    return p + g * (f - p), dict(x=x, g=g, f=f, p=p)


def connect_backward(skip, params, grads, layer, cache, dz):
    """Gradients through :func:`connect`: ``(df, dx)``, the gradient of the recurrent outputs and
    the part of the input's gradient that goes around the layer (None where none does); fills the
    gradients of the connection's parameters."""
    if cache is None:
        return dz, None
    name, x = f"_l{layer}", cache["x"]
    if skip == "residual":
        df, dp = dz, dz
        dx = None
    else:
        g = cache["g"]
        df = dz * g
        dp = dz - df
        da = dz * (cache["f"] - cache["p"]) * g * (1.0 - g)
        _weight_grad(da, x, grads["skip_gate_weight" + name])
        np.sum(da.reshape(-1, da.shape[2]), axis=0, out=grads["skip_gate_bias" + name])
        dx = _matmul_t(da, params["skip_gate_weight" + name].T)
    P = params.get("skip_proj" + name)
    if P is None:
        dpx = dp
    else:
        _weight_grad(dp, x, grads["skip_proj" + name])
        dpx = _matmul_t(dp, P.T)
    return df, (dpx if dx is None else dx + dpx)


def _layer_spec(spec, layer, size):
    """The one-layer spec of layer ``layer`` of ``spec`` (its units keep their names)."""
    D = spec.num_directions
    return spec._replace(num_layers=1, input_size=size, units=spec.units[layer * D:(layer + 1) * D])


def _real_steps(plan):
    """bool (B, T, 1): the real steps of each sequence, in the caller's order."""
    lengths = np.empty(plan.B, np.int64)
    lengths[plan.order] = plan.Ls
    return (np.arange(plan.T)[None, :] < lengths[:, None])[:, :, None]


def forward(bk, spec, params, skip, X, plan, h0, c0, hmasks, drops):
    """Forward of a stack with connections: arguments and results as a backend's ``forward``
    (:mod:`fastrnn._backend`), with the backend ``bk`` and ``skip`` first; each layer runs on
    ``bk`` as a one-layer call."""
    D, H, L = spec.num_directions, spec.hidden_size, spec.num_layers
    width = D * H
    real = None if plan.unpadded else _real_steps(plan)
    if real is not None:  # nothing of a padded step may reach a connection (NaN * 0 is NaN)
        X = np.where(real, X, X.dtype.type(0))
    outs, layers, hns, cns = [], [], [], []
    for layer in range(L):
        units = slice(layer * D, (layer + 1) * D)
        if layer == 0:
            x = X
        elif skip == "dense":
            x = np.concatenate([X] + outs, axis=2)
        else:
            x = outs[-1]
        sub = _layer_spec(spec, layer, x.shape[2])
        f, hn, cn, ctx = bk.forward(sub, params, x, plan, h0[units],
                                    None if c0 is None else c0[units], hmasks[units], [None])
        z, cache = connect(skip, params, layer, x, f)
        mask = None
        if drops[layer] is not None:  # time-major and sorted, as drawn: to the caller's layout
            mask = np.zeros((plan.B, plan.T, width), spec.dtype)
            mask[plan.order, :plan.Tm] = drops[layer].transpose(1, 0, 2)
            z = z * mask
        outs.append(np.ascontiguousarray(z, dtype=spec.dtype))
        layers.append(dict(sub=sub, ctx=ctx, cache=cache, mask=mask))
        hns.append(hn)
        cns.append(cn)
    hn = np.concatenate(hns)
    cn = None if c0 is None else np.concatenate(cns)
    return outs[-1], hn, cn, dict(layers=layers, real=real, input_size=X.shape[2])


def backward(bk, spec, params, grads, skip, plan, ctx, dY, dhn, dcn):
    """Backward of :func:`forward`: arguments and results as a backend's ``backward``, with the
    backend ``bk`` and ``skip`` first."""
    D, H, L, dt = spec.num_directions, spec.hidden_size, spec.num_layers, spec.dtype
    width, n_in, real = D * H, ctx["input_size"], ctx["real"]
    dY = np.asarray(dY, dtype=dt)
    if real is not None:
        dY = np.where(real, dY, dt.type(0))
    dzs = [None] * L
    dzs[L - 1] = dY
    dX = None
    dh0, dc0 = [None] * L, [None] * L
    for layer in range(L - 1, -1, -1):
        units = slice(layer * D, (layer + 1) * D)
        item = ctx["layers"][layer]
        dz = dzs[layer]
        if item["mask"] is not None:
            dz = dz * item["mask"]
        df, around = connect_backward(skip, params, grads, layer, item["cache"], dz)
        dx, dh0[layer], dc0[layer] = bk.backward(
            item["sub"], params, grads, plan, item["ctx"], np.ascontiguousarray(df, dtype=dt),
            dhn[units], None if dcn is None else dcn[units])
        if around is not None:
            dx = dx + around
        if layer == 0:
            dX = dx if dX is None else dX + dx
        elif skip == "dense":
            dX = dx[:, :, :n_in] if dX is None else dX + dx[:, :, :n_in]
            for k in range(layer):
                part = dx[:, :, n_in + k * width:n_in + (k + 1) * width]
                dzs[k] = part if dzs[k] is None else dzs[k] + part
        else:
            dzs[layer - 1] = dx
    return (np.ascontiguousarray(dX, dtype=dt), np.concatenate(dh0),
            None if dcn is None else np.concatenate(dc0))


class _LayerState:
    """The buffers of one layer of a :class:`Stream`, as a backend's step reads them: the layer's
    rows of the stack's carried state (views) and its own input buffer."""

    def __init__(self, state, layer, size):
        self.batch_size = state.batch_size
        self.h = state.h[layer:layer + 1]
        self.c = None if state.c is None else state.c[layer:layer + 1]
        self.x = np.empty((state.batch_size, size), state.x.dtype)


class Stream:
    """One streaming step of a stack with connections over a :class:`fastrnn.nn.StreamState`
    (unidirectional): each layer advances with its backend's bound step, the connections are
    applied here (a few small arrays a step, unlike the steps without connections, which
    allocate nothing), and the top layer's output is written to ``state.out``.

    Returns ``False`` from a call, changing nothing, when ``state.x`` holds a non-finite value.
    """

    def __init__(self, bk, spec, params, skip, state):
        self.params, self.skip, self.state = params, skip, state
        width, n_in = spec.hidden_size, spec.input_size
        self.layers = []
        for layer in range(spec.num_layers):
            size = layer_input_size(skip, n_in, width, layer)
            sub = _layer_spec(spec, layer, size)._replace(units=("_l0",))
            # the stepping code names the layer's arrays "_l0": a renamed view of params
            own = {k[:-len(f"_l{layer}")] + "_l0": v for k, v in params.items()
                   if k.endswith(f"_l{layer}") and not k.startswith("skip_")}
            ls = _LayerState(state, layer, size)
            self.layers.append((ls, bk.stream(sub, own, ls)))

    def __call__(self):
        s = self.state
        if not np.all(np.isfinite(s.x)):
            return False
        outs = []
        for layer, (ls, step) in enumerate(self.layers):
            if layer == 0:
                ls.x[...] = s.x
            elif self.skip == "dense":
                ls.x[...] = np.concatenate([s.x] + outs, axis=1)
            else:
                ls.x[...] = outs[-1]
            step()
            f = ls.h[0]
            z, _ = connect(self.skip, self.params, layer, ls.x[:, None, :], f[:, None, :])
            outs.append(z[:, 0])
        s.out[...] = outs[-1]
        return True
