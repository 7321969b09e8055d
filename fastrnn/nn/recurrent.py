"""Recurrent layers: :class:`RNN`, :class:`LSTM` and :class:`GRU`.

A layer owns its parameters, gradients and caches, stacks ``num_layers`` layers of one or two directions,
and calls the kernels of its backend for the recurrent loop. The large products (the input projection of
all steps, and in the backward the weight and input gradients) are single BLAS calls here; only the
recurrence ``h_{t-1} W_hh^T`` runs inside a kernel (DESIGN §1).

Inside, the batch is sorted by length (longest first) and made time-major, so that at step ``t`` the
sequences still running are the first ``batch_sizes[t]`` rows; the reverse direction reads each sequence
from its own last real step back to its first.
"""

import numpy as np

import functools

from .._backend import get_backend, has_backend, one_blas_thread, resolve_name
from .._config import check_dtype, env_backend
from . import _fast
from . import init as _init
from ._checks import as_batch, as_lengths, as_state, check_finite_steps, check_state_dict
from .streaming import StreamingMixin

__all__ = ["RNN", "LSTM", "GRU"]


def _single_blas_thread(method):
    """Run a layer method with BLAS on one thread (see :func:`fastrnn._backend.one_blas_thread`)."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        with one_blas_thread():
            return method(self, *args, **kwargs)

    return call


class _Recurrent(StreamingMixin):
    """Shared machinery of the recurrent layers (see :class:`LSTM` for the parameters)."""

    #: number of gate blocks stacked in the weight matrices
    G = 1
    #: whether the layer has a cell state (LSTM)
    has_cell = False

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, dropout=0.0,
                 recurrent_dropout=0.0, dtype=np.float32, backend="auto", random_state=None,
                 init="default"):
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        for name, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not (0.0 <= float(v) < 1.0):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}.")
        if init not in ("default", "pytorch", "irnn"):
            raise ValueError(f"init must be 'default', 'pytorch' or 'irnn', got {init!r}.")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.dtype = check_dtype(dtype)
        self.backend = resolve_name(backend)
        #: "auto" may pick another backend per call shape (streaming steps prefer Cython)
        self.auto_backend = backend in (None, "auto") and env_backend() is None
        self.init = init
        self.training = True
        self.rng_ = _init.check_random_state(random_state)
        self.params = {}
        self._build()
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.grad_h0 = None
        self._cache = None

    # ------------------------------------------------------------------ parameters
    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def _units(self):
        """``(layer, direction, suffix, input size)`` of every layer-direction, in PyTorch's order."""
        D = self.num_directions
        for layer in range(self.num_layers):
            size = self.input_size if layer == 0 else D * self.hidden_size
            for d in range(D):
                yield layer, d, f"_l{layer}" + ("_reverse" if d else ""), size

    def _build(self):
        H, G, rng, dt = self.hidden_size, self.G, self.rng_, self.dtype
        for _, _, sfx, size in self._units():
            if self.init == "pytorch":
                bound = 1.0 / np.sqrt(H)
                w_ih = _init.uniform((G * H, size), rng, dt, bound)
                w_hh = _init.uniform((G * H, H), rng, dt, bound)
                b_ih = _init.uniform((G * H,), rng, dt, bound)
                b_hh = _init.uniform((G * H,), rng, dt, bound)
            else:
                w_ih = _init.glorot_uniform((G * H, size), rng, dt)
                make = _init.identity if self.init == "irnn" else _init.orthogonal
                w_hh = np.concatenate([make((H, H), rng, dt) for _ in range(G)])
                b_ih = np.zeros(G * H, dt)
                b_hh = np.zeros(G * H, dt)
            self.params["weight_ih" + sfx] = w_ih
            self.params["weight_hh" + sfx] = w_hh
            self.params["bias_ih" + sfx] = b_ih
            self.params["bias_hh" + sfx] = b_hh
            self._build_extra(sfx)

    def _build_extra(self, sfx):
        """Hook for cell-specific parameters and bias conventions."""

    def state_dict(self):
        """Copies of all parameters, keyed by PyTorch names (``weight_ih_l0``, ...)."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Load parameters from a mapping of PyTorch names to anything ``np.asarray`` accepts
        (a ``torch.nn.LSTM``'s ``state_dict()`` converted with ``.numpy()`` works as it is).

        The arrays are copied into the existing parameter arrays, so optimisers holding references
        keep working. Missing or unexpected keys, wrong shapes and values that are not finite real
        numbers raise ``ValueError``; a ``state`` that is not a mapping raises ``TypeError``.
        """
        values = check_state_dict(state, self.params, "layer", "Build the layer with the same "
                                  "cell, sizes, num_layers and bidirectional.")
        for k, v in values.items():
            self.params[k][...] = v

    def train(self, mode=True):
        """Switch dropout on (``mode=True``) or off; returns the layer."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Switch dropout off (inference); returns the layer."""
        return self.train(False)

    # ------------------------------------------------------------------ forward
    @_single_blas_thread
    def forward(self, X, lengths=None, h0=None):
        """Run the network over a padded batch.

        Parameters
        ----------
        X : array-like of shape (B, T, input_size)
            Batch-first input. Values past each sequence's length are ignored (they may be anything,
            NaN included).
        lengths : array-like of shape (B,), optional
            Number of real steps of each sequence, ``1 <= lengths[b] <= T``; default all ``T``.
        h0 : array-like of shape (num_layers * num_directions, B, hidden_size), optional
            Initial hidden state (zeros by default). For an LSTM a pair ``(h0, c0)`` of that shape.

        Returns
        -------
        Y : ndarray of shape (B, T, num_directions * hidden_size)
            Outputs of the last layer, zero past each sequence's length.
        h_n : ndarray of shape (num_layers * num_directions, B, hidden_size)
            State at each sequence's last real step (reverse direction: at its first step).
            For an LSTM a pair ``(h_n, c_n)``.
        """
        given, X = X, as_batch(X, self.input_size, self.dtype)
        B, T, _ = X.shape
        lengths = as_lengths(lengths, B, T)
        check_finite_steps(X, lengths, source=given)
        h0, c0 = self._initial_state(h0, B)
        name = self._call_backend(B)
        bk = get_backend(name)
        if name == self.backend and _fast.applies(self):
            Y, hn, cn = _fast.forward(self, X, lengths, h0, c0)
            return Y, ((hn, cn) if self.has_cell else hn)

        order = np.argsort(-lengths, kind="stable")
        Ls = lengths[order]
        Tm = int(Ls[0])
        steps = np.arange(Tm)
        batch_sizes = (Ls[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)
        real = steps[:, None] < Ls[None, :]  # (Tm, B)
        # per sequence time reversal within its own length (its own inverse)
        rev = np.where(real, Ls[None, :] - 1 - steps[:, None], steps[:, None])
        cols = np.arange(B)[None, :]

        inp = np.ascontiguousarray(X[order, :Tm].transpose(1, 0, 2))
        inp[~real] = 0.0
        cache = dict(order=order, B=B, T=T, Tm=Tm, batch_sizes=batch_sizes, real=real, rev=rev,
                     units=[], drop=[], backend=name)
        D, H = self.num_directions, self.hidden_size
        if name == "cuda":  # the whole call on the device (issue #9)
            return self._cuda_forward(inp, Ls, h0, c0, cache)
        hn = np.empty((self.num_layers * D, B, H), self.dtype)
        cn = np.empty_like(hn) if self.has_cell else None
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                x = np.ascontiguousarray(inp[rev, cols]) if d else inp
                hmask = self._recurrent_mask(B)
                unit = self._unit_forward(bk, sfx, x, h0[k][order],
                                          None if c0 is None else c0[k][order], batch_sizes, hmask)
                unit.update(sfx=sfx, x=x, hmask=hmask)
                cache["units"].append(unit)
                y = unit["hs"][1:] * real[:, :, None]
                outs.append(y[rev, cols] if d else y)
                hn[k][order] = unit["hs"][Tm]
                if self.has_cell:
                    cn[k][order] = unit["cs"][Tm]
            inp = np.concatenate(outs, axis=2) if D == 2 else outs[0]
            if layer < self.num_layers - 1 and self.training and self.dropout > 0:
                keep = 1.0 - self.dropout
                mask = (self.rng_.random_sample(inp.shape) < keep).astype(self.dtype) / keep
                inp = inp * mask
                cache["drop"].append(mask)
            else:
                cache["drop"].append(None)
            inp = np.ascontiguousarray(inp)
        Y = np.zeros((B, T, D * H), self.dtype)
        Y[order, :Tm] = inp.transpose(1, 0, 2)
        self._cache = cache
        return Y, ((hn, cn) if self.has_cell else hn)

    __call__ = forward

    def _call_backend(self, B):
        """Backend of one :meth:`forward` call. With ``backend="auto"``, inference on a single
        sequence runs on the Cython backend when it is built: at batch 1 the call overhead
        decides and it has the least, and a fresh process predicts without loading Numba's
        compiled kernels (see :doc:`/backends`)."""
        if self.auto_backend and not self.training and B == 1 and has_backend("cython"):
            return "cython"
        return self.backend

    def _initial_state(self, h0, B, name="h0"):
        """``h0`` (or a gradient ``dh_n``, with ``name``) checked: zeros for None, else exactly
        ``(num_layers * num_directions, B, hidden_size)``; an LSTM takes a pair."""
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        if h0 is None:
            zeros = np.zeros(shape, self.dtype)
            return zeros, (zeros if self.has_cell else None)
        if self.has_cell:
            cname = name.replace("h", "c", 1)
            if not isinstance(h0, (tuple, list)) or len(h0) != 2:
                raise ValueError(
                    f"an LSTM's {name} must be a pair ({name}, {cname}), got {type(h0).__name__}. "
                    f"Pass {name}=({name}, {cname}) with both of shape {shape}."
                )
            return (as_state(h0[0], shape, self.dtype, name),
                    as_state(h0[1], shape, self.dtype, cname))
        return as_state(h0, shape, self.dtype, name), None

    def _recurrent_mask(self, B):
        if not (self.training and self.recurrent_dropout > 0):
            return None
        keep = 1.0 - self.recurrent_dropout
        m = self.rng_.random_sample((B, self.hidden_size)) < keep
        return np.ascontiguousarray(m.astype(self.dtype) / keep)

    # ------------------------------------------------------------------ backward
    @_single_blas_thread
    def backward(self, dY, dh_n=None):
        """Back-propagate through the last :meth:`forward`.

        Parameters
        ----------
        dY : array-like of shape (B, T, num_directions * hidden_size)
            Gradient of the loss with respect to ``Y`` (values past each length are ignored).
        dh_n : array-like of shape (num_layers * num_directions, B, hidden_size), optional
            Gradient with respect to ``h_n`` (an LSTM takes a pair for ``(h_n, c_n)``).

        Returns
        -------
        dX : ndarray of shape (B, T, input_size)
            Gradient with respect to the input (zero past each length).

        Notes
        -----
        ``self.grads`` is overwritten with the gradients of every parameter (summed over the steps,
        as back-propagation through time prescribes) and ``self.grad_h0`` with the gradient of the
        initial state (a pair for an LSTM).
        """
        c = self._cache
        if c is None:
            raise ValueError("backward() needs the cache of a forward(); call forward(X) first.")
        B, T, Tm, order, real, rev = c["B"], c["T"], c["Tm"], c["order"], c["real"], c["rev"]
        D, H, L = self.num_directions, self.hidden_size, self.num_layers
        dY = np.asarray(dY)
        if dY.shape != (B, T, D * H):
            raise ValueError(f"dY must have the shape of Y, {(B, T, D * H)}, got {dY.shape}.")
        dhn, dcn = self._initial_state(dh_n, B, "dh_n")
        if c.get("fast"):
            dX, dh0, dc0 = _fast.backward(self, dY, dhn, dcn)
            self.grad_h0 = (dh0, dc0) if self.has_cell else dh0
            return dX
        if c.get("cuda") is not None:  # the whole call on the device (issue #9)
            return self._cuda_backward(dY, dhn, dcn, c)
        bk = get_backend(c["backend"])
        cols = np.arange(B)[None, :]
        dout = np.ascontiguousarray(dY[order, :Tm].transpose(1, 0, 2), dtype=self.dtype)
        dout[~real] = 0.0
        dh0 = np.empty((L * D, B, H), self.dtype)
        dc0 = np.empty_like(dh0) if self.has_cell else None
        for layer in range(L - 1, -1, -1):
            if c["drop"][layer] is not None:
                dout = dout * c["drop"][layer]
            dinp = None
            for d in range(D):
                k = layer * D + d
                unit = c["units"][k]
                dy = dout[:, :, d * H:(d + 1) * H]
                dy = np.ascontiguousarray(dy[rev, cols] if d else dy)
                dh = np.ascontiguousarray(dhn[k][order])
                dc = None if dcn is None else np.ascontiguousarray(dcn[k][order])
                dx = self._unit_backward(bk, unit, dy, dh, dc, c["batch_sizes"])
                dh0[k][order] = dh
                if self.has_cell:
                    dc0[k][order] = dc
                if d:
                    dx = dx[rev, cols]
                dinp = dx if dinp is None else dinp + dx
            dout = dinp
        dX = np.zeros((B, T, self.input_size), self.dtype)
        dX[order, :Tm] = dout.transpose(1, 0, 2)
        self.grad_h0 = (dh0, dc0) if self.has_cell else dh0
        return dX

    # ------------------------------------------------------------------ cuda backend (issue #9)
    # With backend "cuda" a whole forward (every layer and direction) and a whole backward run on
    # the GPU in fastrnn.kernels.cuda._stack, with one copy each way per call; the layer only
    # sorts the batch, draws the dropout masks (in the order of the loop in forward(), so a seed
    # gives the same masks on every backend) and scatters the results back.
    _CUDA_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole")

    def _cuda_cell(self):
        """The driver's cell name and options."""
        if self.has_cell:
            return "lstm", dict(gates_on=tuple(int(g) for g in self.gates_on))
        if self.G == 3:
            return ("gru" if self.reset_after else "gru_v1"), {}
        return "rnn", dict(relu=self.nonlinearity == "relu")

    def _cuda_forward(self, inp, Ls, h0, c0, cache):
        stack = get_backend("cuda")
        order, B, Tm = cache["order"], cache["B"], cache["Tm"]
        D, H, L = self.num_directions, self.hidden_size, self.num_layers
        hmasks, drops = [], []
        for layer in range(L):
            hmasks += [self._recurrent_mask(B) for _ in range(D)]
            drop = None
            if layer < L - 1 and self.training and self.dropout > 0:
                keep = 1.0 - self.dropout
                drop = (self.rng_.random_sample((Tm, B, D * H)) < keep).astype(self.dtype) / keep
            drops.append(drop)
        params = [tuple(self.params.get(n + sfx) for n in self._CUDA_PARAMS)
                  for _, _, sfx, _ in self._units()]
        cell, opts = self._cuda_cell()
        y, hn_s, cn_s, dev_cache = stack.stack_forward(
            cell, params, inp, Ls, cache["batch_sizes"], h0[:, order],
            None if c0 is None else c0[:, order], hmasks, drops, num_directions=D, **opts)
        Y = np.zeros((B, cache["T"], D * H), self.dtype)
        Y[order, :Tm] = y.transpose(1, 0, 2)
        hn = np.empty((L * D, B, H), self.dtype)
        hn[:, order] = hn_s
        if self.has_cell:
            cn = np.empty_like(hn)
            cn[:, order] = cn_s
        cache["cuda"] = dev_cache
        self._cache = cache
        return Y, ((hn, cn) if self.has_cell else hn)

    def _cuda_backward(self, dY, dhn, dcn, c):
        stack = get_backend("cuda")
        order, real, Tm, B = c["order"], c["real"], c["Tm"], c["B"]
        dout = np.ascontiguousarray(dY[order, :Tm].transpose(1, 0, 2), dtype=self.dtype)
        dout[~real] = 0.0
        dx, dh0_s, dc0_s, grads = stack.stack_backward(
            c["cuda"], dout, dhn[:, order], None if dcn is None else dcn[:, order])
        for (_, _, sfx, _), unit_grads in zip(self._units(), grads):
            for name, g in zip(self._CUDA_PARAMS, unit_grads):
                if g is not None:
                    self.grads[name + sfx][...] = g
        dX = np.zeros((B, c["T"], self.input_size), self.dtype)
        dX[order, :Tm] = dx.transpose(1, 0, 2)
        dh0 = np.empty(dhn.shape, self.dtype)
        dh0[:, order] = dh0_s
        if self.has_cell:
            dc0 = np.empty_like(dh0)
            dc0[:, order] = dc0_s
        self.grad_h0 = (dh0, dc0) if self.has_cell else dh0
        return dX

    # helpers for the cell-specific parts --------------------------------------------------
    def _project(self, x, sfx, rec_bias=True):
        """Input projection of all steps at once: ``x W_ih^T + b_ih (+ b_hh)``, shape (T, B, G*H)."""
        Tm, B, size = x.shape
        p = self.params
        xp = x.reshape(Tm * B, size) @ p["weight_ih" + sfx].T
        xp += p["bias_ih" + sfx]
        if rec_bias:
            xp += p["bias_hh" + sfx]
        return xp.reshape(Tm, B, -1)

    def _input_grads(self, unit, dxp, dhp, hin_prev, rec_bias=True):
        """Weight, bias and input gradients from the pre-activation gradients (one GEMM each).

        ``dxp`` (T, B, G*H) are the gradients of the input projections, ``dhp`` those of the recurrent
        products whose input was ``hin_prev`` (T, B, H). Returns the input gradient (T, B, size).
        """
        sfx, x = unit["sfx"], unit["x"]
        Tm, B, size = x.shape
        GH = dxp.shape[2]
        g, p = self.grads, self.params
        dxp2 = dxp.reshape(Tm * B, GH)
        np.dot(dxp2.T, x.reshape(Tm * B, size), out=g["weight_ih" + sfx])
        np.sum(dxp2, axis=0, out=g["bias_ih" + sfx])
        if dhp is not None:
            dhp2 = dhp.reshape(Tm * B, GH)
            np.dot(dhp2.T, hin_prev.reshape(Tm * B, -1), out=g["weight_hh" + sfx])
            if rec_bias:
                np.sum(dhp2, axis=0, out=g["bias_hh" + sfx])
        return (dxp2 @ p["weight_ih" + sfx]).reshape(Tm, B, size)

    @staticmethod
    def _hin_prev(unit):
        """The recurrent products' input at every step: ``h_{t-1}``, masked by recurrent dropout."""
        hprev = unit["hs"][:-1]
        return hprev * unit["hmask"] if unit["hmask"] is not None else hprev

    @staticmethod
    def _mask_args(hmask, dtype):
        if hmask is None:
            return np.zeros((0, 0), dtype), False
        return hmask, True

    def __repr__(self):
        args = [f"{self.input_size}", f"{self.hidden_size}"]
        if self.num_layers != 1:
            args.append(f"num_layers={self.num_layers}")
        if self.bidirectional:
            args.append("bidirectional=True")
        args.append(f"dtype={self.dtype.name}")
        args.append(f"backend={self.backend!r}")
        return f"{type(self).__name__}({', '.join(args)})"


class RNN(_Recurrent):
    r"""Simple (Elman) recurrent layer.

    .. math:: h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    Parameters
    ----------
    input_size, hidden_size : int
    num_layers : int, default 1
    nonlinearity : {"tanh", "relu"}, default "tanh"
        ``"relu"`` with ``init="irnn"`` gives the IRNN of Le, Jaitly & Hinton (2015).
    bidirectional : bool, default False
    dropout, recurrent_dropout : float, default 0
        See :class:`LSTM`.
    dtype : {np.float32, np.float64}
    backend : {"auto", "numba", "cython", "cuda", "numpy"}
    random_state : int, RandomState or None
    init : {"default", "pytorch", "irnn"}

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import RNN
    >>> rnn = RNN(3, 5, random_state=0)
    >>> Y, h_n = rnn.forward(np.ones((2, 4, 3)), lengths=[4, 2])
    >>> Y.shape, h_n.shape
    ((2, 4, 5), (1, 2, 5))
    """

    G = 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}.")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _unit_forward(self, bk, sfx, x, h0, c0, batch_sizes, hmask):
        Tm, B, _ = x.shape
        H = self.hidden_size
        xp = self._project(x, sfx)
        hs = np.empty((Tm + 1, B, H), self.dtype)
        hs[0] = h0
        m, use = self._mask_args(hmask, self.dtype)
        whh_t = np.ascontiguousarray(self.params["weight_hh" + sfx].T)
        bk.rnn_forward(xp, whh_t, batch_sizes, m, use, self.nonlinearity == "relu", hs,
                       np.empty((B, H), self.dtype), np.empty((B, H), self.dtype))
        return dict(hs=hs)

    def _unit_backward(self, bk, unit, dy, dh, dc, batch_sizes):
        dgates = np.empty_like(dy)
        m, use = self._mask_args(unit["hmask"], self.dtype)
        bk.rnn_backward(dy, unit["hs"], self.params["weight_hh" + unit["sfx"]], batch_sizes, m, use,
                        self.nonlinearity == "relu", dgates, dh)
        return self._input_grads(unit, dgates, dgates, self._hin_prev(unit))


