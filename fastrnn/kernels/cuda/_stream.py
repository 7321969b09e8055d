"""Streaming steps on the device: the carried states and the weights stay on the GPU between steps.

:func:`stream` binds the step of a unidirectional recurrent layer (any cell, any number of stacked
layers) over a :class:`fastrnn.nn.streaming.DeviceStreamState`. What lives on the device:

weights
    Every layer's parameters, packed into one buffer and uploaded once when the step is bound. The
    input and recurrent matrices are stored transposed, ``(size, G*H)``, so that the threads of
    consecutive units read consecutive addresses.
states
    ``h`` (and the LSTM's ``c``) of every layer, twice: a step reads one copy and writes the other
    (the units of a step all read the old state, so none may overwrite it in place), and the next
    step swaps them.
the input
    One buffer of shape (B, input_size) that receives each step's ``x_t``.

A step copies ``x_t`` to the device (one upload), launches one kernel per layer (two for the GRU
with ``reset_after=False``, whose candidate needs the reset gates of all units first), each
thread computing one unit of one stream: its gates' input and recurrent products, biases and the
cell update, and copies the top layer's new ``h`` into ``state.out`` (one download). The other
states stay on the device; reading ``state.h`` or ``state.c`` on the host downloads them (see
:class:`~fastrnn.nn.streaming.DeviceStreamState`).

Stale weights never run. Before each step the layer's parameter arrays are compared with the host
copy taken at the last upload (every element, bit for bit: host work in proportion to the number
of parameters, and no device traffic); when any differs, all the weights are packed and uploaded
again (one upload) before the step. So training a layer
between steps, assigning to ``layer.params[...]`` in place or replacing an array, or
:meth:`~fastrnn.nn.LSTM.load_state_dict`, all take effect at the next step.

The per-unit products are plain loops (no tiling or shared memory): a streaming step has a few
streams, and its cost is the launches and the two copies, not the arithmetic.
"""

import numpy as np
from numba import cuda

from . import _device as dev
from ._device import gru_fwd, gru_v1_gates, gru_v1_state, lstm_fwd, mingru_ab, minlstm_ab, rnn_act
from ._stack import _pack, _views, _zero2


# ---------------------------------------------------------------------------- device functions
@cuda.jit(device=True)
def _dot(acc, v, b, w, col):
    """``acc + sum_k v[b, k] * w[k, col]``: row ``b`` of ``v`` times column ``col`` of ``w``."""
    for k in range(v.shape[1]):
        acc += v[b, k] * w[k, col]
    return acc


@cuda.jit(device=True)
def _pre(x, h, wih, whh, bias, b, col):
    """A full pre-activation: ``bias[col] + x[b] . wih[:, col] + h[b] . whh[:, col]``."""
    return _dot(_dot(bias[col], x, b, wih, col), h, b, whh, col)


# ---------------------------------------------------------------------------- kernels
# One thread per (stream b, unit j), launched over (B, H); x is the layer's input (B, size), h
# and c the states before the step, hn and cn after it. wih (size, G*H) and whh (H, G*H) are the
# transposed weights.
@cuda.jit
def _rnn_step(x, wih, whh, bias, relu, h, hn):
    """Simple RNN: ``h' = phi(W_ih x + W_hh h + b_ih + b_hh)`` (``bias`` the sum of both)."""
    b, j, inside = dev.unit(hn.shape[0], hn.shape[1])
    if inside:
        hn[b, j] = rnn_act(_pre(x, h, wih, whh, bias, b, j), relu)


