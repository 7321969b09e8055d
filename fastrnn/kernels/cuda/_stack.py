"""Device-resident driver of a whole recurrent layer call: every stacked layer and both directions.

The recurrent layers (:class:`fastrnn.nn.LSTM`, ...) with ``backend="cuda"`` hand their forward and
backward to :func:`stack_forward` and :func:`stack_backward`, which take and return host (numpy)
arrays and do all the work in between on the GPU:

forward
    one copy to the device of everything the call reads (the time-major input, the initial states,
    all parameters, the dropout masks: packed into one buffer) and one of the sequence lengths;
    per layer and direction the input projection ``x W_ih^T + b_ih (+ b_hh)`` of all steps as one
    batched product, the time loop of the cell (:mod:`.rnn`, :mod:`.lstm`, :mod:`.gru`,
    :mod:`._minimal`), the outputs written (reversed back, concatenated, dropout applied)
    straight into the next layer's input; one copy back of the outputs with ``h_n`` (and
    ``c_n``), packed.
backward
    one copy to the device of the output gradients (with those of ``h_n``, ``c_n``); per layer and
    direction the time loop, then the weight gradients ``dG^T x`` and ``dG^T h_{t-1}``, the bias
    sums and the input gradient ``dG W_ih`` as batched products over all steps; one copy back of
    the input gradient, the initial-state gradients and every parameter gradient, packed.

So the number of host-device copies of a call does not depend on the number of layers or steps.
:func:`forward_device` and :func:`backward_device`, the device work of the two (what training on
the device calls), also join the layers by their connections (``skip``, as
:mod:`fastrnn.nn._skip` does on the host): the residual sum, the dense layers' concatenated
inputs and the highway gate, with the projections and the gate's product as device products.
What the backward needs (the inputs of every layer, the states, the gate activations, the
parameters and masks) stays on the device in the :class:`StackCache` that the forward returns.

Conventions are the layer's internal ones (:mod:`fastrnn.nn.recurrent`): the batch sorted longest
first and time-major, ``batch_sizes[t]`` the number of sequences still running at step ``t``, the
reverse direction reading each sequence from its own last real step back to its first, and
"units" (layer-directions) in PyTorch's order ``l0, l0_reverse, l1, ...``.
"""

import math

import numpy as np
from numba import cuda

from .._driver import to_batch_first, to_time_major
from . import _device as dev
from ._matmul import gemm
from .gru import (gru_backward_device, gru_forward_device, gru_v1_backward_device,
                  gru_v1_forward_device)
from .lstm import lstm_backward_device, lstm_forward_device
from ._minimal import (indrnn_backward_device, indrnn_forward_device, scan_backward_device,
                      scan_forward_device)
from .rnn import rnn_backward_device, rnn_forward_device

#: gate blocks of each cell
GATES = {"rnn": 1, "lstm": 4, "gru": 3, "gru_v1": 3, "mingru": 2, "minlstm": 3, "indrnn": 1}
#: the cells with an element-wise recurrence (:mod:`.minimal`): minGRU and minLSTM have no
#: recurrent weight and no ``b_hh``; IndRNN's ``w_hh`` is the vector ``u`` of shape (H,)
ELEMENTWISE = ("mingru", "minlstm", "indrnn")


# ---------------------------------------------------------------------------- element-wise kernels
@cuda.jit(device=True)
def _step(t, b, lens, reverse):
    """The step of sequence ``b`` read at position ``t``: ``t`` itself, or in the reverse direction
    ``lens[b] - 1 - t`` for a real step (padded steps map to themselves)."""
    if reverse and t < lens[b]:
        return lens[b] - 1 - t
    return t


@cuda.jit(device=True)
def _position(T, B, W):
    """This thread's position ``t``, sequence ``b`` and column ``j`` in a launch over
    ``(T * B) x W`` threads (:func:`_launch_steps`: thread row ``t * B + b``), and whether they
    exist: the grid is rounded up to whole blocks. ``B`` is at least 1 (an empty launch is not
    made)."""
    j, r = cuda.grid(2)
    t = r // B
    return t, r - t * B, j, r < T * B and j < W


@cuda.jit
def _gather(src, col0, lens, reverse, scale, use_scale, dst):
    """``dst[t, b, j] = src[s, b, col0 + j]`` (times ``scale[s, b, col0 + j]``), ``s`` the step of
    position ``t``."""
    t, b, j, inside = _position(dst.shape[0], dst.shape[1], dst.shape[2])
    if not inside:
        return
    s = _step(t, b, lens, reverse)
    v = src[s, b, col0 + j]
    if use_scale:
        v *= scale[s, b, col0 + j]
    dst[t, b, j] = v


@cuda.jit
def _gather_add(src, lens, reverse, dst):
    """``dst[t, b, j] += src[s, b, j]``."""
    t, b, j, inside = _position(dst.shape[0], dst.shape[1], dst.shape[2])
    if not inside:
        return
    dst[t, b, j] += src[_step(t, b, lens, reverse), b, j]


@cuda.jit
def _write_output(hs, lens, reverse, col0, drop, use_drop, out):
    """``out[t, b, col0 + j] = h_{s+1}[b, j]`` (times the dropout mask) for a real step, 0 past the
    length: one direction's share of the layer output."""
    t, b, j, inside = _position(hs.shape[0] - 1, hs.shape[1], hs.shape[2])
    if not inside:
        return
    if t < lens[b]:
        v = hs[_step(t, b, lens, reverse) + 1, b, j]
        if use_drop:
            v *= drop[t, b, col0 + j]
        out[t, b, col0 + j] = v
    else:
        out[t, b, col0 + j] = 0


