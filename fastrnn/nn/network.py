"""A whole sequence network: optional embedding, stacked recurrent layers, pooling, output head."""

from collections.abc import Mapping

import numpy as np

from .._backend import training_kernel
from .._config import check_dtype
from .._flat import FlatArrays
from . import init as _init
from ._checks import check_state_dict
from ._linear import TokenLinear, TokenLinearStream
from .layers import POOLINGS, Dense, Embedding, SoftmaxHead, pool, pool_backward
from .recurrent import CELLS

__all__ = ["SequenceNetwork", "NetworkStream", "CELLS", "HEADS"]

HEADS = ("dense", "softmax")
OUTPUTS = ("head", "pooled", "hidden")


class SequenceNetwork:
    r"""Input (features or token ids) → [Embedding] → recurrent layers → [pooling] → output head.

    With ``pooling`` set, the network maps each sequence to one output vector (classification,
    regression, encoding); with ``pooling=None`` it maps every step to an output vector (tagging,
    language modelling).

    Parameters
    ----------
    n_outputs : int
        Size of the head's output (classes, targets or vocabulary size).
    n_features : int, optional
        Features per step of a float input ``(B, T, n_features)``. Exactly one of ``n_features`` and
        ``vocab_size`` is given.
    vocab_size : int, optional
        Size of the token vocabulary of an integer input ``(B, T)``; needs ``embedding_dim``.
    embedding_dim : int, optional
    cell : {"rnn", "lstm", "gru", "mingru", "minlstm", "indrnn"}, default "lstm"
        :class:`~fastrnn.nn.RNN`, :class:`~fastrnn.nn.LSTM`, :class:`~fastrnn.nn.GRU`,
        :class:`~fastrnn.nn.MinGRU`, :class:`~fastrnn.nn.MinLSTM` or :class:`~fastrnn.nn.IndRNN`.
    hidden_size, num_layers, bidirectional, recurrent_dropout, dtype, backend
        Passed to the recurrent layer.
    skip : {None, "residual", "dense", "highway"}, default None
        Connections between the stacked recurrent layers (see :class:`~fastrnn.nn.LSTM`); with
        ``"dense"`` the pooling and the head read the top layer's outputs.
    dropout : float, default 0
        Inverted dropout (training mode only) between stacked layers, on the embeddings and on the
        recurrent outputs before the head (Zaremba et al. 2014: dropout on non-recurrent connections).
    pooling : {"last", "mean", "max"} or None, default "last"
    bag_of_embeddings : bool, default False
        Also feed a bag of embeddings to the head, next to the pooled recurrent outputs: the
        token vectors of each sequence's real steps (after the input dropout) summed and divided
        by the square root of the length. A bag-of-words path as in fastText (Joulin et al. 2017,
        "Bag of tricks for efficient text classification", EACL), which averages the vectors;
        dividing by the square root of the length instead keeps long documents' bags from
        shrinking towards the mean of the frequent words. Needs token input and pooling.
    linear : bool, default False
        Add to the head's logits those of a ``fastrnn.nn._linear.TokenLinear``: a linear
        model on the TF-IDF bag of each sequence's token ids, whose arrays start at zero (set
        them with :meth:`set_linear`). It is fitted apart from the network (see
        :class:`~fastrnn.estimators.RNNClassifier`'s ``linear``) and is not in ``params``: for
        the network's training it is a fixed offset of the logits, with no gradient. Needs
        token input, pooling and a dense head.
    head : {"dense", "softmax"}, default "dense"
        ``"dense"``: :meth:`forward` returns the head's output (logits, or values for regression).
        ``"softmax"`` (needs ``pooling=None``): a :class:`~fastrnn.nn.SoftmaxHead` over a large
        vocabulary; :meth:`forward` returns the hidden states that enter it, and the loss is
        :meth:`loss_fn`, which applies the head block by block (a language model).
    excluded_outputs : sequence of int, default ()
        With ``head="softmax"``: output ids that never get probability.
    learn_initial_state : bool, default False
        Learn the initial state ``h0`` (and ``c0``) as parameters shared by all sequences.
    tie_weights : bool, default False
        Share the embedding matrix with the head's weight (Press & Wolf 2017); needs
        ``pooling=None``, token input and ``embedding_dim == num_directions * hidden_size``.
    cell_options : dict, optional
        Extra arguments of the cell (``nonlinearity``, ``reset_after``, ``forget_bias``, ``peephole``,
        ``input_gate``, ``forget_gate``, ``output_gate``, ``candidate``, ``init``).
    random_state : int, RandomState or None
    precision : {"float32", "bf16"}, default "float32"
        Of the recurrent layer's training (see :class:`~fastrnn.nn.LSTM`): a setting of this
        network object, not of the model, so not in ``config``.

    Attributes
    ----------
    config : dict
        The constructor arguments except ``backend``, ``random_state`` and ``precision``
        (JSON-able), so that
        ``SequenceNetwork(**config)`` rebuilds the architecture of a saved network.
    params, grads : dict of str to ndarray
        All parameters, prefixed by their block: ``embedding.weight``, ``rnn.weight_ih_l0``, ...,
        ``head.weight``, ``head.bias``, ``h0``, ``c0``. The arrays are the blocks' own arrays, so an
        optimiser stepping ``params`` in place updates the network. They are views into one buffer
        for the parameters and one for the gradients (``fastrnn._flat.FlatArrays``), which
        the optimisers and the gradient clipping process in one call each; assigning an array to
        a name copies it into the view. A copy of the network (pickle, :func:`copy.deepcopy`)
        is laid out in its own two buffers again.

    Notes
    -----
    :meth:`forward` / :meth:`backward` train: the forward keeps what the backward needs.
    :meth:`infer` and :meth:`step` predict without changing any state of the network, so one
    network can serve several threads at once.
    """

    def __init__(self, n_outputs, n_features=None, vocab_size=None, embedding_dim=None, cell="lstm",
                 hidden_size=64, num_layers=1, bidirectional=False, dropout=0.0,
                 recurrent_dropout=0.0, pooling="last", head="dense", excluded_outputs=(),
                 learn_initial_state=False, tie_weights=False, cell_options=None,
                 dtype=np.float32, backend="auto", random_state=None, bag_of_embeddings=False,
                 skip=None, linear=False, precision="float32"):
        if (n_features is None) == (vocab_size is None):
            raise ValueError("give exactly one of n_features (float input) and vocab_size (token ids).")
        if vocab_size is not None and not embedding_dim:
            raise ValueError("token input (vocab_size) needs embedding_dim, got "
                             f"embedding_dim={embedding_dim!r}.")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS} or None, got {pooling!r}.")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
        if head == "softmax" and pooling is not None:
            raise ValueError(f"head='softmax' gives an output at every step: it needs pooling=None, "
                             f"got pooling={pooling!r}.")
        if bag_of_embeddings and (vocab_size is None or pooling is None):
            raise ValueError(
                "bag_of_embeddings adds the token vectors of each sequence to the pooled "
                "outputs: it needs token input (vocab_size) and pooling, got "
                f"vocab_size={vocab_size!r}, pooling={pooling!r}. Pass bag_of_embeddings=False.")
        if linear and (vocab_size is None or pooling is None or head != "dense"):
            raise ValueError(
                "linear adds a linear model on the bag of each sequence's token ids to its "
                "logits: it needs token input (vocab_size), pooling and head='dense', got "
                f"vocab_size={vocab_size!r}, pooling={pooling!r}, head={head!r}. Pass "
                "linear=False.")
        excluded_outputs = tuple(int(e) for e in excluded_outputs)
        self.config = dict(
            n_outputs=n_outputs, n_features=n_features, vocab_size=vocab_size,
            embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, recurrent_dropout=recurrent_dropout,
            pooling=pooling, head=head, excluded_outputs=list(excluded_outputs),
            learn_initial_state=learn_initial_state, tie_weights=tie_weights,
            cell_options=dict(cell_options or {}), dtype=np.dtype(dtype).name)
        if bag_of_embeddings:  # only when on: files of networks without it stay as they were
            self.config["bag_of_embeddings"] = True
        if skip is not None:  # likewise
            self.config["skip"] = skip
        if linear:  # likewise
            self.config["linear"] = True
        self.linear = (TokenLinear(vocab_size, n_outputs, dtype=check_dtype(dtype)) if linear
                       else None)
        self.bag_of_embeddings = bool(bag_of_embeddings)
        self.dtype = check_dtype(dtype)
        self.pooling = pooling
        self.dropout = float(dropout)
        self.training = True
        self.rng_ = _init.check_random_state(random_state)
        seed = lambda: self.rng_.randint(np.iinfo(np.int32).max)  # noqa: E731
        self.embedding = None
        if vocab_size is not None:
            self.embedding = Embedding(vocab_size, embedding_dim, dtype=self.dtype,
                                       random_state=seed(), backend=backend)
            n_in = int(embedding_dim)
        else:
            n_in = int(n_features)
        self.n_features = n_in
        self.rnn = CELLS[cell](n_in, hidden_size, num_layers, bidirectional=bidirectional,
                               dropout=dropout, recurrent_dropout=recurrent_dropout, dtype=self.dtype,
                               backend=backend, random_state=seed(), skip=skip,
                               precision=precision, **(cell_options or {}))
        D = self.rnn.num_directions
        if head == "softmax":
            self.head = SoftmaxHead(D * hidden_size, n_outputs, dtype=self.dtype,
                                    random_state=seed(), excluded=excluded_outputs)
        else:
            width = D * hidden_size + (int(embedding_dim) if self.bag_of_embeddings else 0)
            self.head = Dense(width, n_outputs, dtype=self.dtype, random_state=seed())
        self.tie_weights = bool(tie_weights)
        if self.tie_weights:
            if self.embedding is None or pooling is not None or embedding_dim != D * hidden_size:
                raise ValueError(
                    "tie_weights needs token input, pooling=None, n_outputs == vocab_size and "
                    f"embedding_dim == num_directions * hidden_size (got embedding_dim={embedding_dim},"
                    f" hidden {D} x {hidden_size})."
                )
            if n_outputs != vocab_size:
                raise ValueError(f"tie_weights needs n_outputs == vocab_size, got {n_outputs} and "
                                 f"{vocab_size}.")
            self.head.params["weight"] = self.embedding.params["weight"]
        self.learn_initial_state = bool(learn_initial_state)
        self._state_params = {}
        if self.learn_initial_state:
            shape = (num_layers * D, hidden_size)
            names = ("h0", "c0") if self.rnn.has_cell else ("h0",)
            self._state_params = {k: np.zeros(shape, self.dtype) for k in names}
            self._state_grads = {k: np.zeros(shape, self.dtype) for k in names}
        self._collect()
        self._cache = None

    def _collect(self):
        self.params, self.grads = {}, {}
        blocks = [("embedding", self.embedding), ("rnn", self.rnn), ("head", self.head)]
        for prefix, block in blocks:
            if block is None:
                continue
            for k, v in block.params.items():
                if self.tie_weights and prefix == "head" and k == "weight":
                    continue
                self.params[f"{prefix}.{k}"] = v
                self.grads[f"{prefix}.{k}"] = block.grads[k]
        self.params.update(self._state_params)
        if self._state_params:
            self.grads.update(self._state_grads)
        self._flatten()

    def _flatten(self):
        """Move the parameters into one buffer and the gradients into another (see
        ``fastrnn._flat.FlatArrays``), so that the optimiser, the clipping and the gradient
        norm make one call over each; every block's dict is pointed at the same views."""
        params = FlatArrays(self.params, self.dtype)
        grads = FlatArrays(self.grads, self.dtype)
        moved = {}
        for new, old in ((params, self.params), (grads, self.grads)):
            for k, view in new.items():
                moved[id(old[k])] = (old[k], view)
        blocks = [b for b in (self.embedding, self.rnn, self.head) if b is not None]
        for d in [b.params for b in blocks] + [b.grads for b in blocks] + [
                self._state_params, getattr(self, "_state_grads", {})]:
            for k, v in list(d.items()):
                entry = moved.get(id(v))
                if entry is not None and entry[0] is v:
                    d[k] = entry[1]
        self.params, self.grads = params, grads

    def constraints(self):
        """The recurrent layer's ``constraints()``, under the network's parameter names."""
        return {f"rnn.{k}": bound for k, bound in self.rnn.constraints().items()}

    def constrain(self):
        """Clip the constrained parameters into their bounds (after an update)."""
        self.rnn.constrain()

    def __setstate__(self, state):
        # a copy (pickle, deepcopy) restores every array and who shares it, but not the one
        # buffer that the arrays were views into: lay them out again
        self.__dict__.update(state)
        params = self.__dict__.get("params")
        if isinstance(params, FlatArrays) and params.contiguous() is None:
            self._flatten()

    # ------------------------------------------------------------------ modes and state
    def train(self, mode=True):
        """Switch dropout on (``mode=True``) or off for :meth:`forward`; returns the network."""
        self.training = bool(mode)
        self.rnn.train(mode)
        return self

    def eval(self):
        """Switch dropout off for :meth:`forward`; returns the network."""
        return self.train(False)

    def weights(self):
        """Every array a saved network holds: ``params`` and, with a linear part, its arrays
        (``linear.idf``, ``linear.weight``, ``linear.bias``; not trained by an optimiser, so not
        in ``params``)."""
        if self.linear is None:
            return self.params
        return {**self.params, **{f"linear.{k}": v for k, v in self.linear.params.items()}}

    def state_dict(self):
        """Copies of all arrays (see :meth:`weights`)."""
        return {k: v.copy() for k, v in self.weights().items()}

    def load_state_dict(self, state):
        """Copy the arrays of ``state`` (names as in :meth:`weights`, or as in ``params`` alone,
        keeping the linear part) into the network."""
        whole = isinstance(state, Mapping) and any(str(k).startswith("linear.") for k in state)
        target = self.weights() if whole else self.params
        for k, v in check_state_dict(state, target, "network").items():
            target[k][...] = v

    def set_linear(self, idf, weight, bias):
        """Set the linear part (a network built with ``linear=True``) from a logistic
        regression on TF-IDF features: ``idf`` of shape (vocab_size,) (0 for the ids it leaves
        out), ``weight`` of shape (vocab_size, n_outputs) and ``bias`` of shape (n_outputs,).
        Returns the network."""
        if self.linear is None:
            raise ValueError("set_linear needs a network built with linear=True; this one has "
                             "no linear part.")
        p = self.linear.params
        for name, value in (("idf", idf), ("weight", weight), ("bias", bias)):
            value = np.asarray(value)
            if value.shape != p[name].shape:
                raise ValueError(f"set_linear: {name} must have shape {p[name].shape}, got "
                                 f"{value.shape}.")
            p[name][...] = value
        return self

    def quantize(self, precision="int8"):
        """Quantise the recurrent layer for inference, in place (see
        :meth:`fastrnn.nn.LSTM.quantize`; the embedding and the head stay float); returns the
        network. Recorded in :attr:`config` (``"quantized"``), so that a saved model keeps it."""
        self.rnn.quantize(precision)
        self.config["quantized"] = precision
        return self

    def quantized_state(self):
        """The recurrent layer's quantised weights under the names a saved model gives them
        (``"int8/rnn.weight_ih_l0"``, ``"int8/rnn.weight_ih_l0/scale"``, ...); empty unless
        :meth:`quantize` was called."""
        from ._quant import quantized_arrays

        return {f"{self.rnn.quantized_}/rnn.{k}": v
                for k, v in quantized_arrays(self.rnn).items()}

    def release(self):
        """Drop what the last :meth:`forward` kept for :meth:`backward` (a fitted model need not
        hold a batch of activations); returns the network."""
        self._cache = None
        self.rnn._cache = None
        self.head._X = None
        if self.embedding is not None:
            self.embedding._ids = None
        return self

    def _dropout(self, X):
        """Inverted dropout on ``X`` in training mode: ``(X * mask, mask)``, or ``(X, None)``.

        One draw of the network's ``rng_`` seeds a PCG64 generator for the mask: float32 draws
        from it cost a quarter of ``RandomState.random_sample``'s, and the masks still depend on
        ``rng_`` alone (which a training checkpoint saves), so a resumed run draws the same ones.
        The mask is applied in one compiled pass (``fastrnn.nn._dropout.dropout``).
        """
        if not (self.training and self.dropout > 0):
            return X, None
        seed = self.rng_.randint(np.iinfo(np.int32).max)
        return training_kernel("dropout")(X, self.dropout, seed, self.dtype)

    def _initial(self, state, B):
        """The initial state of a call: ``state`` if given, else the learned one (``None`` for
        zeros); and whether the learned one was used."""
        if state is not None or not self.learn_initial_state:
            return state, False
        full = [np.ascontiguousarray(np.broadcast_to(p[:, None, :], (p.shape[0], B, p.shape[1])))
                for p in self._state_params.values()]
        return (tuple(full) if self.rnn.has_cell else full[0]), True

    # ------------------------------------------------------------------ training
    def forward(self, X, lengths, state=None):
        """Run the network and keep what :meth:`backward` needs.

        Parameters
        ----------
        X : ndarray of shape (B, T, n_features) or integer ndarray of shape (B, T)
        lengths : ndarray of shape (B,)
        state : optional
            Initial state of the recurrent layer (see :meth:`fastrnn.nn.LSTM.forward`); overrides a
            learned initial state.

        Returns
        -------
        out : ndarray
            With a dense head: of shape (B, n_outputs) with pooling, else (B, T, n_outputs). With a
            softmax head: the hidden states (B, T, num_directions * hidden_size) that enter it.
        h_n : the recurrent layer's final state
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        ids = X
        if self.embedding is not None:
            X = self.embedding.forward(X)
        X, in_mask = self._dropout(X)
        state, learned = self._initial(state, len(lengths))
        tokens = self._tokens(ids, in_mask)
        Y, h_n = self.rnn.forward(X, lengths, state, tokens=tokens)
        Y, out_mask = self._dropout(Y)
        self._cache = dict(lengths=lengths, T=Y.shape[1], in_mask=in_mask, out_mask=out_mask,
                           pcache=None, learned=learned, tokens=tokens is not None)
        if isinstance(self.head, SoftmaxHead):
            return Y, h_n
        if self.pooling:
            Y, self._cache["pcache"] = pool(Y, lengths, self.pooling, self.rnn.num_directions,
                                            compiled=self.training)
            if self.bag_of_embeddings:
                Y = np.concatenate([Y, _bag(X, lengths)], axis=1)
        out = self.head.forward(Y)
        if self.linear is not None:
            out = out + self.linear.apply(ids, lengths)
        return out, h_n

    __call__ = forward

    def _tokens(self, ids, in_mask):
        """The recurrent layer's ``tokens`` argument in training: ``(ids, embedding weight)`` when
        its input is exactly the lookup of one id per step (no dropout mask on it, no bag of
        embeddings that needs its gradient), else None. Inference keeps the plain path, whose
        predictions do not depend on how float32 sums are grouped."""
        if (not self.training or self.embedding is None or in_mask is not None
                or self.bag_of_embeddings or np.ndim(ids) != 2):
            return None
        return ids, self.embedding.params["weight"]

    def loss_fn(self, targets, valid):
        """With ``head="softmax"``: the loss function of :meth:`fastrnn.train.Trainer.step`
        (see :meth:`fastrnn.nn.SoftmaxHead.loss_fn`)."""
        if not isinstance(self.head, SoftmaxHead):
            raise ValueError("loss_fn() belongs to a network with head='softmax'; compute the loss "
                             "of forward()'s output with a function of fastrnn.losses instead.")
        return self.head.loss_fn(targets, valid)

    def backward(self, dout, dh_n=None):
        """Back-propagate ``dout`` (the gradient of the loss w.r.t. ``out``) and optionally ``dh_n``.

        Fills ``grads`` and returns the gradient w.r.t. a float input (``None`` for token input).
        With a softmax head ``dout`` is the gradient of the hidden states that :meth:`loss_fn`
        returned, and the head's gradients are those that it computed.
        """
        c = self._cache
        if c is None:
            raise ValueError("backward() needs the cache of a forward(); call forward first.")
        dbag = None
        if isinstance(self.head, SoftmaxHead):
            dY = np.asarray(dout)
        else:
            dpooled = self.head.backward(np.asarray(dout, self.dtype))
            if self.bag_of_embeddings:
                F = dpooled.shape[1] - self.embedding.embedding_dim
                dpooled, dbag = dpooled[:, :F], dpooled[:, F:]
            dY = (pool_backward(dpooled, c["lengths"], self.pooling, c["T"], c["pcache"],
                                self.rnn.num_directions) if self.pooling else dpooled)
        if c["out_mask"] is not None:
            dY = dY * c["out_mask"]
        dX = self.rnn.backward(dY, dh_n)
        if dbag is not None:
            dX = dX + _bag_backward(dbag, c["lengths"], c["T"])
        if c["in_mask"] is not None:
            dX = dX * c["in_mask"]
        for (k, g), gh in zip(self._state_grads.items() if self._state_params else (),
                              self.rnn.grad_h0 if self.rnn.has_cell else (self.rnn.grad_h0,)):
            g[...] = gh.sum(axis=1) if c["learned"] else 0.0
        if self.embedding is not None:
            if c["tokens"]:  # the layer returned the gradient of the embedding weight
                g = self.embedding.grads["weight"]
                g[...] = dX
                if self.embedding.padding_idx is not None:
                    g[self.embedding.padding_idx] = 0.0
            else:
                self.embedding.backward(dX)
            if self.tie_weights:
                g = self.embedding.grads["weight"]
                g += self.head.grads["weight"]
                if self.embedding.padding_idx is not None:
                    g[self.embedding.padding_idx] = 0.0
            return None
        return dX

    # ------------------------------------------------------------------ inference
    def infer(self, X, lengths, state=None, output="head"):
        """Run the network in evaluation mode, keeping nothing and changing no state: safe to call
        from several threads at once.

        Parameters
        ----------
        X, lengths, state
            As for :meth:`forward`.
        output : {"head", "pooled", "hidden"}, default "head"
            What to return: the head's output (logits; with pooling one row per sequence), the
            pooled representation that enters the head (networks with pooling), or the recurrent
            outputs of every step (B, T, num_directions * hidden_size).

        Returns
        -------
        out : ndarray
        h_n : the recurrent layer's final state
        """
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        lengths = np.asarray(lengths, dtype=np.int64)
        ids = X
        if self.embedding is not None:
            X = self.embedding.lookup(X)
        state, _ = self._initial(state, len(lengths))
        Y, h_n = self.rnn.infer(X, lengths, state)
        if output == "hidden":
            return Y, h_n
        if self.pooling:
            Y, _ = pool(Y, lengths, self.pooling, self.rnn.num_directions)
            if self.bag_of_embeddings:
                Y = np.concatenate([Y, _bag(X, lengths)], axis=1)
        elif output == "pooled":
            raise ValueError("output='pooled' needs a network with pooling; this one has "
                             "pooling=None (use output='hidden').")
        if output == "pooled":
            return Y, h_n
        out = self.head.apply(Y)
        if self.linear is not None:
            out = out + self.linear.apply(ids, lengths)
        return out, h_n

    # ------------------------------------------------------------------ streaming
    def init_stream(self, n_streams=1, n_ids=1):
        """Preallocate a :class:`NetworkStream` for ``n_streams`` sequences read step by step
        (unidirectional networks only); ``n_ids`` token ids per step (token input)."""
        return NetworkStream(self, n_streams, n_ids)

    def step(self, x, stream):
        """Read one step of every stream; return the head's output after it.

        Parameters
        ----------
        x : ndarray of shape (n_streams, n_features) in the network's dtype, or integer ids of
            shape (n_streams,) (or (n_streams, K) for K ids per step, whose vectors are summed)
            Checked by the caller (the estimators validate their inputs).
        stream : NetworkStream
            From :meth:`init_stream`; advanced in place.

        Returns
        -------
        out : ndarray of shape (n_streams, n_outputs)
            The head's output for the sequences read so far (with pooling: of the running
            pooled representation). A buffer of ``stream`` that the next step overwrites.
        """
        s = stream
        if self.embedding is not None and np.ndim(x) == 2:
            np.take(self.embedding.params["weight"], x, axis=0, out=s.bag).sum(axis=1, out=s.x)
        elif self.embedding is not None:
            np.take(self.embedding.params["weight"], x, axis=0, out=s.x)
        else:
            np.copyto(s.x, x, casting="same_kind")
        y, _ = self.rnn.step(s.x, s.layer_state)
        s.steps += 1
        pooled = y
        if self.pooling == "mean":
            s.acc += y
            pooled = np.divide(s.acc, s.steps, out=s.pooled)
        elif self.pooling == "max":
            pooled = np.maximum(s.acc, y, out=s.acc)
        if self.bag_of_embeddings:
            s.bag_sum += s.x
            F = pooled.shape[1]
            s.head_in[:, :F] = pooled
            np.divide(s.bag_sum, np.sqrt(s.steps), out=s.head_in[:, F:])
            pooled = s.head_in
        np.dot(pooled, self.head.params["weight"].T, out=s.out)
        s.out += self.head.params["bias"]
        if self.linear is not None:
            s.out += s.linear.step(x)
        return s.out


def _bag(X, lengths):
    """The bag of embeddings: ``X`` (B, T, E) summed over each sequence's real steps and divided
    by the square root of its length, (B, E)."""
    real = (np.arange(X.shape[1])[None, :] < lengths[:, None]).astype(X.dtype)
    return np.einsum("bt,bte->be", real, X) / np.sqrt(lengths[:, None]).astype(X.dtype)


def _bag_backward(dbag, lengths, T):
    """Gradient of :func:`_bag`: ``dbag`` (B, E) -> (B, T, E), zero past each length."""
    real = (np.arange(T)[None, :] < lengths[:, None]).astype(dbag.dtype)
    scaled = dbag / np.sqrt(lengths[:, None]).astype(dbag.dtype)
    return real[:, :, None] * scaled[:, None, :]


class NetworkStream:
    """The carried state and buffers of a :class:`SequenceNetwork` read step by step.

    Attributes
    ----------
    n_streams : int
    steps : int
        Steps read since the start (or :meth:`reset`).
    out : ndarray of shape (n_streams, n_outputs)
        The head's output after the last step.
    """

    def __init__(self, net, n_streams, n_ids=1):
        B, dt, H = int(n_streams), net.dtype, net.rnn.hidden_size
        self.net = net
        self.n_streams = B
        self.layer_state = net.rnn.init_state(B)
        self.acc = np.empty((B, H), dt)  # running sum ("mean") or maximum ("max") of the outputs
        self.pooled = np.empty((B, H), dt)
        self.out = np.empty((B, net.head.params["bias"].shape[0]), dt)
        width = (net.embedding.params["weight"].shape[1] if net.embedding is not None
                 else net.n_features)
        self.x = np.empty((B, width), dt)
        self.bag = np.empty((B, int(n_ids), width), dt) if n_ids > 1 else None
        if net.bag_of_embeddings:  # running sum of the token vectors, and the head's input
            self.bag_sum = np.empty((B, width), dt)
            self.head_in = np.empty((B, net.head.in_features), dt)
        self.linear = None if net.linear is None else TokenLinearStream(net.linear, B)
        self.reset()

    def reset(self):
        """Start new sequences in every stream: the initial state (learned or zero), no steps."""
        ls = self.layer_state.reset()
        init = self.net._state_params
        if init:
            ls.h[...] = init["h0"][:, None, :]
            if ls.c is not None:
                ls.c[...] = init["c0"][:, None, :]
        self.steps = 0
        self.acc[...] = -np.inf if self.net.pooling == "max" else 0.0
        if self.net.bag_of_embeddings:
            self.bag_sum[...] = 0.0
        if self.linear is not None:
            self.linear.reset()
        return self