@cuda.jit
def _lstm_step(x, wih, whh, bias, peep, on_i, on_f, on_o, h, c, hn, cn):
    """LSTM (gates i, f, g, o; ``peep`` (3, H) the peephole weights, zeros without)."""
    b, j, inside = dev.unit(hn.shape[0], hn.shape[1])
    if inside:
        H = hn.shape[1]
        _, _, _, _, cj, hj = lstm_fwd(
            _pre(x, h, wih, whh, bias, b, j), _pre(x, h, wih, whh, bias, b, H + j),
            _pre(x, h, wih, whh, bias, b, 2 * H + j), _pre(x, h, wih, whh, bias, b, 3 * H + j),
            c[b, j], peep[0, j], peep[1, j], peep[2, j], on_i, on_f, on_o)
        cn[b, j] = cj
        hn[b, j] = hj


@cuda.jit
def _gru_step(x, wih, whh, bih, bhh, h, hn):
    """GRU with the reset gate after the recurrent product (gates r, z, n)."""
    b, j, inside = dev.unit(hn.shape[0], hn.shape[1])
    if inside:
        H = hn.shape[1]
        ar = _dot(bih[j], x, b, wih, j) + _dot(bhh[j], h, b, whh, j)
        az = _dot(bih[H + j], x, b, wih, H + j) + _dot(bhh[H + j], h, b, whh, H + j)
        xn = _dot(bih[2 * H + j], x, b, wih, 2 * H + j)
        hn_ = _dot(bhh[2 * H + j], h, b, whh, 2 * H + j)
        _, _, _, hj = gru_fwd(ar, az, xn, hn_, h[b, j])
        hn[b, j] = hj


@cuda.jit
def _gru_v1_gates(x, wih, whh, bias, h, z, rh):
    """GRU with the reset gate before the product, first half: the update gate ``z`` and the
    candidate's product input ``r * h`` of every unit (``bias`` the sum of both biases)."""
    b, j, inside = dev.unit(h.shape[0], h.shape[1])
    if inside:
        H = h.shape[1]
        _, zj, rhj = gru_v1_gates(_pre(x, h, wih, whh, bias, b, j),
                                  _pre(x, h, wih, whh, bias, b, H + j), h[b, j])
        z[b, j] = zj
        rh[b, j] = rhj


@cuda.jit
def _gru_v1_state(x, wih, whh, bias, h, z, rh, hn):
    """Second half: the candidate ``tanh(W_in x + W_hn (r * h) + b_in + b_hn)`` and the state."""
    b, j, inside = dev.unit(hn.shape[0], hn.shape[1])
    if inside:
        col = 2 * hn.shape[1] + j
        _, hj = gru_v1_state(_pre(x, rh, wih, whh, bias, b, col), z[b, j], h[b, j])
        hn[b, j] = hj


@cuda.jit
def _minimal_step(x, wih, bias, cand, lstm, h, hn):
    """minGRU (``lstm`` False; blocks z, candidate) or minLSTM (blocks f, i, candidate):
    ``h' = a h + c`` with the coefficients from the input alone."""
    b, j, inside = dev.unit(hn.shape[0], hn.shape[1])
    if inside:
        H = hn.shape[1]
        p0 = _dot(bias[j], x, b, wih, j)
        p1 = _dot(bias[H + j], x, b, wih, H + j)
        if lstm:
            a, c = minlstm_ab(p0, p1, _dot(bias[2 * H + j], x, b, wih, 2 * H + j), cand)
        else:
            a, c = mingru_ab(p0, p1, cand)
        hn[b, j] = a * h[b, j] + c


@cuda.jit
def _indrnn_step(x, wih, u, bias, relu, h, hn):
    """IndRNN: ``h' = phi(W_ih x + b_ih + b_hh + u * h)`` (``u`` (H,), ``bias`` the sum)."""
    b, j, inside = dev.unit(hn.shape[0], hn.shape[1])
    if inside:
        hn[b, j] = rnn_act(_dot(bias[j], x, b, wih, j) + u[j] * h[b, j], relu)