@cuda.jit
def _copy2(src, dst):
    """``dst[b, j] = src[b, j]``."""
    j, b = cuda.grid(2)
    if b < dst.shape[0] and j < dst.shape[1]:
        dst[b, j] = src[b, j]


@cuda.jit
def _zero2(dst):
    j, b = cuda.grid(2)
    if b < dst.shape[0] and j < dst.shape[1]:
        dst[b, j] = 0


@cuda.jit
def _masked_states(hs, hmask, out):
    """``out[t, b, j] = hs[t, b, j] * hmask[b, j]`` for ``t < out.shape[0]``: the recurrent
    products' inputs ``h_{t-1}`` after the recurrent-dropout mask."""
    t, b, j, inside = _position(out.shape[0], out.shape[1], out.shape[2])
    if not inside:
        return
    out[t, b, j] = hs[t, b, j] * hmask[b, j]


@cuda.jit
def _col_sum(a, out):
    """``out[j] = sum_r a[r, j]`` (a bias gradient), one thread per column, rows in order:
    deterministic."""
    j, r = cuda.grid(2)
    if r > 0 or j >= out.shape[0]:
        return
    R = a.shape[0]
    if R == 0:
        out[j] = 0
        return
    acc = a[0, j]
    for i in range(1, R):
        acc += a[i, j]
    out[j] = acc


@cuda.jit
def _columns(src, scol, dst, dcol, width, accumulate):
    """``dst[t, b, dcol + j] = src[t, b, scol + j]`` for ``j < width`` (``+=`` with
    ``accumulate``): a layer's output placed in the next layer's input, a share of an input
    gradient taken out of it, or one gradient added to another."""
    t, b, j, inside = _position(dst.shape[0], dst.shape[1], width)
    if not inside:
        return
    v = src[t, b, scol + j]
    if accumulate:
        v = dst[t, b, dcol + j] + v
    dst[t, b, dcol + j] = v


@cuda.jit
def _connect(kind, f, p, g, drop, use_drop, lens, z):
    """A layer's output ``z`` (T, B, F) from its recurrent outputs ``f`` (:mod:`fastrnn.nn._skip`):
    ``kind`` 1 (residual) ``f + p``, 2 (highway) ``p + g * (f - p)`` with the gate ``g``, held
    in ``g`` as its pre-activation and overwritten with the gate; times the dropout mask with
    ``use_drop``, zero past each length. ``p`` is the layer's input or its projection."""
    t, b, j, inside = _position(z.shape[0], z.shape[1], z.shape[2])
    if not inside:
        return
    gate = g[t, b, j]
    if kind == 2:
        gate = 0.5 * (1.0 + math.tanh(0.5 * gate))
        g[t, b, j] = gate
    if t >= lens[b]:
        z[t, b, j] = 0
        return
    v = f[t, b, j]
    if kind == 2:
        pv = p[t, b, j]
        v = pv + gate * (v - pv)
    else:
        v = v + p[t, b, j]
    if use_drop:
        v *= drop[t, b, j]
    z[t, b, j] = v


@cuda.jit
def _connect_backward(kind, dz, drop, use_drop, f, p, g, df, dp, da):
    """The gradient of :func:`_connect` from that of its output ``dz``: ``df`` (of ``f``), and
    for the highway (``kind`` 2) ``dp`` (of ``p``) and ``da`` (of the gate's pre-activation); a
    residual's ``dp`` is ``df``."""
    t, b, j, inside = _position(df.shape[0], df.shape[1], df.shape[2])
    if not inside:
        return
    v = dz[t, b, j]
    if use_drop:
        v *= drop[t, b, j]
    if kind == 2:
        gate = g[t, b, j]
        d = v * gate
        df[t, b, j] = d
        dp[t, b, j] = v - d
        da[t, b, j] = v * (f[t, b, j] - p[t, b, j]) * gate * (1 - gate)
    else:
        df[t, b, j] = v


def _launch_steps(kernel, T, B, W, *args):
    """Launch an element-wise kernel over ``(T * B) x W`` threads."""
    dev.launch(kernel, T * B, W, *args)


# ---------------------------------------------------------------------------- packing
def _pack(arrays, dt):
    """One contiguous host buffer holding ``arrays`` (``None`` entries skipped) one after another.

    Returns
    -------
    flat : ndarray of shape (total,)
    spans : list of (int, tuple) or None
        Offset and shape of each array in ``flat`` (``None`` for a ``None`` entry), as
        :func:`_spans` lays them out.
    """
    spans, total = _spans([None if a is None else np.shape(a) for a in arrays])
    flat = np.empty(total, dt)
    for a, view in zip(arrays, _views(flat, spans)):
        if view is not None:
            view[...] = a
    return flat, spans


def _spans(shapes):
    """Offsets of arrays of ``shapes`` laid out one after another, and the total size."""
    spans, off = [], 0
    for shape in shapes:
        if shape is None:
            spans.append(None)
            continue
        spans.append((off, tuple(shape)))
        off += int(np.prod(shape, dtype=np.int64))
    return spans, off


def _views(flat, spans):
    """Views of ``flat`` (host or device, 1-D) shaped by ``spans``; ``None`` stays ``None``."""
    out = []
    for span in spans:
        if span is None:
            out.append(None)
        else:
            o, shape = span
            out.append(flat[o:o + int(np.prod(shape, dtype=np.int64))].reshape(shape))
    return out