class LSTM(_Recurrent):
    r"""Long short-term memory layer (Hochreiter & Schmidhuber 1997; forget gate of Gers et al. 2000).

    .. math::

        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t)

    Parameters
    ----------
    input_size : int
        Features per step of the input.
    hidden_size : int
        Size ``H`` of the hidden and cell state.
    num_layers : int, default 1
        Stacked layers; layer ``k``'s outputs are layer ``k+1``'s inputs.
    bidirectional : bool, default False
        Add a reverse direction with its own weights; outputs are concatenated (size ``2H``).
    dropout : float, default 0
        Inverted dropout on the outputs of every layer but the last, in training mode only.
    recurrent_dropout : float, default 0
        Variational dropout (Gal & Ghahramani 2016) on ``h_{t-1}`` where it enters the recurrent
        product: one mask per sequence and layer for all steps, training mode only.
    forget_bias : float, default 1.0
        Initial value of the forget-gate part of ``bias_ih`` (``bias_hh`` starts at 0), so a fresh
        LSTM keeps its memory.
    peephole : bool, default False
        Diagonal peephole connections: ``w_ci ⊙ c_{t-1}`` in i, ``w_cf ⊙ c_{t-1}`` in f and
        ``w_co ⊙ c_t`` in o, stored as ``weight_peephole_l{k}`` of shape ``(3, H)``.
    input_gate, forget_gate, output_gate : bool, default True
        ``False`` removes that gate (fixed at 1), as in the gate ablations of Greff et al. (2017).
    dtype : {np.float32, np.float64}, default np.float32
        Dtype of parameters, outputs and gradients.
    backend : {"auto", "numba", "cython", "cuda", "numpy"}, default "auto"
    random_state : int, RandomState or None
        Seeds the initialisation and the dropout masks.
    init : {"default", "pytorch", "irnn"}, default "default"
        ``"default"``: Glorot-uniform input weights, orthogonal recurrent blocks, zero biases.
        ``"pytorch"``: uniform on ``±1/sqrt(H)`` for every parameter.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        Parameters and their gradients keyed by PyTorch names, in PyTorch shapes and gate order
        (i, f, g, o): ``weight_ih_l0`` (4H, input_size), ``weight_hh_l0`` (4H, H), ``bias_ih_l0``,
        ``bias_hh_l0`` (4H,), and ``..._reverse`` for the reverse direction.
    grad_h0 : pair of ndarray of shape (num_layers * num_directions, B, H)
        Gradients of ``(h0, c0)`` after :meth:`backward`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import LSTM
    >>> lstm = LSTM(3, 4, dtype=np.float64, random_state=0)
    >>> Y, (h_n, c_n) = lstm.forward(np.ones((2, 5, 3)), lengths=[5, 3])
    >>> bool(np.all(Y[1, 3:] == 0)), bool(np.allclose(h_n[0, 1], Y[1, 2]))
    (True, True)
    >>> dX = lstm.backward(np.ones_like(Y))
    >>> dX.shape, lstm.grads["weight_hh_l0"].shape
    ((2, 5, 3), (16, 4))
    """

    G = 4
    has_cell = True

    def __init__(self, input_size, hidden_size, num_layers=1, forget_bias=1.0, peephole=False,
                 input_gate=True, forget_gate=True, output_gate=True, **kwargs):
        self.forget_bias = float(forget_bias)
        self.peephole = bool(peephole)
        self.gates_on = np.array([input_gate, forget_gate, output_gate], dtype=np.int64)
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _build_extra(self, sfx):
        H = self.hidden_size
        if self.init != "pytorch":
            self.params["bias_ih" + sfx][H:2 * H] = self.forget_bias
        if self.peephole:
            self.params["weight_peephole" + sfx] = np.zeros((3, H), self.dtype)

    def _peep(self, sfx):
        p = self.params.get("weight_peephole" + sfx)
        return p if p is not None else np.zeros((3, self.hidden_size), self.dtype)

    def _unit_forward(self, bk, sfx, x, h0, c0, batch_sizes, hmask):
        Tm, B, _ = x.shape
        H = self.hidden_size
        xp = self._project(x, sfx)
        hs = np.empty((Tm + 1, B, H), self.dtype)
        cs = np.empty_like(hs)
        hs[0], cs[0] = h0, c0
        acts = np.empty((Tm, B, 4 * H), self.dtype)
        m, use = self._mask_args(hmask, self.dtype)
        whh_t = np.ascontiguousarray(self.params["weight_hh" + sfx].T)
        bk.lstm_forward(xp, whh_t, batch_sizes, m, use, self._peep(sfx), self.gates_on, hs, cs, acts,
                        np.empty((B, H), self.dtype), np.empty((B, 4 * H), self.dtype))
        return dict(hs=hs, cs=cs, acts=acts)

    def _unit_backward(self, bk, unit, dy, dh, dc, batch_sizes):
        sfx = unit["sfx"]
        Tm, B, H = dy.shape
        dgates = np.empty((Tm, B, 4 * H), self.dtype)
        dpeep = np.zeros((3, H), self.dtype)
        m, use = self._mask_args(unit["hmask"], self.dtype)
        bk.lstm_backward(dy, unit["cs"], unit["acts"], self.params["weight_hh" + sfx], batch_sizes,
                         m, use, self._peep(sfx), self.gates_on, dgates, dh, dc, dpeep)
        if self.peephole:
            self.grads["weight_peephole" + sfx][...] = dpeep
        return self._input_grads(unit, dgates, dgates, self._hin_prev(unit))