# ---------------------------------------------------------------------------- host side
def _layer_arrays(spec, params, layer):
    """The device layout of one layer's weights, as host arrays, for :func:`_pack`:
    ``(wih^T, recurrent, bias1, bias2, peep)``, ``None`` where the cell has none."""
    kind, H, sfx = spec.kind, spec.hidden_size, f"_l{layer}"
    w_ih = params["weight_ih" + sfx]
    b_ih = params["bias_ih" + sfx]
    w_hh = params.get("weight_hh" + sfx)
    b_hh = params.get("bias_hh" + sfx)
    if kind in ("mingru", "minlstm"):
        return w_ih.T, None, b_ih, None, None
    if kind == "indrnn":
        return w_ih.T, w_hh, b_ih + b_hh, None, None
    if kind == "gru":
        return w_ih.T, w_hh.T, b_ih, b_hh, None
    peep = None
    if kind == "lstm":
        peep = params.get("weight_peephole" + sfx)
        peep = np.zeros((3, H), spec.dtype) if peep is None else peep
    return w_ih.T, w_hh.T, b_ih + b_hh, None, peep


def _param_names(spec, params):
    """The names of the parameters the step reads (those of the cell, every layer)."""
    stems = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole")
    return [s + f"_l{layer}" for layer in range(spec.num_layers) for s in stems
            if s + f"_l{layer}" in params]


def _same_bits(a, b):
    """Whether ``a`` has the shape, dtype and bytes of the C-contiguous ``b`` (compared as unsigned
    integers of the item size: ``-0.0`` differs from ``0.0`` and a NaN equals itself)."""
    a = np.ascontiguousarray(a)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    bits = np.dtype(f"u{a.dtype.itemsize}") if a.dtype.itemsize in (1, 2, 4, 8) else np.uint8
    return np.array_equal(a.reshape(-1).view(bits), b.reshape(-1).view(bits))