# ---------------------------------------------------------------------------- forward
class StackCache:
    """What :func:`stack_backward` needs from one :func:`stack_forward`, kept on the device.

    Attributes
    ----------
    cell : str
    dt : numpy dtype
    T, B, H, D, L : int
        Steps, batch, hidden size, directions, layers.
    batch_sizes : ndarray of shape (T,), int64
        Host array (it sets the launch sizes).
    lens : device array of shape (B,), int64
    weights : list of tuple of device arrays
        Per unit ``(w_ih, w_hh, b_ih, b_hh, peep)`` (``peep`` ``None`` without peepholes).
    units : list of dict of device arrays
        Per unit its input ``x`` (T, B, size), ``hs`` (T+1, B, H), ``hmask`` (B, H) or ``None``, and
        the cell's caches (``cs``, ``acts``, ``rh``).
    drops : list of device array of shape (T, B, D*H) or None
        The dropout mask applied to each layer's output.
    relu : bool
    gates_on : tuple of 3 bool
    zero_peep : device array of shape (3, H) or None
        Zero peephole weights for an LSTM unit without peepholes.
    input_size : int
    skip : {None, "residual", "dense", "highway"}
    links : list of (dict or None)
        Per layer what the backward of its connection reads (``None`` without one).
    """

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _check_cell(cell):
    if cell not in GATES:
        raise ValueError(f"cuda stack: cell must be one of {sorted(GATES)}, got {cell!r}.")


def stack_forward(cell, params, x, lengths, batch_sizes, h0, c0=None, hmasks=None, drops=None,
                  num_directions=1, relu=False, gates_on=(1, 1, 1), cand=False):
    """Forward of a whole recurrent layer call on the GPU.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "gru_v1", "mingru", "minlstm", "indrnn"}
        ``"gru"`` applies the reset gate after the recurrent product, ``"gru_v1"`` before.
    params : list of tuple of ndarray
        One tuple per unit (layer-direction, PyTorch order), ``(w_ih, w_hh, b_ih, b_hh, peep)``:
        ``w_ih`` of shape (G*H, size_l), ``w_hh`` of shape (G*H, H), biases of shape (G*H,) and
        ``peep`` of shape (3, H) for an LSTM with peepholes, else ``None`` (or left out). ``size_l``
        is the input size for layer 0 and ``D*H`` above. minGRU and minLSTM have ``w_hh`` and
        ``b_hh`` ``None``; IndRNN's ``w_hh`` and ``b_hh`` have shape (H,).
    cand : bool
        minGRU and minLSTM only: the candidate through ``g`` (see
        :mod:`fastrnn.kernels._cellmath`).
    x : ndarray of shape (T, B, input_size)
        Time-major input, batch sorted longest first, zero past each length.
    lengths : ndarray of shape (B,)
        Sorted lengths, ``T >= lengths[0] >= ... >= lengths[-1] >= 1``.
    batch_sizes : ndarray of shape (T,), int64
        ``batch_sizes[t]`` = number of sequences with ``lengths > t``.
    h0 : ndarray of shape (L*D, B, H)
        Initial hidden states, batch sorted.
    c0 : ndarray of shape (L*D, B, H), optional
        Initial cell states (LSTM only).
    hmasks : list of (ndarray of shape (B, H) or None), optional
        Recurrent-dropout mask of each unit.
    drops : list of (ndarray of shape (T, B, D*H) or None), optional
        Dropout mask applied to the output of each layer (the last one's is normally ``None``).
    num_directions : {1, 2}
    relu : bool
        Simple RNN only: relu instead of tanh.
    gates_on : tuple of 3 int
        LSTM only: input, forget and output gate switches.

    Returns
    -------
    y : ndarray of shape (T, B, D*H)
        Outputs of the last layer (zero past each length).
    hn : ndarray of shape (L*D, B, H)
        State at each sequence's last real step (reverse direction: its first).
    cn : ndarray of shape (L*D, B, H) or None
        Cell state likewise (LSTM), else ``None``.
    cache : StackCache
        Device arrays for :func:`stack_backward`.
    """
    f = "stack_forward"
    _check_cell(cell)
    dt = dev.compute_dtype(x, "x", f)
    D = int(num_directions)
    U = len(params)
    if D not in (1, 2) or U == 0 or U % D:
        raise ValueError(f"cuda {f}: need num_directions in (1, 2) and a multiple of it of "
                         f"parameter tuples, got {D} and {U}.")
    L = U // D
    G = GATES[cell]
    T, B, _ = np.shape(x)
    H = np.shape(params[0][0])[0] // G
    bs = dev.check_batch_sizes(batch_sizes, T, B, f)
    dev.check_shape(lengths, (B,), "lengths", f)
    dev.check_shape(h0, (U, B, H), "h0", f)
    if cell == "lstm":
        dev.check_shape(c0, (U, B, H), "c0", f)
    hmasks = list(hmasks) if hmasks is not None else [None] * U
    drops = list(drops) if drops is not None else [None] * L
    weights = [tuple(p) + (None,) * (5 - len(p)) for p in params]
    recurrent = {"mingru": None, "minlstm": None, "indrnn": (H,)}.get(cell, (G * H, H))
    for k, (w_ih, w_hh, b_ih, b_hh, peep) in enumerate(weights):
        size = np.shape(x)[2] if k < D else D * H
        dev.check_shape(w_ih, (G * H, size), f"w_ih of unit {k}", f)
        dev.check_shape(b_ih, (G * H,), f"b_ih of unit {k}", f)
        if recurrent is not None:
            dev.check_shape(w_hh, recurrent, f"w_hh of unit {k}", f)
            dev.check_shape(b_hh, (G * H,), f"b_hh of unit {k}", f)
        elif w_hh is not None or b_hh is not None:
            raise ValueError(f"cuda {f}: a {cell} unit has no recurrent weight or bias; pass "
                             f"None for w_hh and b_hh of unit {k}.")
        if peep is not None:
            dev.check_shape(peep, (3, H), f"peep of unit {k}", f)
        if hmasks[k] is not None:
            dev.check_shape(hmasks[k], (B, H), f"hmask of unit {k}", f)
    for layer, m in enumerate(drops):
        if m is not None:
            dev.check_shape(m, (T, B, D * H), f"dropout mask of layer {layer}", f)

    # one upload of everything the call reads (and one of the lengths)
    inputs = [x, h0, c0 if cell == "lstm" else None]
    inputs += [w for unit in weights for w in unit] + hmasks + drops
    flat, spans = _pack(inputs, dt)
    d_in = _views(dev.upload(flat), spans)
    lens = dev.upload(np.ascontiguousarray(lengths, dtype=np.int64))
    d_x, d_h0, d_c0 = d_in[:3]
    d_w = [tuple(d_in[3 + 5 * k:3 + 5 * (k + 1)]) for k in range(U)]
    d_hmask = d_in[3 + 5 * U:3 + 6 * U]
    d_drop = d_in[3 + 6 * U:]

    # everything that goes back, in one device buffer
    has_c = cell == "lstm"
    out_spans, total = _spans([(T, B, D * H), (U, B, H), (U, B, H) if has_c else None])
    d_out = dev.empty((total,), dt)
    d_y, d_hn, d_cn = _views(d_out, out_spans)
    cache = forward_device(cell, d_x, lens, bs, d_h0, d_c0, d_w, d_hmask, d_drop, D, d_y, d_hn,
                           d_cn, relu=relu, gates_on=gates_on, cand=cand)
    host = dev.download(d_out, np.empty(total, dt))
    y, hn, cn = _views(host, out_spans)
    return y, hn, cn, cache