class GRU(_Recurrent):
    r"""Gated recurrent unit layer (Cho et al. 2014), gate order r, z, n.

    .. math::

        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Parameters
    ----------
    input_size, hidden_size, num_layers, bidirectional
        As for :class:`LSTM`.
    dropout, recurrent_dropout, dtype, backend, random_state, init
        As for :class:`LSTM`.
    reset_after : bool, default True
        ``True`` applies the reset gate after the recurrent product (PyTorch and cuDNN); ``False``
        gives the original form ``n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import GRU
    >>> gru = GRU(3, 4, bidirectional=True, random_state=0)
    >>> Y, h_n = gru.forward(np.ones((2, 5, 3)), lengths=[5, 2])
    >>> Y.shape, h_n.shape
    ((2, 5, 8), (2, 2, 4))
    """

    G = 3

    def __init__(self, input_size, hidden_size, num_layers=1, reset_after=True, **kwargs):
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _unit_forward(self, bk, sfx, x, h0, c0, batch_sizes, hmask):
        Tm, B, _ = x.shape
        H, dt = self.hidden_size, self.dtype
        w = self.params["weight_hh" + sfx]
        hs = np.empty((Tm + 1, B, H), dt)
        hs[0] = h0
        m, use = self._mask_args(hmask, dt)
        if self.reset_after:
            xp = self._project(x, sfx, rec_bias=False)
            acts = np.empty((Tm, B, 4 * H), dt)
            bk.gru_forward(xp, np.ascontiguousarray(w.T), self.params["bias_hh" + sfx], batch_sizes,
                           m, use, hs, acts, np.empty((B, H), dt), np.empty((B, 3 * H), dt))
            return dict(hs=hs, acts=acts)
        xp = self._project(x, sfx)
        acts = np.empty((Tm, B, 3 * H), dt)
        rh = np.empty((Tm, B, H), dt)
        bk.gru_v1_forward(xp, np.ascontiguousarray(w[:2 * H].T), np.ascontiguousarray(w[2 * H:].T),
                          batch_sizes, m, use, hs, acts, rh, np.empty((B, H), dt),
                          np.empty((B, 2 * H), dt), np.empty((B, H), dt))
        return dict(hs=hs, acts=acts, rh=rh)

    def _unit_backward(self, bk, unit, dy, dh, dc, batch_sizes):
        sfx = unit["sfx"]
        Tm, B, H = dy.shape
        dt = self.dtype
        w = self.params["weight_hh" + sfx]
        m, use = self._mask_args(unit["hmask"], dt)
        if self.reset_after:
            dxp = np.empty((Tm, B, 3 * H), dt)
            dhp = np.empty_like(dxp)
            bk.gru_backward(dy, unit["hs"], unit["acts"], w, batch_sizes, m, use, dxp, dhp, dh,
                            np.empty((B, H), dt))
            return self._input_grads(unit, dxp, dhp, self._hin_prev(unit))
        dgates = np.empty((Tm, B, 3 * H), dt)
        scratch = [np.empty((B, k * H), dt) for k in (1, 2, 1, 1, 1)]
        bk.gru_v1_backward(dy, unit["hs"], unit["acts"], np.ascontiguousarray(w[:2 * H]),
                           np.ascontiguousarray(w[2 * H:]), batch_sizes, m, use, dgates, dh, *scratch)
        dx = self._input_grads(unit, dgates, None, None)
        g = self.grads["weight_hh" + sfx]
        d2 = dgates.reshape(Tm * B, 3 * H)
        np.dot(d2[:, :2 * H].T, self._hin_prev(unit).reshape(Tm * B, H), out=g[:2 * H])
        np.dot(d2[:, 2 * H:].T, unit["rh"].reshape(Tm * B, H), out=g[2 * H:])
        self.grads["bias_hh" + sfx][...] = self.grads["bias_ih" + sfx]
        return dx
