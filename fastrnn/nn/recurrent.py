"""Recurrent layers: :class:`RNN`, :class:`LSTM`, :class:`GRU`, and the cells with an
element-wise recurrence :class:`MinGRU`, :class:`MinLSTM` and :class:`IndRNN`.

A layer owns its parameters, gradients and the cache of its last forward, stacks ``num_layers`` layers
of one or two directions, and hands the arithmetic of a call to a backend (:mod:`fastrnn._backend`).
Before that the layer does, once for every backend: validate the input, sort the batch by length
(longest first; :class:`fastrnn.nn._plan.Plan`), and in training mode draw the dropout masks from its
random state in a fixed order, so that a seed gives the same masks (and results) on every backend.
"""

from collections import namedtuple
from numbers import Real

import numpy as np

from .._backend import check_name, check_supports, get_backend, one_blas_thread, route
from .. import _workspace
from .._config import check_dtype
from ._plan import padded_plan, unpadded_plan
from . import _skip
from . import init as _init
from ._checks import as_batch, as_lengths, as_state, check_finite_steps, check_state_dict
from .streaming import StreamingMixin

__all__ = ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "IndRNN", "CellSpec"]

#: What a backend needs to know of a layer besides its arrays (see :mod:`fastrnn._backend`).
#: ``kind`` is ``"rnn"``, ``"lstm"``, ``"gru"`` (reset gate after the recurrent product) or
#: ``"gru_v1"`` (before); ``G`` the number of gate blocks; ``units`` the parameter-name suffixes
#: of the layer-directions in PyTorch's order (``"_l0"``, ``"_l0_reverse"``, ``"_l1"``, ...);
#: ``gates_on`` the LSTM's input, forget and output gates switched on (int64 array of 3).
#: ``"mingru"``, ``"minlstm"`` and ``"indrnn"`` are the cells with an element-wise recurrence
#: (:class:`MinGRU`, :class:`MinLSTM`, :class:`IndRNN`; ``relu`` is IndRNN's activation);
#: ``cand`` whether a minimal cell's candidate goes through ``g`` (default False);
#: ``precision`` ``"float32"`` (default) or ``"bf16"`` (:mod:`fastrnn.kernels._bf16`).
CellSpec = namedtuple("CellSpec", ["kind", "G", "input_size", "hidden_size", "num_layers",
                                   "num_directions", "dtype", "relu", "peephole", "gates_on",
                                   "units", "cand", "precision"], defaults=(False, "float32"))

#: the ``precision`` argument of the layers
PRECISIONS = ("float32", "bf16")