def forward_device(cell, d_x, lens, bs, d_h0, d_c0, d_w, d_hmask, d_drop, D, d_y, d_hn, d_cn,
                   relu=False, gates_on=(1, 1, 1), cand=False, skip=None, d_links=None):
    """The work of :func:`stack_forward` on arrays already on the device (nothing is copied).

    Parameters
    ----------
    cell : str
    d_x : device array of shape (T, B, input_size)
    lens : device array of shape (B,), int64
    bs : ndarray of shape (T,), int64
        Host batch sizes (they set the launch sizes).
    d_h0, d_c0 : device arrays of shape (L*D, B, H)
        ``d_c0`` only for the LSTM (else ``None``).
    d_w : list of tuple of device arrays
        Per unit ``(w_ih, w_hh, b_ih, b_hh, peep)`` (``None`` where the unit has none).
    d_hmask : list of (device array of shape (B, H) or None)
    d_drop : list of (device array of shape (T, B, D*H) or None)
    D : {1, 2}
    d_y : device array of shape (T, B, D*H)
        Receives the last layer's outputs.
    d_hn, d_cn : device arrays of shape (L*D, B, H)
        Receive the final states (``d_cn`` only for the LSTM).
    relu, gates_on, cand
        As for :func:`stack_forward`.
    skip : {None, "residual", "dense", "highway"}
        The connections between the layers (:mod:`fastrnn.nn._skip`): layer ``l`` reads
        ``input_size`` features for ``l = 0`` and above ``D*H``, or with ``"dense"``
        ``input_size + l*D*H``; ``d_y`` receives the top layer's connected output.
    d_links : list of tuple of device arrays, optional
        With ``skip``, per layer its connection's ``(proj, gate_weight, gate_bias)`` (``None``
        where it has none): ``skip_proj_l*``, ``skip_gate_weight_l*``, ``skip_gate_bias_l*``.

    Returns
    -------
    StackCache
    """
    dt = d_x.dtype
    T, B, _ = d_x.shape
    U = len(d_w)
    L = U // D
    G = GATES[cell]
    H = d_hn.shape[2]
    has_c = cell == "lstm"
    gates_on = tuple(bool(g) for g in gates_on)
    zero_peep = None
    if cell == "lstm" and any(w[4] is None for w in d_w):
        zero_peep = dev.empty((3, H), dt)
        dev.launch(_zero2, 3, H, zero_peep)
    # scratch shared by the units: the projections, the per-step products
    xp = dev.empty((T, B, G * H), dt)
    a = dev.empty((B, (2 if cell == "gru_v1" else G) * H), dt)
    an = dev.empty((B, H), dt) if cell == "gru_v1" else None

    units, links = [], []
    inp = d_x
    for layer in range(L):
        out = d_y if layer == L - 1 else dev.empty((T, B, D * H), dt)
        drop = d_drop[layer]
        kind = _link_kind(skip, layer)
        # a layer with a connection writes its recurrent outputs apart, then joins them
        f = out if kind == 0 else dev.empty((T, B, D * H), dt)
        fdrop = drop if kind == 0 else None
        for d in range(D):
            k = layer * D + d
            w_ih, b_ih, b_hh, peep = d_w[k][0], d_w[k][2], d_w[k][3], d_w[k][4]
            size = inp.shape[2]
            if d:  # the reverse direction reads each sequence backwards
                ux = dev.empty((T, B, size), dt)
                _launch_steps(_gather, T, B, size, inp, 0, lens, True, inp, False, ux)
            else:
                ux = inp
            # input projection of all steps: one product (minGRU's and minLSTM's are kept for
            # their backward, the others' are scratch)
            uxp = dev.empty((T, B, G * H), dt) if cell in ("mingru", "minlstm") else xp
            gemm(T * B, ux.reshape((T * B, size)), w_ih, uxp.reshape((T * B, G * H)),
                 bias1=b_ih, bias2=None if cell == "gru" else b_hh, trans_b=True)
            unit = dict(x=ux, hmask=d_hmask[k])
            if cell in ELEMENTWISE:
                unit.update(_elementwise_forward(cell, uxp, d_w[k], lens, d_hmask[k], d_h0[k],
                                                 relu, cand, dt))
            else:
                unit.update(_cell_forward(cell, xp, d_w[k], bs, d_hmask[k], d_h0[k],
                                          None if d_c0 is None else d_c0[k], relu, gates_on,
                                          peep if peep is not None else zero_peep, a, an, dt))
            units.append(unit)
            hs = unit["hs"]
            _launch_steps(_write_output, T, B, H, hs, lens, bool(d), d * H,
                          f if fdrop is None else fdrop, fdrop is not None, f)
            dev.launch(_copy2, B, H, hs[T], d_hn[k])
            if has_c:
                dev.launch(_copy2, B, H, unit["cs"][T], d_cn[k])
        links.append(_link_forward(kind, inp, f, d_links[layer] if kind else None, drop, lens,
                                   out))
        if skip == "dense" and layer < L - 1:  # the next layer reads [x, z_0, ..., z_layer]
            size = inp.shape[2]
            nxt = dev.empty((T, B, size + D * H), dt)
            _launch_steps(_columns, T, B, size, inp, 0, nxt, 0, size, False)
            _launch_steps(_columns, T, B, D * H, out, 0, nxt, size, D * H, False)
            inp = nxt
        else:
            inp = out

    return StackCache(cell=cell, dt=dt, T=T, B=B, H=H, D=D, L=L, batch_sizes=bs, lens=lens,
                      weights=d_w, units=units, drops=d_drop, relu=bool(relu), gates_on=gates_on,
                      zero_peep=zero_peep, input_size=d_x.shape[2], cand=bool(cand), skip=skip,
                      links=links)


