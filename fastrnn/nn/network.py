"""A whole sequence network: optional embedding, stacked recurrent layers, pooling, dense head."""

import numpy as np

from .._config import check_dtype
from . import init as _init
from ._checks import check_state_dict
from .layers import POOLINGS, Dense, Embedding, pool, pool_backward
from .recurrent import GRU, LSTM, RNN

__all__ = ["SequenceNetwork", "CELLS"]

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class SequenceNetwork:
    r"""Input (features or token ids) → [Embedding] → recurrent layers → [pooling] → Dense.

    With ``pooling`` set, the network maps each sequence to one output vector (classification,
    regression, encoding); with ``pooling=None`` it maps every step to an output vector (tagging,
    language modelling).

    Parameters
    ----------
    n_outputs : int
        Size of the dense head's output (classes, targets or vocabulary size).
    n_features : int, optional
        Features per step of a float input ``(B, T, n_features)``. Exactly one of ``n_features`` and
        ``vocab_size`` is given.
    vocab_size : int, optional
        Size of the token vocabulary of an integer input ``(B, T)``; needs ``embedding_dim``.
    embedding_dim : int, optional
    cell : {"rnn", "lstm", "gru"}, default "lstm"
    hidden_size, num_layers, bidirectional, recurrent_dropout, dtype, backend
        Passed to the recurrent layer.
    dropout : float, default 0
        Inverted dropout (training mode only) between stacked layers, on the embeddings and on the
        recurrent outputs before the head (Zaremba et al. 2014: dropout on non-recurrent connections).
    pooling : {"last", "mean", "max"} or None, default "last"
    learn_initial_state : bool, default False
        Learn the initial state ``h0`` (and ``c0``) as parameters shared by all sequences.
    tie_weights : bool, default False
        Share the embedding matrix with the head's weight (Press & Wolf 2017); needs
        ``pooling=None``, token input and ``embedding_dim == num_directions * hidden_size``.
    cell_options : dict, optional
        Extra arguments of the cell (``nonlinearity``, ``reset_after``, ``forget_bias``, ``peephole``,
        ``input_gate``, ``forget_gate``, ``output_gate``, ``init``).
    random_state : int, RandomState or None

    Attributes
    ----------
    config : dict
        The constructor arguments except ``backend`` and ``random_state`` (JSON-able), so that
        ``SequenceNetwork(**config)`` rebuilds the architecture of a saved network.
    params, grads : dict of str to ndarray
        All parameters, prefixed by their block: ``embedding.weight``, ``rnn.weight_ih_l0``, ...,
        ``head.weight``, ``head.bias``, ``h0``, ``c0``. The arrays are the blocks' own arrays, so an
        optimiser stepping ``params`` in place updates the network.
    """

    def __init__(self, n_outputs, n_features=None, vocab_size=None, embedding_dim=None, cell="lstm",
                 hidden_size=64, num_layers=1, bidirectional=False, dropout=0.0,
                 recurrent_dropout=0.0, pooling="last", learn_initial_state=False,
                 tie_weights=False, cell_options=None, dtype=np.float32, backend="auto",
                 random_state=None):
        if (n_features is None) == (vocab_size is None):
            raise ValueError("give exactly one of n_features (float input) and vocab_size (token ids).")
        if vocab_size is not None and not embedding_dim:
            raise ValueError("token input (vocab_size) needs embedding_dim, got "
                             f"embedding_dim={embedding_dim!r}.")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        if pooling is not None and pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS} or None, got {pooling!r}.")
        self.config = dict(
            n_outputs=n_outputs, n_features=n_features, vocab_size=vocab_size,
            embedding_dim=embedding_dim, cell=cell, hidden_size=hidden_size, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, recurrent_dropout=recurrent_dropout,
            pooling=pooling, learn_initial_state=learn_initial_state, tie_weights=tie_weights,
            cell_options=dict(cell_options or {}), dtype=np.dtype(dtype).name)
        self.dtype = check_dtype(dtype)
        self.pooling = pooling
        self.dropout = float(dropout)
        self.training = True
        self.rng_ = _init.check_random_state(random_state)
        seed = lambda: self.rng_.randint(np.iinfo(np.int32).max)  # noqa: E731
        self.embedding = None
        if vocab_size is not None:
            self.embedding = Embedding(vocab_size, embedding_dim, dtype=self.dtype, random_state=seed())
            n_in = int(embedding_dim)
        else:
            n_in = int(n_features)
        self.n_features = n_in
        self.rnn = CELLS[cell](n_in, hidden_size, num_layers, bidirectional=bidirectional,
                               dropout=dropout, recurrent_dropout=recurrent_dropout, dtype=self.dtype,
                               backend=backend, random_state=seed(), **(cell_options or {}))
        D = self.rnn.num_directions
        self.head = Dense(D * hidden_size, n_outputs, dtype=self.dtype, random_state=seed())
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

    # ------------------------------------------------------------------ modes and state
    def train(self, mode=True):
        self.training = bool(mode)
        self.rnn.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        for k, v in check_state_dict(state, self.params, "network").items():
            self.params[k][...] = v

    def _dropout(self, X):
        if not (self.training and self.dropout > 0):
            return X, None
        keep = 1.0 - self.dropout
        mask = (self.rng_.random_sample(X.shape) < keep).astype(self.dtype) / keep
        return X * mask, mask

    # ------------------------------------------------------------------ forward / backward
    def forward(self, X, lengths, state=None):
        """Run the network.

        Parameters
        ----------
        X : ndarray of shape (B, T, n_features) or integer ndarray of shape (B, T)
        lengths : ndarray of shape (B,)
        state : optional
            Initial state of the recurrent layer (see :meth:`fastrnn.nn.LSTM.forward`); overrides a
            learned initial state.

        Returns
        -------
        out : ndarray of shape (B, n_outputs) with pooling, else (B, T, n_outputs)
        h_n : the recurrent layer's final state
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        if self.embedding is not None:
            X = self.embedding.forward(X)
        X, in_mask = self._dropout(X)
        if state is None and self.learn_initial_state:
            B = len(lengths)
            full = [np.ascontiguousarray(np.broadcast_to(p[:, None, :], (p.shape[0], B, p.shape[1])))
                    for p in self._state_params.values()]
            state = tuple(full) if self.rnn.has_cell else full[0]
            learned = True
        else:
            learned = False
        Y, h_n = self.rnn.forward(X, lengths, state)
        Y, out_mask = self._dropout(Y)
        pooled, pcache = (pool(Y, lengths, self.pooling, self.rnn.num_directions)
                          if self.pooling else (Y, None))
        out = self.head.forward(pooled)
        self._cache = dict(lengths=lengths, T=Y.shape[1], in_mask=in_mask, out_mask=out_mask,
                           pcache=pcache, learned=learned)
        return out, h_n

    __call__ = forward

    def backward(self, dout, dh_n=None):
        """Back-propagate ``dout`` (the gradient of the loss w.r.t. ``out``) and optionally ``dh_n``.

        Fills ``grads`` and returns the gradient w.r.t. a float input (``None`` for token input).
        """
        c = self._cache
        if c is None:
            raise ValueError("backward() needs the cache of a forward(); call forward first.")
        dpooled = self.head.backward(np.asarray(dout, self.dtype))
        dY = (pool_backward(dpooled, c["lengths"], self.pooling, c["T"], c["pcache"],
                            self.rnn.num_directions) if self.pooling else dpooled)
        if c["out_mask"] is not None:
            dY = dY * c["out_mask"]
        dX = self.rnn.backward(dY, dh_n)
        if c["in_mask"] is not None:
            dX = dX * c["in_mask"]
        for (k, g), gh in zip(self._state_grads.items() if self._state_params else (),
                              self.rnn.grad_h0 if self.rnn.has_cell else (self.rnn.grad_h0,)):
            g[...] = gh.sum(axis=1) if c["learned"] else 0.0
        if self.embedding is not None:
            self.embedding.backward(dX)
            if self.tie_weights:
                g = self.embedding.grads["weight"]
                g += self.head.grads["weight"]
                if self.embedding.padding_idx is not None:
                    g[self.embedding.padding_idx] = 0.0
            return None
        return dX