def _check_precision(precision, name, kind, dtype, backend):
    """``precision`` checked for a layer of class ``name`` (see :class:`LSTM`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be 'float32' or 'bf16', got {precision!r}.")
    if precision == "float32":
        return precision
    from ..kernels import _bf16

    if kind not in _bf16.KINDS:
        raise ValueError(f"precision='bf16' is available for LSTM, GRU and RNN layers, not "
                         f"{name}; use precision='float32' for this cell.")
    if dtype != np.float32:
        raise ValueError(f"precision='bf16' trains a float32 layer with bf16 matrix products, got "
                         f"dtype={dtype.name}; pass dtype=np.float32 or precision='float32'.")
    if backend not in ("auto", "numba"):
        raise ValueError(f"precision='bf16' runs on the numba backend (its fast driver with the "
                         f"compiled bf16 product), got backend={backend!r}; pass backend='auto' "
                         "or 'numba', or precision='float32'.")
    _bf16.kernels()  # RuntimeError saying how to build it when the extension is missing
    return precision


def _blas_on_one_thread(bk, spec, entry, *args):
    """``entry(*args)``, an entry point of backend ``bk`` for a layer of ``spec``, with BLAS on one
    thread (:func:`fastrnn._backend.one_blas_thread`) when that call runs BLAS. Limiting the BLAS
    threads costs more than a one-step call of a small layer on the fast driver, which calls no
    BLAS."""
    if not bk.calls_blas(spec):
        return entry(*args)
    with one_blas_thread():
        return entry(*args)


class _Recurrent(StreamingMixin):
    """Shared machinery of the recurrent layers (see :class:`LSTM` for the parameters)."""

    #: number of gate blocks stacked in the weight matrices
    G = 1
    #: whether the layer has a cell state (LSTM)
    has_cell = False
    #: whether the layer has a recurrent weight that recurrent dropout can act on
    recurrent_weight = True
    #: ``"int8"`` after :meth:`quantize`, else None
    quantized_ = None
    _qarrays = None
    _qbound = None

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, dropout=0.0,
                 recurrent_dropout=0.0, dtype=np.float32, backend="auto", random_state=None,
                 init="default", skip=None, precision="float32"):
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
        #: the ``backend`` argument: "auto" or a backend's name (see :mod:`fastrnn._backend`)
        self.backend = check_name(backend)
        #: the backend that ran the last forward, infer or init_state (None before the first)
        self.last_backend_ = None
        self.init = init
        #: connections between the stacked layers (see :mod:`fastrnn.nn._skip`)
        self.skip = _skip.check_skip(skip)
        #: ``"float32"`` or ``"bf16"`` (mixed precision, see :class:`LSTM`)
        self.precision = _check_precision(precision, type(self).__name__, self._kind(),
                                          self.dtype, self.backend)
        self.training = True
        self.rng_ = _init.check_random_state(random_state)
        self.params = {}
        self._build()
        if self.skip is not None:  # drawn after the cell's, so skip=None draws what it did
            _skip.build(self.skip, self.params, self.input_size, self.num_directions
                        * self.hidden_size, self.num_layers, self.rng_, self.dtype)
        # on a cache line, as the products read them best (see fastrnn._workspace)
        self.params = {k: _workspace.aligned_copy(v) for k, v in self.params.items()}
        self.grads = {k: _workspace.aligned_zeros(v.shape, v.dtype) for k, v in self.params.items()}
        self.grad_h0 = None
        self._cache = None
        #: the large scratch arrays of the last backward, for the next one (see _workspace)
        self._scratch = None
        self._spec = CellSpec(
            kind=self._kind(), G=self.G, input_size=self.input_size, hidden_size=self.hidden_size,
            num_layers=self.num_layers, num_directions=self.num_directions, dtype=self.dtype,
            relu=getattr(self, "nonlinearity", "tanh") == "relu",
            peephole=bool(getattr(self, "peephole", False)),
            gates_on=getattr(self, "gates_on", np.ones(3, np.int64)),
            units=tuple(sfx for _, _, sfx, _ in self._units()),
            cand=getattr(self, "candidate", "identity") == "g", precision=self.precision)
        if self.backend != "auto":
            check_supports(self.backend, self._spec.kind, self.backend)

    def _kind(self):
        """The cell's name for the backends (see :class:`CellSpec`)."""
        return type(self).__name__.lower()

    # ------------------------------------------------------------------ parameters
    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def constraints(self):
        """The bound on the magnitude of each constrained parameter, ``{name: bound}`` (empty: the
        layer has no constraint). ``constrain()`` keeps them in ``[-bound, bound]``."""
        return {}

    def constrain(self):
        """Clip the constrained parameters into their bounds (see ``constraints()``), in place:
        :class:`~fastrnn.train.Trainer` calls it after every update."""
        for name, bound in self.constraints().items():
            np.clip(self.params[name], -bound, bound, out=self.params[name])

    def _units(self):
        """``(layer, direction, suffix, input size)`` of every layer-direction, in PyTorch's order."""
        D = self.num_directions
        for layer in range(self.num_layers):
            size = _skip.layer_input_size(self.skip, self.input_size, D * self.hidden_size, layer)
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

    @classmethod
    def from_torch(cls, module, **kwargs):
        """Build a layer holding the parameters of a PyTorch module (PyTorch is imported here).

        Parameters
        ----------
        module : torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
            Of this class's kind (``LSTM.from_torch`` takes a ``torch.nn.LSTM``). Its sizes,
            ``num_layers``, ``bidirectional``, ``dropout`` and (RNN) ``nonlinearity`` are copied;
            ``batch_first`` only changes PyTorch's input layout (fastrnn's layers are batch-first);
            ``bias=False`` gives zero biases. An LSTM with ``proj_size > 0`` is refused.
        **kwargs
            Other arguments of the layer (``backend``, ``random_state``, ``recurrent_dropout``,
            ``dtype``: by default float64 for a float64 module, float32 otherwise).

        Returns
        -------
        layer : RNN, LSTM or GRU
            In training mode, as a new layer is; its ``forward`` gives the module's outputs
            (``GRU`` with ``reset_after=True``, PyTorch's form).
        """
        from ._torch import layer_from_torch
        return layer_from_torch(cls, module, **kwargs)

    def train(self, mode=True):
        """Switch dropout on (``mode=True``) or off; returns the layer (off, it also lets go of
        the scratch memory kept from the last :meth:`backward`)."""
        self.training = bool(mode)
        if not self.training:
            self._scratch = None
        return self

    def eval(self):
        """Switch dropout off (inference); returns the layer."""
        return self.train(False)

    def quantize(self, precision="int8"):
        """Quantise the layer for inference, in place; returns the layer.

        ``"int8"``: ``weight_ih`` and ``weight_hh`` of every layer and direction are quantised
        to int8 per output row (symmetric, ``scale = max|w_row| / 127``); the input of each step
        and the state entering each recurrent product are quantised per vector when used; the
        products accumulate in int32 and the cell's mathematics stays float32. ``"bf16"``: the
        same weights and activations rounded to bfloat16, the products summed in float32
        (:mod:`fastrnn.nn._quant`). :meth:`infer` and :meth:`forward` in evaluation mode then
        run on those weights (compiled kernels of the Cython backend, with AVX-512 VNNI or BF16,
        or AVX2, where the CPU has them), one sequence at a time.

        The float32 parameters stay as they were: training (``forward`` in training mode and
        ``backward`` raise on a quantised layer), streaming (:meth:`step`) and ONNX export use
        them. Call ``quantize`` again after changing them.

        Parameters
        ----------
        precision : {"int8", "bf16"}

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Another precision, a float64 layer, or a cell without recurrent matrix (MinGRU,
            MinLSTM, IndRNN).
        RuntimeError
            The Cython kernels are not built.
        """
        from ._quant import quantize_layer

        quantize_layer(self, precision)
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, X, lengths=None, h0=None, tokens=None):
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
        tokens : tuple (ids, table), optional
            Says that ``X`` is a lookup in a table of token vectors, ``X == table[ids]`` (``ids``
            integers of shape (B, T) in ``[0, V)``, ``table`` of shape (V, input_size)), as after
            an embedding. The float32 and bf16 layers of the Numba backend then compute the first
            layer's input projection as a lookup in ``table @ W_ih^T`` when ``V`` is at most half
            the number of real steps (the same values, with fewer products), and :meth:`backward`
            returns the gradient of ``table`` instead of that of ``X`` (whatever the backend).

        Returns
        -------
        Y : ndarray of shape (B, T, num_directions * hidden_size)
            Outputs of the last layer, zero past each sequence's length.
        h_n : ndarray of shape (num_layers * num_directions, B, hidden_size)
            State at each sequence's last real step (reverse direction: at its first step).
            For an LSTM a pair ``(h_n, c_n)``.

        Notes
        -----
        In training mode (:meth:`train`) dropout masks are drawn; the call keeps what
        :meth:`backward` needs. :meth:`infer` is the same computation in evaluation mode that
        keeps nothing and changes no state of the layer.

        The large arrays kept by the previous call are written over by this one where nothing
        else refers to them any more (the float32 layers of the Numba backend), instead of new
        memory being cleared by the operating system on every call; a cache that a caller still
        holds is left as it was.
        """
        Y, h_n, self._cache = self._run(X, lengths, h0, self.training, recycle=True,
                                        tokens=tokens)
        return Y, h_n

    __call__ = forward

    def infer(self, X, lengths=None, h0=None, tokens=None):
        """:meth:`forward` in evaluation mode (no dropout, whatever :meth:`train` set), keeping
        nothing for a backward: safe to call from several threads at once on one layer.

        Parameters and results are those of :meth:`forward`.
        """
        Y, h_n, _ = self._run(X, lengths, h0, False, tokens=tokens)
        return Y, h_n

    def _check_tokens(self, tokens, shape):
        """``tokens = (ids, table)`` checked against the batch's ``shape`` (B, T): ids as intp,
        the table in the layer's dtype."""
        if not isinstance(tokens, (tuple, list)) or len(tokens) != 2:
            raise ValueError(f"tokens must be a pair (ids, table), got {type(tokens).__name__}; "
                             "pass tokens=(ids, embedding_weight) or leave it out.")
        ids, table = np.asarray(tokens[0]), np.asarray(tokens[1])
        if ids.shape != shape or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"tokens: ids must be integers of shape {shape} (one per step of X), "
                             f"got {ids.dtype} of shape {ids.shape}.")
        if table.ndim != 2 or table.shape[1] != self.input_size:
            raise ValueError(f"tokens: the table must have shape (V, {self.input_size}), got "
                             f"{table.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
            raise ValueError(f"tokens: ids must lie in [0, {table.shape[0]}) (rows of the table), "
                             f"got values from {ids.min()} to {ids.max()}.")
        return (np.ascontiguousarray(ids, np.intp),
                np.ascontiguousarray(table, self.dtype))

    def _run(self, X, lengths, h0, training, recycle=False, tokens=None):
        given, X = X, as_batch(X, self.input_size, self.dtype)
        B, T, _ = X.shape
        if tokens is not None:
            tokens = self._check_tokens(tokens, (B, T))
        if lengths is None:
            check_finite_steps(X, None, source=given)
            plan = unpadded_plan(B, T)
        else:
            lengths = as_lengths(lengths, B, T)
            check_finite_steps(X, lengths, source=given)
            # shared per lengths (a predictor's length buckets, an estimator's batches)
            plan = padded_plan(lengths, T)
        h0, c0 = self._initial_state(h0, B)
        if self.quantized_ is not None:
            return self._run_quantized(X, lengths, plan, h0, c0, training)
        name = route(self.backend, None if training or B > 1 else "infer1", self._spec.kind)
        spec = self._spec
        if self.precision == "bf16":
            if training:  # its products are the numba backend's fast driver's
                name = "numba"
            else:  # inference computes in float32
                spec = spec._replace(precision="float32")
        check_supports(name, self._spec.kind, self.backend)
        bk = get_backend(name)
        if training:
            hmasks, drops = self._draw_masks(plan)
        else:
            hmasks, drops = [None] * len(self._spec.units), [None] * self.num_layers
        pool = self._previous_cache() if recycle else None
        # the backends that can project through a token table say so (uses_tokens)
        pass_tokens = tokens is not None and self.skip is None and hasattr(bk, "uses_tokens")
        with _workspace.using(pool):
            if self.skip is None:
                Y, hn, cn, ctx = _blas_on_one_thread(
                    bk, spec, bk.forward, spec, self.params, X, plan, h0, c0, hmasks, drops,
                    *((tokens,) if pass_tokens else ()))
            else:
                Y, hn, cn, ctx = _blas_on_one_thread(bk, spec, _skip.forward, bk, spec,
                                                     self.params, self.skip, X, plan, h0, c0,
                                                     hmasks, drops)
        self.last_backend_ = name
        # a token input whose table the backend did not use: backward scatters dX into the table
        scatter = (None if tokens is None or (pass_tokens and bk.uses_tokens(ctx))
                   else (tokens[0], tokens[1].shape[0]))
        return Y, ((hn, cn) if self.has_cell else hn), (name, plan, ctx, scatter)

    def _previous_cache(self):
        """Drop the cache of the last forward and return its large arrays as a
        :class:`fastrnn._workspace.Pool` (those that nothing else refers to)."""
        arrays = _workspace.arrays_of(self._cache)
        self._cache = None
        return _workspace.Pool(arrays)

    def __getstate__(self):
        # the int8 weights bound for the kernel hold raw pointers: rebuilt on the next call;
        # the backward's scratch is memory, not state
        state = self.__dict__.copy()
        state.pop("_qbound", None)
        state.pop("_scratch", None)
        return state

    def _run_quantized(self, X, lengths, plan, h0, c0, training):
        if training:
            raise ValueError(
                f"this {type(self).__name__} is quantised ({self.quantized_}) for inference: call "
                "eval() (or infer()) to predict with it; train the float32 model, then quantise "
                "it.")
        from ._quant import forward

        if lengths is None:
            lengths = np.full(plan.B, plan.T, np.int64)
        Y, hn, cn = forward(self, X, lengths, h0, c0)
        self.last_backend_ = "cython"
        return Y, ((hn, cn) if self.has_cell else hn), ("int8", plan, None, None)

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

    def _draw_masks(self, plan):
        """The dropout masks of a training call, drawn from ``rng_`` in a fixed order (per layer:
        each direction's recurrent mask, then the mask on the layer's outputs), so that a seed
        gives the same masks on every backend.

        Returns
        -------
        hmasks : list of (ndarray of shape (B, H) or None)
            Variational recurrent-dropout mask of each unit (one per sequence, for all steps).
        drops : list of (ndarray of shape (Tm, B, D*H) or None)
            Inverted dropout on the outputs of every layer but the last (time-major, sorted).
        """
        B, D, H, L = plan.B, self.num_directions, self.hidden_size, self.num_layers
        hmasks, drops = [], []
        for layer in range(L):
            for _ in range(D):
                mask = None
                if self.recurrent_dropout > 0:
                    keep = 1.0 - self.recurrent_dropout
                    m = self.rng_.random_sample((B, H)) < keep
                    mask = np.ascontiguousarray(m.astype(self.dtype) / keep)
                hmasks.append(mask)
            drop = None
            if layer < L - 1 and self.dropout > 0:
                keep = 1.0 - self.dropout
                drop = (self.rng_.random_sample((plan.Tm, B, D * H)) < keep).astype(self.dtype) / keep
            drops.append(drop)
        return hmasks, drops

    # ------------------------------------------------------------------ backward
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
            Gradient with respect to the input (zero past each length); of shape
            (V, input_size), the gradient with respect to the table, when :meth:`forward` was
            given ``tokens``.

        Notes
        -----
        ``self.grads`` is overwritten with the gradients of every parameter (summed over the steps,
        as back-propagation through time prescribes) and ``self.grad_h0`` with the gradient of the
        initial state (a pair for an LSTM).
        """
        if self._cache is None:
            raise ValueError("backward() needs the cache of a forward(); call forward(X) first.")
        name, plan, ctx, scatter = self._cache
        if name == "int8":
            raise ValueError(f"backward() through a quantised {type(self).__name__} is not "
                             "available; differentiate the float32 model.")
        D, H = self.num_directions, self.hidden_size
        dY = np.asarray(dY)
        if dY.shape != (plan.B, plan.T, D * H):
            raise ValueError(
                f"dY must have the shape of Y, {(plan.B, plan.T, D * H)}, got {dY.shape}.")
        dhn, dcn = self._initial_state(dh_n, plan.B, "dh_n")
        bk = get_backend(name)
        # the scratch of the last backward is written over (see fastrnn._workspace)
        pool = _workspace.Pool(getattr(self, "_scratch", None) or [])
        self._scratch = None
        with _workspace.using(pool):
            if self.skip is None:
                dX, dh0, dc0 = _blas_on_one_thread(bk, self._spec, bk.backward, self._spec,
                                                   self.params, self.grads, plan, ctx, dY, dhn,
                                                   dcn)
            else:
                dX, dh0, dc0 = _blas_on_one_thread(bk, self._spec, _skip.backward, bk,
                                                   self._spec, self.params, self.grads, self.skip,
                                                   plan, ctx, dY, dhn, dcn)
        self._scratch = pool.free_after()
        self.grad_h0 = (dh0, dc0) if self.has_cell else dh0
        if scatter is not None:
            ids, V = scatter
            dtable = np.zeros((V, self.input_size), self.dtype)
            get_backend(route(self.backend)).embedding_backward(
                ids.reshape(-1, 1), np.ascontiguousarray(dX, self.dtype).reshape(-1, self.input_size),
                -1, dtable)
            return dtable
        return dX

    def __repr__(self):
        args = [f"{self.input_size}", f"{self.hidden_size}"]
        if self.num_layers != 1:
            args.append(f"num_layers={self.num_layers}")
        if self.bidirectional:
            args.append("bidirectional=True")
        if self.skip is not None:
            args.append(f"skip={self.skip!r}")
        args.append(f"dtype={self.dtype.name}")
        args.append(f"backend={self.backend!r}")
        if self.precision != "float32":
            args.append(f"precision={self.precision!r}")
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
    skip : {None, "residual", "dense", "highway"}, default None
        See :class:`LSTM`.
    dtype : {np.float32, np.float64}
    backend : {"auto", "numba", "cython", "cuda", "numpy"}
    random_state : int, RandomState or None
    init : {"default", "pytorch", "irnn"}
    precision : {"float32", "bf16"}, default "float32"
        See :class:`LSTM`.

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
    skip : {None, "residual", "dense", "highway"}, default None
        Connections between the stacked layers, with ``f_l`` layer ``l``'s recurrent outputs and
        ``x_l`` its input. ``"residual"``: layers ``l > 0`` output ``f_l + x_l``. ``"dense"``:
        layer ``l`` reads the concatenation of the layer's input and the outputs of all layers
        below it (``input_size + l * D * H`` features); the output is the top layer's.
        ``"highway"`` (Srivastava et al. 2015, arXiv:1505.00387): every layer outputs
        ``g ⊙ f_l + (1 - g) ⊙ P x_l``, ``g = sigmoid(W_g x_l + b_g)``, ``P`` the identity where
        the sizes match, else a learned projection (no bias); ``b_g`` starts at -1, so a fresh
        layer passes about 73 % of its input through. The connections' parameters are
        ``skip_proj_l{k}``, ``skip_gate_weight_l{k}`` and ``skip_gate_bias_l{k}``; ``h_n`` holds
        the recurrent states as without connections. They run in numpy between the layers, the
        same on every backend.
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
    precision : {"float32", "bf16"}, default "float32"
        ``"bf16"``: mixed-precision training. The whole-sequence matrix products (the input
        projection ``X W_ih^T`` of all steps, the weight gradients ``dW_ih``, ``dW_hh`` and the
        input gradient ``dX``) round their operands to bfloat16 (to nearest, ties to even) and sum
        in float32; the recurrent products of each step, the cell, the states, parameters and
        gradients stay float32. Outputs and gradients then differ from float32 by about 1e-2
        relative (bf16 keeps 8 significant bits). It applies to training: :meth:`forward` in
        training mode and its :meth:`backward`; inference (:meth:`infer`, :meth:`forward` in
        evaluation mode, :meth:`step`) computes in float32 (``quantize("bf16")`` is bf16
        inference). The products run in C on AVX-512 BF16 (``vdpbf16ps``) where the CPU has it;
        elsewhere an exact portable C kernel gives the same values, much more slowly. Needs
        ``dtype=np.float32``, the compiled extension ``fastrnn._cy._bf16`` and the numba backend
        (``"auto"`` trains there). RNN, LSTM and GRU only.

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
    dropout, recurrent_dropout, skip, dtype, backend, random_state, init, precision
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

    def _kind(self):
        return "gru" if self.reset_after else "gru_v1"


class _Elementwise(_Recurrent):
    """Shared machinery of the cells whose recurrence is element-wise (no recurrent matrix)."""

    recurrent_weight = False

    def __init__(self, input_size, hidden_size, num_layers=1, **kwargs):
        name = type(self).__name__
        if kwargs.get("init", "default") == "irnn":
            raise ValueError(f"init='irnn' sets a recurrent matrix to the identity, and {name} has "
                             "none; use init='default' or 'pytorch'.")
        if not self.recurrent_weight and float(kwargs.get("recurrent_dropout", 0.0)) != 0.0:
            raise ValueError(
                f"{name} has no recurrent weight for recurrent_dropout to act on, got "
                f"recurrent_dropout={kwargs['recurrent_dropout']!r}; leave it at 0 (dropout "
                "between layers is the dropout argument).")
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def _build(self):
        # PyTorch's order: weight_ih, weight_hh, bias_ih, bias_hh (those of them the cell has)
        H, G, rng, dt = self.hidden_size, self.G, self.rng_, self.dtype
        bound = 1.0 / np.sqrt(H)
        for _, _, sfx, size in self._units():
            if self.init == "pytorch":
                self.params["weight_ih" + sfx] = _init.uniform((G * H, size), rng, dt, bound)
            else:
                self.params["weight_ih" + sfx] = _init.glorot_uniform((G * H, size), rng, dt)
            if self.recurrent_weight:
                self.params["weight_hh" + sfx] = (
                    _init.uniform((H,), rng, dt, bound) if self.init == "pytorch"
                    else rng.uniform(0.0, 1.0, H).astype(dt))
            for name in ("bias_ih", "bias_hh") if self.recurrent_weight else ("bias_ih",):
                self.params[name + sfx] = (_init.uniform((G * H,), rng, dt, bound)
                                           if self.init == "pytorch" else np.zeros(G * H, dt))


class _Minimal(_Elementwise):
    """minGRU and minLSTM: the candidate option."""

    def __init__(self, input_size, hidden_size, num_layers=1, candidate="identity", **kwargs):
        if candidate not in ("identity", "g"):
            raise ValueError(f"candidate must be 'identity' or 'g', got {candidate!r}.")
        self.candidate = candidate
        super().__init__(input_size, hidden_size, num_layers, **kwargs)


_MINIMAL_PARAMETERS = """
    Parameters
    ----------
    input_size, hidden_size, num_layers, bidirectional
        As for :class:`LSTM`.
    dropout : float, default 0
        Inverted dropout on the outputs of every layer but the last, in training mode only.
    skip : {None, "residual", "dense", "highway"}, default None
        Connections between the stacked layers, as for :class:`LSTM`.
    candidate : {"identity", "g"}, default "identity"
        The candidate's activation: the identity, as in the paper's main equations, or its ``g``
        (``g(x) = x + 0.5`` for ``x >= 0``, else ``sigmoid(x)``), which keeps the candidate, and
        so the state started from zero, positive. The paper needs ``g`` for its log-space scan,
        which takes logarithms of the states; the scan here multiplies by the gates and never
        divides or takes a logarithm, so it is stable either way, and the identity is the default.
    dtype, backend, random_state
        As for :class:`LSTM`.
    init : {"default", "pytorch"}, default "default"
        ``"default"``: Glorot-uniform weights, zero biases; ``"pytorch"``: uniform on
        ``±1/sqrt(H)``.

    Notes
    -----
    The gates read the input alone, so the layer's projections of all steps are one matrix
    product, and the state follows ``h_t = a_t ⊙ h_{t-1} + b_t`` element by element. The Numba
    and Cython backends run that recurrence as a scan: the units of the batch split over threads,
    or, for a batch of fewer sequences than threads and a long sequence, blocks of time scanned in
    parallel and joined by their carries. ``recurrent_dropout`` is not available (no recurrent
    weight).
"""


def _minimal_attributes(G, order):
    """The Attributes section of a minimal cell's docstring (``G`` blocks, in ``order``)."""
    return f"""
    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih_l0`` ({G}H, input_size) and ``bias_ih_l0`` ({G}H,), blocks in the order
        {order}; ``..._l{{k}}`` and ``..._reverse`` for the other layers and directions.
    grad_h0 : ndarray of shape (num_layers * num_directions, B, H)
        Gradient of ``h0`` after :meth:`backward`."""


class MinGRU(_Minimal):
    __doc__ = r"""Minimal GRU layer (Feng et al. 2024, "Were RNNs All We Needed?",
    arXiv:2410.01201): a GRU whose gate and candidate read the input alone.

    .. math::

        z_t &= \sigma(W_{z} x_t + b_{z}), \qquad \tilde h_t = W_{h} x_t + b_{h} \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t
    """ + _MINIMAL_PARAMETERS + _minimal_attributes(2, "z, candidate") + r"""

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import MinGRU
    >>> layer = MinGRU(3, 4, bidirectional=True, random_state=0)
    >>> X = np.random.default_rng(0).normal(size=(2, 5, 3))
    >>> Y = layer.forward(X, lengths=[5, 2])[0]  # the second sequence has 2 steps
    >>> Y.shape, bool(np.all(Y[1, 2:] == 0))
    ((2, 5, 8), True)
    """

    G = 2


class MinLSTM(_Minimal):
    __doc__ = r"""Minimal LSTM layer (Feng et al. 2024, arXiv:2410.01201): forget and input gates
    that read the input alone, normalised to sum to one, and no output gate or cell state.

    .. math::

        f_t &= \sigma(W_{f} x_t + b_{f}), \qquad i_t = \sigma(W_{i} x_t + b_{i}), \qquad
        \tilde h_t = W_{h} x_t + b_{h} \\
        h_t &= \frac{f_t}{f_t + i_t} \odot h_{t-1} + \frac{i_t}{f_t + i_t} \odot \tilde h_t

    ``f / (f + i)`` is computed as ``sigmoid(log f - log i)``, which stays finite when both gates
    underflow.
    """ + _MINIMAL_PARAMETERS + _minimal_attributes(3, "f, i, candidate") + r"""

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import MinLSTM
    >>> layer = MinLSTM(3, 4, num_layers=2, dtype=np.float64, random_state=0)
    >>> Y, h_n = layer.forward(np.ones((2, 5, 3)), lengths=[5, 3])
    >>> bool(np.allclose(h_n[-1, 1], Y[1, 2]))
    True
    """

    G = 3


class IndRNN(_Elementwise):
    r"""Independently recurrent layer (Li et al. 2018, arXiv:1803.04831): each unit sees only its
    own previous state, through a scalar weight.

    .. math:: h_t = \phi(W_{ih} x_t + b_{ih} + u \odot h_{t-1} + b_{hh})

    Parameters
    ----------
    input_size, hidden_size, num_layers, bidirectional
        As for :class:`LSTM`.
    nonlinearity : {"relu", "tanh"}, default "relu"
        ``phi``; the paper's cell uses relu.
    recurrent_max : float or None, default 1.0
        Bound on the recurrent weights: a :class:`~fastrnn.train.Trainer` clips ``u`` into
        ``[-recurrent_max, recurrent_max]`` after every update (``constrain()``). The paper
        bounds ``|u|`` so that ``|u|^T`` stays bounded over the ``T`` steps a unit must
        remember; over a state carried through a long stream (a language model) that bound
        goes to 1. Left free, ``u`` grows past 1 and a relu state grows geometrically: a
        character language model (256 units, Adam) reached ``|u| = 1.9`` after 2,000 updates
        and diverged. ``None``: no bound.
    dropout, recurrent_dropout : float, default 0
        As for :class:`LSTM` (the recurrent mask multiplies ``h_{t-1}`` where it meets ``u``).
    skip : {None, "residual", "dense", "highway"}, default None
        Connections between the stacked layers, as for :class:`LSTM`.
    dtype, backend, random_state
        As for :class:`LSTM`.
    init : {"default", "pytorch"}, default "default"
        ``"default"``: Glorot-uniform ``W_ih``, ``u`` uniform on [0, 1) (each unit decays, none
        grows, at the start), zero biases; ``"pytorch"``: uniform on ``±1/sqrt(H)`` for every
        parameter.

    Attributes
    ----------
    params, grads : dict of str to ndarray
        ``weight_ih_l0`` (H, input_size), ``weight_hh_l0`` (H,) (the vector ``u``),
        ``bias_ih_l0`` and ``bias_hh_l0`` (H,); ``..._l{k}`` and ``..._reverse`` for the other
        layers and directions.
    grad_h0 : ndarray of shape (num_layers * num_directions, B, H)
        Gradient of ``h0`` after :meth:`backward`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import IndRNN
    >>> layer = IndRNN(3, 4, random_state=0)
    >>> layer.params["weight_hh_l0"].shape  # one recurrent weight per unit
    (4,)
    >>> Y = layer.forward(np.ones((2, 5, 3)), lengths=[5, 2])[0]
    >>> Y.shape, bool((Y >= 0).all())  # relu
    ((2, 5, 4), True)
    """

    G = 1
    recurrent_weight = True

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="relu",
                 recurrent_max=1.0, **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'relu' or 'tanh', got {nonlinearity!r}.")
        if recurrent_max is not None:
            if (isinstance(recurrent_max, bool) or not isinstance(recurrent_max, Real)
                    or not recurrent_max > 0 or not np.isfinite(recurrent_max)):
                raise ValueError("recurrent_max must be a positive number (the bound on |u|) "
                                 f"or None (no bound), got {recurrent_max!r}.")
            recurrent_max = float(recurrent_max)
        self.nonlinearity = nonlinearity
        self.recurrent_max = recurrent_max
        super().__init__(input_size, hidden_size, num_layers, **kwargs)

    def constraints(self):
        if self.recurrent_max is None:
            return {}
        return {"weight_hh" + sfx: self.recurrent_max for _, _, sfx, _ in self._units()}


#: the layer class of each ``cell`` name that the networks and estimators accept
CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mingru": MinGRU, "minlstm": MinLSTM,
         "indrnn": IndRNN}