def _link_kind(skip, layer):
    """The connection of layer ``layer``: 0 none (or the identity: ``"dense"``, the first
    layer's ``"residual"``), 1 residual, 2 highway."""
    if skip == "highway":
        return 2
    return 1 if skip == "residual" and layer > 0 else 0


def _link_forward(kind, x, f, weights, drop, lens, z):
    """Join layer input ``x`` (T, B, size) and recurrent outputs ``f`` (T, B, F) into the layer's
    output ``z`` (:func:`_connect`) for a connection of ``kind`` (:func:`_link_kind`) with
    ``weights`` ``(proj, gate_weight, gate_bias)``; returns what :func:`_link_backward` needs
    (``None`` for kind 0, whose ``f`` is ``z``)."""
    if kind == 0:
        return None
    T, B, F = f.shape
    size = x.shape[2]
    proj, gate_w, gate_b = weights
    x2 = x.reshape((T * B, size))
    p = x
    if proj is not None:
        p = dev.empty((T, B, F), f.dtype)
        gemm(T * B, x2, proj, p.reshape((T * B, F)), trans_b=True)
    g = f  # (not read by a residual)
    if kind == 2:
        g = dev.empty((T, B, F), f.dtype)
        gemm(T * B, x2, gate_w, g.reshape((T * B, F)), bias1=gate_b, trans_b=True)
    _launch_steps(_connect, T, B, F, kind, f, p, g, f if drop is None else drop,
                  drop is not None, lens, z)
    return dict(kind=kind, x=x, f=f, p=p, g=g, weights=weights)


def _elementwise_forward(cell, xp, w, lens, hmask, h0, relu, cand, dt):
    """The time loop of one unit of minGRU, minLSTM or IndRNN; returns its device caches
    (``hs``, and for minGRU and minLSTM the pre-activations ``xp``, which the backward reads
    again)."""
    T, B, _ = xp.shape
    H = h0.shape[1]
    hs = dev.empty((T + 1, B, H), dt)
    dev.launch(_copy2, B, H, h0, hs[0])
    if cell == "indrnn":
        indrnn_forward_device(xp, w[1], hmask, lens, relu, hs)
        return dict(hs=hs)
    scan_forward_device(xp, lens, cand, cell == "minlstm", hs)
    return dict(hs=hs, xp=xp)