class Stepper:
    """The bound step of :func:`stream` (see the module docstring); ``step()`` returns ``False``,
    changing nothing, when ``state.x`` holds a non-finite value."""

    def __init__(self, spec, params, state):
        self.spec, self.params, self.state = spec, params, state
        L, H, B, dt = spec.num_layers, spec.hidden_size, state.batch_size, spec.dtype
        self.names = _param_names(spec, params)
        self.snapshot = None
        self.d_w = None
        self._upload_weights()
        self.d_x = dev.empty((B, spec.input_size), dt)
        self.hbuf = dev.empty((2, L, B, H), dt)
        self.cbuf = dev.empty((2, L, B, H), dt) if spec.kind == "lstm" else None
        self.zero_state()
        scratch = (dev.empty((B, H), dt), dev.empty((B, H), dt)) if spec.kind == "gru_v1" else ()
        # the launches of a step for each of the two state copies it may read (index: the copy)
        self.launches = [self._launches(cur, scratch) for cur in (0, 1)]
        self.out = [self.hbuf[1 - cur, L - 1] for cur in (0, 1)]
        self.cur = 0
        state._bind(self)

    # -------------------------------------------------------------- weights
    def _upload_weights(self):
        """Pack every layer's weights (device layout), keep a host copy of the parameters they
        came from, and upload them: into the existing device buffer after the first time."""
        spec, params = self.spec, self.params
        arrays = [a for layer in range(spec.num_layers)
                  for a in _layer_arrays(spec, params, layer)]
        flat, spans = _pack(arrays, spec.dtype)
        self.snapshot = [np.array(params[n], copy=True) for n in self.names]
        if self.d_w is None or self.d_w.shape != flat.shape:
            self.d_w = dev.upload(flat)
            views = _views(self.d_w, spans)
            self.weights = [tuple(views[5 * k:5 * (k + 1)]) for k in range(spec.num_layers)]
        else:
            dev.upload(flat, self.d_w)

    def weights_changed(self):
        """Whether any parameter differs (bit for bit) from the copy taken at the last upload."""
        return not all(_same_bits(self.params[name], old)
                       for name, old in zip(self.names, self.snapshot))

    # -------------------------------------------------------------- launches
    def _launches(self, cur, scratch):
        """``[(configured kernel, args), ...]`` of a step that reads state copy ``cur``."""
        spec = self.spec
        L, B, H = spec.num_layers, self.state.batch_size, spec.hidden_size
        grid, block = dev.grid2(B, H)
        nxt = 1 - cur
        out = []
        for layer in range(L):
            x = self.d_x if layer == 0 else self.hbuf[nxt, layer - 1]
            wih, rec, b1, b2, peep = self.weights[layer]
            h, hn = self.hbuf[cur, layer], self.hbuf[nxt, layer]
            kind = spec.kind
            if kind == "rnn":
                out.append((_rnn_step, (x, wih, rec, b1, bool(spec.relu), h, hn)))
            elif kind == "lstm":
                on = tuple(bool(g) for g in spec.gates_on)
                out.append((_lstm_step, (x, wih, rec, b1, peep, *on, h, self.cbuf[cur, layer],
                                         hn, self.cbuf[nxt, layer])))
            elif kind == "gru":
                out.append((_gru_step, (x, wih, rec, b1, b2, h, hn)))
            elif kind == "gru_v1":
                z, rh = scratch
                out.append((_gru_v1_gates, (x, wih, rec, b1, h, z, rh)))
                out.append((_gru_v1_state, (x, wih, rec, b1, h, z, rh, hn)))
            elif kind in ("mingru", "minlstm"):
                out.append((_minimal_step, (x, wih, b1, bool(spec.cand), kind == "minlstm", h,
                                            hn)))
            else:
                out.append((_indrnn_step, (x, wih, rec, b1, bool(spec.relu), h, hn)))
        return [(kernel[grid, block], args) for kernel, args in out]

    # -------------------------------------------------------------- the state
    def zero_state(self):
        """Set ``h`` (and ``c``) of every layer to zero on the device (no copy)."""
        L, B, H = self.hbuf.shape[1:]
        for buf in (self.hbuf, self.cbuf):
            if buf is not None and B * H:
                dev.launch(_zero2, 2 * L * B, H, buf.reshape((2 * L * B, H)))

    def _pairs(self, h, c):
        pairs = [("h", h, self.hbuf[self.cur])]
        if self.cbuf is not None:
            pairs.append(("c", c, self.cbuf[self.cur]))
        return pairs

    def download_state(self, h, c):
        """Copy the current ``h`` (and ``c``) of every layer into the host arrays."""
        for _, host, d in self._pairs(h, c):
            if host.flags.c_contiguous and host.dtype == d.dtype:
                dev.download(d, host)
            else:
                host[...] = dev.download(d, np.empty(d.shape, d.dtype))

    def upload_state(self, h, c):
        """Copy the host arrays ``h`` (and ``c``) into the current device state."""
        for name, host, d in self._pairs(h, c):
            a = np.asarray(host)
            if a.shape != d.shape:
                raise ValueError(
                    f"state.{name} must have shape {d.shape} (num_layers, batch_size, "
                    f"hidden_size), got {a.shape}. Write into it (state.{name}[...] = values) "
                    "instead of replacing it with an array of another shape.")
            dev.upload(np.ascontiguousarray(a, dtype=d.dtype), d)

    # -------------------------------------------------------------- the step
    def __call__(self):
        s = self.state
        if not np.all(np.isfinite(s.x)):
            return False
        if self.weights_changed():
            self._upload_weights()
        s.before_device_step()
        dev.upload(s.x, self.d_x)
        cur = self.cur
        for kernel, args in self.launches[cur]:
            kernel(*args)
        dev.download(self.out[cur], s.out)
        self.cur = 1 - cur
        s.after_device_step()
        return True


def stream(spec, params, state):
    """Bind the device step of a unidirectional layer of ``spec`` over ``state`` (a
    :class:`fastrnn.nn.streaming.DeviceStreamState`), uploading the weights."""
    if spec.num_directions != 1:
        raise ValueError("cuda stream: a bidirectional layer cannot run step by step.")
    return Stepper(spec, params, state)