def _cell_forward(cell, xp, w, bs, hmask, h0, c0, relu, gates_on, peep, a, an, dt):
    """The time loop of one unit; returns its device caches (``hs`` and the cell's own)."""
    T, B, _ = xp.shape
    H = h0.shape[1]
    w_hh, b_hh = w[1], w[3]
    hs = dev.empty((T + 1, B, H), dt)
    dev.launch(_copy2, B, H, h0, hs[0])
    if cell == "rnn":
        rnn_forward_device(xp, w_hh, bs, hmask, relu, hs, a)
        return dict(hs=hs)
    if cell == "lstm":
        cs = dev.empty((T + 1, B, H), dt)
        dev.launch(_copy2, B, H, c0, cs[0])
        acts = dev.empty((T, B, 4 * H), dt)
        lstm_forward_device(xp, w_hh, bs, hmask, peep, gates_on, hs, cs, acts, a)
        return dict(hs=hs, cs=cs, acts=acts)
    if cell == "gru":
        acts = dev.empty((T, B, 4 * H), dt)
        gru_forward_device(xp, w_hh, b_hh, bs, hmask, hs, acts, a)
        return dict(hs=hs, acts=acts)
    acts = dev.empty((T, B, 3 * H), dt)
    rh = dev.empty((T, B, H), dt)
    gru_v1_forward_device(xp, w_hh[:2 * H], w_hh[2 * H:], bs, hmask, hs, acts, rh, a, an)
    return dict(hs=hs, acts=acts, rh=rh)


# ---------------------------------------------------------------------------- backward
def stack_backward(cache, dy, dhn, dcn=None):
    """Backward of the :func:`stack_forward` call that returned ``cache``, on the GPU.

    Parameters
    ----------
    cache : StackCache
    dy : ndarray of shape (T, B, D*H)
        Gradient with respect to the outputs, time-major, batch sorted, zero past each length.
    dhn : ndarray of shape (L*D, B, H)
        Gradient with respect to ``h_n`` (batch sorted).
    dcn : ndarray of shape (L*D, B, H), optional
        Gradient with respect to ``c_n`` (LSTM).

    Returns
    -------
    dx : ndarray of shape (T, B, input_size)
        Gradient with respect to the input (zero past each length).
    dh0 : ndarray of shape (L*D, B, H)
        Gradient with respect to ``h_0``.
    dc0 : ndarray of shape (L*D, B, H) or None
        Gradient with respect to ``c_0`` (LSTM), else ``None``.
    grads : list of tuple of ndarray
        Per unit ``(dw_ih, dw_hh, db_ih, db_hh, dpeep)``, shaped like the parameters (``dpeep``
        ``None`` for a unit without peepholes), summed over all steps and sequences.
    """
    f = "stack_backward"
    c = cache
    cell, dt, T, B, H, D, L = c.cell, c.dt, c.T, c.B, c.H, c.D, c.L
    U = L * D
    has_c = cell == "lstm"
    dev.check_shape(dy, (T, B, D * H), "dy", f)
    dev.check_shape(dhn, (U, B, H), "dhn", f)
    if has_c:
        dev.check_shape(dcn, (U, B, H), "dcn", f)

    # one upload
    flat, in_spans = _pack([dy, dhn, dcn if has_c else None], dt)
    d_dy, d_dhn, d_dcn = _views(dev.upload(flat), in_spans)

    # everything that goes back, in one device buffer: dx, dh0, dc0, then the parameter gradients
    shapes = [(T, B, c.input_size), (U, B, H), (U, B, H) if has_c else None]
    for w in c.weights:
        shapes += [None if v is None else tuple(v.shape) for v in w]
    out_spans, total = _spans(shapes)
    d_out = dev.empty((total,), dt)
    outs = _views(d_out, out_spans)
    d_dx, d_dh0, d_dc0 = outs[:3]
    d_grads = [tuple(outs[3 + 5 * k:3 + 5 * (k + 1)]) for k in range(U)]

    backward_device(c, d_dy, d_dhn, d_dcn, d_dx, d_dh0, d_dc0, d_grads)
    host = dev.download(d_out, np.empty(total, dt))
    outs = _views(host, out_spans)
    grads = [tuple(outs[3 + 5 * k:3 + 5 * (k + 1)]) for k in range(U)]
    return outs[0], outs[1], outs[2], grads


def backward_device(c, d_dy, d_dhn, d_dcn, d_dx, d_dh0, d_dc0, d_grads, d_link_grads=None):
    """The work of :func:`stack_backward` on arrays already on the device (nothing is copied).

    Parameters
    ----------
    c : StackCache
        From :func:`forward_device` (or :func:`stack_forward`).
    d_dy : device array of shape (T, B, D*H)
    d_dhn, d_dcn : device arrays of shape (L*D, B, H)
        ``d_dcn`` only for the LSTM (else ``None``).
    d_dx : device array of shape (T, B, input_size)
        Receives the input gradient.
    d_dh0, d_dc0 : device arrays of shape (L*D, B, H)
        Receive the initial-state gradients (``d_dc0`` only for the LSTM).
    d_grads : list of tuple of device arrays
        Per unit ``(dw_ih, dw_hh, db_ih, db_hh, dpeep)``, shaped like the parameters (``None``
        where the unit has none): overwritten with the parameter gradients.
    d_link_grads : list of tuple of device arrays, optional
        With connections between the layers, per layer the gradients of its ``d_links`` (see
        :func:`forward_device`), shaped like them: overwritten.
    """
    cell, dt, T, B, H, D, L = c.cell, c.dt, c.T, c.B, c.H, c.D, c.L
    G = GATES[cell]
    has_c = cell == "lstm"
    # scratch
    R = T * B
    dgates = dev.empty((T, B, G * H), dt)
    dhp = dev.empty((T, B, G * H), dt) if cell == "gru" else dgates
    dy_u = dev.empty((T, B, H), dt)
    hin = dev.empty((T, B, H), dt)
    small = [dev.empty((B, k * H), dt) for k in (1, 2, 1, 1, 1)]  # per-step scratch of the cells
    dpeep_scratch = dev.empty((3, H), dt) if has_c else None
    dx_rev = None

    n_in, F = c.input_size, D * H
    dense = c.skip == "dense" and L > 1
    dzs = [None] * L  # the gradient of each layer's output
    dzs[L - 1] = d_dy
    for layer in range(L - 1, -1, -1):
        size = c.units[layer * D].get("x").shape[2]
        direct = layer == 0 and not dense  # the input gradient goes straight to d_dx
        dinp = d_dx if direct else dev.empty((T, B, size), dt)
        drop, dout, around = c.drops[layer], dzs[layer], None
        if c.links[layer] is not None:  # through the connection first (its dropout included)
            dout, around = _link_backward(c.links[layer], dout, drop, c.lens,
                                          d_link_grads[layer])
            drop = None
        for d in range(D):
            k = layer * D + d
            unit = c.units[k]
            w_ih = c.weights[k][0]
            g_wih, g_whh, g_bih, g_bhh, g_peep = d_grads[k]
            _launch_steps(_gather, T, B, H, dout, d * H, c.lens, bool(d),
                          dout if drop is None else drop, drop is not None, dy_u)
            dh = d_dh0[k]
            dev.launch(_copy2, B, H, d_dhn[k], dh)
            dc = None
            if has_c:
                dc = d_dc0[k]
                dev.launch(_copy2, B, H, d_dcn[k], dc)
            dpeep = g_peep if g_peep is not None else dpeep_scratch
            if has_c:
                dev.launch(_zero2, 3, H, dpeep)
            if cell in ELEMENTWISE:
                _elementwise_backward(c, unit, c.weights[k], dy_u, dh, dgates, small[0])
            else:
                _cell_backward(c, unit, c.weights[k], dy_u, dh, dc, dpeep, dgates, dhp, small)

            # the products over all steps
            x2 = unit["x"].reshape((R, size))
            dg2 = dgates.reshape((R, G * H))
            dh2 = dhp.reshape((R, G * H))
            hs = unit["hs"]
            if unit["hmask"] is not None and cell not in ELEMENTWISE:
                _launch_steps(_masked_states, T, B, H, hs, unit["hmask"], hin)
                hin2 = hin.reshape((R, H))
            else:
                hin2 = hs[:T].reshape((R, H))
            gemm(G * H, dg2, x2, g_wih, trans_a=True)
            dev.launch(_col_sum, 1, G * H, dg2, g_bih)
            if cell == "indrnn":  # u: the per-sequence gradients summed; b_hh: as b_ih
                dev.launch(_col_sum, 1, H, small[0], g_whh)
                dev.launch(_col_sum, 1, G * H, dg2, g_bhh)
            elif cell in ELEMENTWISE:
                pass  # no recurrent weight, no b_hh
            elif cell == "gru_v1":
                gemm(2 * H, dg2[:, :2 * H], hin2, g_whh[:2 * H], trans_a=True)
                gemm(H, dg2[:, 2 * H:], unit["rh"].reshape((R, H)), g_whh[2 * H:], trans_a=True)
                dev.launch(_col_sum, 1, G * H, dg2, g_bhh)  # b_hh is outside the gate: = db_ih
            else:
                gemm(G * H, dh2, hin2, g_whh, trans_a=True)
                dev.launch(_col_sum, 1, G * H, dh2, g_bhh)
            # the input gradient: both directions summed, the reverse one read backwards
            if d == 0:
                gemm(R, dg2, w_ih, dinp.reshape((R, size)))
            else:
                if dx_rev is None or dx_rev.shape[2] != size:
                    dx_rev = dev.empty((T, B, size), dt)
                gemm(R, dg2, w_ih, dx_rev.reshape((R, size)))
                _launch_steps(_gather_add, T, B, size, dx_rev, c.lens, True, dinp)
        if around is not None:  # the part of the input gradient that went around the layer
            _launch_steps(_columns, T, B, size, around, 0, dinp, 0, size, True)
        if dense:  # [x, z_0, ..., z_{layer-1}]: each share to its own gradient, top layer first
            _launch_steps(_columns, T, B, n_in, dinp, 0, d_dx, 0, n_in, layer < L - 1)
            for k in range(layer):
                first = dzs[k] is None
                if first:
                    dzs[k] = dev.empty((T, B, F), dt)
                _launch_steps(_columns, T, B, F, dinp, n_in + k * F, dzs[k], 0, F, not first)
        elif layer > 0:
            dzs[layer - 1] = dinp


def _link_backward(link, dz, drop, lens, grads):
    """The backward of :func:`_link_forward` from the gradient ``dz`` of the layer's output
    (before its dropout ``drop``): fills the connection's gradients ``grads`` (``(proj,
    gate_weight, gate_bias)``, ``None`` where it has none) and returns the gradient of the
    recurrent outputs and the part of the input's gradient that goes around the layer."""
    kind, x, f, p, g = link["kind"], link["x"], link["f"], link["p"], link["g"]
    proj, gate_w, _ = link["weights"]
    g_proj, g_gate_w, g_gate_b = grads
    T, B, F = f.shape
    R, size, dt = T * B, x.shape[2], f.dtype
    df = dev.empty((T, B, F), dt)
    dp = df if kind == 1 else dev.empty((T, B, F), dt)
    da = dev.empty((T, B, F), dt) if kind == 2 else df
    _launch_steps(_connect_backward, T, B, F, kind, dz, dz if drop is None else drop,
                  drop is not None, f, p, g, df, dp, da)
    x2, dp2 = x.reshape((R, size)), dp.reshape((R, F))
    around = None
    if kind == 2:  # the gate's weights, and the input's gradient through the gate
        da2 = da.reshape((R, F))
        gemm(F, da2, x2, g_gate_w, trans_a=True)
        dev.launch(_col_sum, 1, F, da2, g_gate_b)
        around = dev.empty((T, B, size), dt)
        gemm(R, da2, gate_w, around.reshape((R, size)))
    if proj is not None:
        gemm(F, dp2, x2, g_proj, trans_a=True)
        through = dev.empty((T, B, size), dt)
        gemm(R, dp2, proj, through.reshape((R, size)),
             add=None if around is None else around.reshape((R, size)))
        return df, through
    if around is None:
        return df, dp
    _launch_steps(_columns, T, B, F, dp, 0, around, 0, F, True)
    return df, around


def _elementwise_backward(c, unit, w, dy, dh, dgates, du):
    """The backward time loop of one unit of minGRU, minLSTM or IndRNN: writes ``dgates`` (and
    IndRNN's per-sequence gradients of ``u`` into ``du`` (B, H)), updates ``dh``."""
    if c.cell == "indrnn":
        indrnn_backward_device(dy, unit["hs"], w[1], unit["hmask"], c.lens, c.relu, dh, dgates,
                               du)
    else:
        scan_backward_device(dy, unit["xp"], unit["hs"], c.lens, c.cand, c.cell == "minlstm", dh,
                             dgates)


def _cell_backward(c, unit, w, dy, dh, dc, dpeep, dgates, dhp, small):
    """The backward time loop of one unit: writes ``dgates`` (and ``dhp`` for the GRU), updates
    ``dh``, ``dc`` and ``dpeep``."""
    H = c.H
    w_hh, peep = w[1], w[4]
    cell, bs = c.cell, c.batch_sizes
    if cell == "rnn":
        rnn_backward_device(dy, unit["hs"], w_hh, bs, unit["hmask"], c.relu, dgates, dh)
    elif cell == "lstm":
        lstm_backward_device(dy, unit["cs"], unit["acts"], w_hh, bs, unit["hmask"],
                             peep if peep is not None else c.zero_peep, c.gates_on, dgates, dh,
                             dc, dpeep)
    elif cell == "gru":
        gru_backward_device(dy, unit["hs"], unit["acts"], w_hh, bs, unit["hmask"], dgates, dhp,
                            dh, small[0])
    else:
        gru_v1_backward_device(dy, unit["hs"], unit["acts"], w_hh[:2 * H], w_hh[2 * H:], bs,
                               unit["hmask"], dgates, dh, *small)


# ------------------------------------------------------------------ the layer entry points (protocol)
_PARAM_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole")
#: the parameters of a layer's connection (:mod:`fastrnn.nn._skip`), named with ``_l{layer}``
_LINK_NAMES = ("skip_proj", "skip_gate_weight", "skip_gate_bias")


def _unsorted(states, order, dt):
    """Per-unit states ``(L*D, B, H)`` of the sorted batch, back in the caller's order."""
    out = np.empty(states.shape, dt)
    out[:, order] = states
    return out


def forward(spec, params, X, plan, h0, c0, hmasks, drops):
    """Forward of a layer call on the GPU (arguments and results as
    :func:`fastrnn.kernels._driver.forward`, without the kernel namespace): the batch is made
    time-major and sorted on the host, everything else runs in :func:`stack_forward`."""
    order = plan.order
    opts = {"relu": spec.relu} if spec.kind in ("rnn", "indrnn") else {}
    if spec.kind == "lstm":
        opts = {"gates_on": tuple(int(g) for g in spec.gates_on)}
    if spec.kind in ("mingru", "minlstm"):
        opts = {"cand": bool(spec.cand)}
    units = [tuple(params.get(n + sfx) for n in _PARAM_NAMES) for sfx in spec.units]
    y, hn_s, cn_s, cache = stack_forward(
        spec.kind, units, to_time_major(X, plan, spec.dtype), plan.Ls, plan.batch_sizes,
        h0[:, order], None if c0 is None else c0[:, order], hmasks, drops,
        num_directions=spec.num_directions, **opts)
    hn = _unsorted(hn_s, order, spec.dtype)
    cn = None if c0 is None else _unsorted(cn_s, order, spec.dtype)
    return to_batch_first(y, plan, spec.dtype), hn, cn, cache


def backward(spec, params, grads, plan, ctx, dY, dhn, dcn):
    """Backward of :func:`forward` on the GPU: fills ``grads``; returns ``(dX, dh0, dc0)``."""
    order = plan.order
    dx, dh0_s, dc0_s, unit_grads = stack_backward(
        ctx, to_time_major(dY, plan, spec.dtype), dhn[:, order],
        None if dcn is None else dcn[:, order])
    for sfx, ug in zip(spec.units, unit_grads):
        for name, g in zip(_PARAM_NAMES, ug):
            if g is not None:
                grads[name + sfx][...] = g
    dh0 = _unsorted(dh0_s, order, spec.dtype)
    dc0 = None if dcn is None else _unsorted(dc0_s, order, spec.dtype)
    return to_batch_first(dx, plan, spec.dtype), dh0, dc0
