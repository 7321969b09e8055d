r"""An encoder–decoder network with attention: a conditional language model of a target
sequence given a source sequence.

:class:`Seq2SeqNetwork` reads the source with the stacked (optionally bidirectional) recurrent
layers of :mod:`fastrnn.nn.recurrent`; a second recurrent layer, the decoder, starts from the
encoder's final state (through a learned linear "bridge" when the sizes differ) and reads the
embedding of the previous target token. At every target step an attention over the encoder's
outputs (masked by the source lengths) gives a context vector ``c_t``, and the output is a softmax
over the target vocabulary of Luong's attentional hidden state
:math:`\tilde h_t = \tanh(W_c [c_t; h_t] + b_c)` (Luong, Pham & Manning 2015, "Effective
approaches to attention-based neural machine translation", EMNLP). The attention scores are

* ``"dot"``: :math:`h_t^\top \bar h_s` (Luong);
* ``"general"``: :math:`h_t^\top W_a \bar h_s` (Luong);
* ``"additive"``: :math:`v^\top \tanh(W_q h_t + W_k \bar h_s)` (Bahdanau, Cho & Bengio 2015,
  "Neural machine translation by jointly learning to align and translate", ICLR);
* ``None``: no attention, the output reads :math:`h_t` itself.

With ``input_feeding`` the decoder also reads the previous step's :math:`\tilde h_{t-1}`
(Luong et al. 2015, section 3.3).

Training (teacher forcing) runs the decoder over the whole target sequence in one call of the
recurrent layer and the attention of all steps as batched matrix products. Input feeding and
scheduled sampling make a step depend on the previous one's output, so they run the decoder one
step at a time (a one-step call of the layer per step, back-propagated step by step in reverse).
Inference reads the source once and then advances the decoder one compiled step per target step
for a whole batch of beams (:class:`DecoderStream`: the layers' streaming step for a few rows, a
one-step call of the sequence kernel for many).
"""

import numpy as np

from .._backend import training_kernel
from .._config import check_dtype
from . import init as _init
from .layers import Dense, Embedding, pool
from .recurrent import CELLS

__all__ = ["Seq2SeqNetwork", "ATTENTIONS", "BOS", "EOS"]

ATTENTIONS = ("dot", "general", "additive", None)
#: target ids of the beginning- and end-of-sequence tokens
BOS, EOS = 0, 1
#: decoding advances at most this many rows (inputs times beam width) with the layers' streaming
#: step, more with a one-step call of the sequence kernel (see :class:`DecoderStream`)
STREAM_MAX_ROWS = 8
#: the logit given to the excluded outputs (``<bos>``): its probability is exactly 0 in float32
_EXCLUDED_LOGIT = -1e4


def _softmax_last(z):
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def _outer_sum(a, b):
    """``sum over the leading axes of a[..., i] * b[..., j]`` as one matrix product (BLAS)."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


class _Attention:
    """The attention of a decoder state over the encoder outputs and the combination of the two
    into the attentional hidden state.

    The parameters live in the network's ``params``; :meth:`forward` returns what
    :meth:`backward` needs, and :meth:`backward` returns the parameter gradients (the caller
    adds them up over the steps of a step-by-step decoder).
    """

    def __init__(self, kind, query_size, key_size, dtype, rng):
        self.kind = kind
        self.params = {}
        H, K = query_size, key_size
        if kind == "general":
            self.params["weight"] = _init.glorot_uniform((H, K), rng, dtype)
        elif kind == "additive":
            self.params["query"] = _init.glorot_uniform((H, H), rng, dtype)
            self.params["key"] = _init.glorot_uniform((H, K), rng, dtype)
            self.params["v"] = _init.uniform((H,), rng, dtype, 1.0 / np.sqrt(H))
        if kind is not None:
            self.params["combine_weight"] = _init.glorot_uniform((H, K + H), rng, dtype)
            self.params["combine_bias"] = np.zeros(H, dtype)

    def keys(self, K):
        """The projection of the encoder outputs ``K`` (B, S, key) that the scores read: ``K``
        itself ("dot"), ``K W_a^T`` ("general"), ``K W_k^T`` ("additive")."""
        if self.kind == "general":
            return K @ self.params["weight"].T
        if self.kind == "additive":
            return K @ self.params["key"].T
        return K

    def forward(self, Q, K, valid, Kp=None):
        """Attentional hidden states of the queries ``Q`` (B, T, H) over the keys ``K`` (B, S, key)
        of which ``valid`` (B, S) are real; ``Kp`` the precomputed :meth:`keys`.

        Returns ``(A, alpha, cache)``: ``A`` (B, T, H), the attention weights ``alpha`` (B, T, S)
        (zero at padded source steps)."""
        if self.kind is None:
            return Q, None, None
        if Kp is None:
            Kp = self.keys(K)
        Z = None
        if self.kind == "additive":
            Qp = Q @ self.params["query"].T
            Z = np.tanh(Qp[:, :, None, :] + Kp[:, None, :, :])  # (B, T, S, H)
            scores = Z @ self.params["v"]
        else:
            scores = Q @ Kp.transpose(0, 2, 1)
        # padded source steps get no weight, whatever their values (np.where: NaN cannot leak)
        scores = np.where(valid[:, None, :], scores, -np.inf)
        alpha = _softmax_last(scores)
        C = alpha @ K
        CQ = np.concatenate([C, Q], axis=-1)
        A = np.tanh(CQ @ self.params["combine_weight"].T + self.params["combine_bias"])
        return A, alpha, (Q, K, Kp, Z, alpha, CQ, A)

    def backward(self, dA, cache):
        """Gradients of the inputs and parameters of :meth:`forward` given ``dA`` (B, T, H):
        ``(dQ, dK, grads)``."""
        if self.kind is None:
            return dA, None, {}
        Q, K, Kp, Z, alpha, CQ, A = cache
        P = self.params
        g = {}
        dpre = dA * (1.0 - A * A)
        g["combine_weight"] = _outer_sum(dpre, CQ)
        g["combine_bias"] = dpre.sum(axis=(0, 1))
        dCQ = dpre @ P["combine_weight"]
        Ck = K.shape[-1]
        dC, dQ = dCQ[..., :Ck], dCQ[..., Ck:]
        dalpha = dC @ K.transpose(0, 2, 1)
        dK = alpha.transpose(0, 2, 1) @ dC
        dscores = alpha * (dalpha - np.sum(dalpha * alpha, axis=-1, keepdims=True))
        if self.kind == "additive":
            g["v"] = dscores.reshape(-1) @ Z.reshape(-1, Z.shape[-1])
            dpz = dscores[..., None] * P["v"] * (1.0 - Z * Z)  # (B, T, S, H)
            dQp, dKp = dpz.sum(axis=2), dpz.sum(axis=1)
            g["query"] = _outer_sum(dQp, Q)
            dQ = dQ + dQp @ P["query"]
            g["key"] = _outer_sum(dKp, K)
            dK = dK + dKp @ P["key"]
        else:
            dQ = dQ + dscores @ Kp
            dKp = dscores.transpose(0, 2, 1) @ Q
            if self.kind == "general":
                g["weight"] = _outer_sum(dKp, K)
                dK = dK + dKp @ P["weight"]
            else:
                dK = dK + dKp
        return dQ, dK, g


class Seq2SeqNetwork:
    r"""Encoder (recurrent layers over the source) → bridge → decoder with attention → softmax
    over the target vocabulary (see the module docstring for the equations).

    Parameters
    ----------
    n_outputs : int
        Size of the target vocabulary, ``<bos>`` (id :data:`BOS` = 0) and ``<eos>``
        (id :data:`EOS` = 1) included.
    n_features : int, optional
        Features per step of a float source ``(B, S, n_features)``. Exactly one of ``n_features``
        and ``vocab_size`` is given.
    vocab_size : int, optional
        Size of the source token vocabulary (integer source ``(B, S)``, ``PAD`` = 0);
        needs ``embedding_dim``.
    embedding_dim : int, optional
        Size of the source token vectors.
    target_embedding_dim : int
        Size of the target token vectors that the decoder reads.
    cell : {"rnn", "lstm", "gru", "mingru", "minlstm", "indrnn"}, default "lstm"
        The cell of the encoder and of the decoder.
    hidden_size : int, default 64
        Units per direction of the encoder, and of the decoder.
    num_layers : int, default 1
        Layers of the encoder, and of the decoder.
    bidirectional : bool, default False
        A bidirectional encoder (the decoder is unidirectional). Its final state of each layer,
        forward and backward halves concatenated, goes through the bridge, a learned linear map
        from ``2 * hidden_size`` to ``hidden_size`` (one for ``h``, one for an LSTM's ``c``).
    attention : {"dot", "general", "additive"} or None, default "general"
        ``"dot"`` needs encoder outputs of the decoder's size (a unidirectional encoder).
    input_feeding : bool, default False
    dropout : float, default 0
        Inverted dropout (training only) on the source and target token vectors, between stacked
        layers, and on the attentional hidden state before the output layer.
    recurrent_dropout : float, default 0
        Of the recurrent layers (see :class:`fastrnn.nn.LSTM`).
    cell_options : dict, optional
        Extra arguments of the cell (as for :class:`fastrnn.nn.SequenceNetwork`).
    dtype : {np.float32, np.float64}
    backend : {"auto", "numba", "cython", "cuda", "numpy"}
    random_state : int, RandomState or None

    Attributes
    ----------
    config : dict
        The constructor arguments but ``backend`` and ``random_state`` (JSON-able).
    params, grads : dict of str to ndarray
        ``src_embedding.weight``, ``encoder.*``, ``bridge_h.*`` / ``bridge_c.*``,
        ``tgt_embedding.weight``, ``decoder.*``, ``attention.*``, ``out.weight``, ``out.bias``.
        The blocks' own arrays: an optimiser stepping ``params`` in place updates the network.

    Notes
    -----
    :meth:`forward` / :meth:`backward` train (the protocol of :class:`fastrnn.train.Trainer`:
    ``X`` is the triple ``(source, target_in, target_lengths)``). :meth:`logits`,
    :meth:`encode` and the decoding methods change no state of the network.
    """

    def __init__(self, n_outputs, n_features=None, vocab_size=None, embedding_dim=None,
                 target_embedding_dim=16, cell="lstm", hidden_size=64, num_layers=1,
                 bidirectional=False, attention="general", input_feeding=False, dropout=0.0,
                 recurrent_dropout=0.0, cell_options=None, dtype=np.float32, backend="auto",
                 random_state=None):
        if (n_features is None) == (vocab_size is None):
            raise ValueError("give exactly one of n_features (float source) and vocab_size "
                             f"(token ids), got n_features={n_features!r}, "
                             f"vocab_size={vocab_size!r}.")
        if vocab_size is not None and not embedding_dim:
            raise ValueError("a token source (vocab_size) needs embedding_dim, got "
                             f"embedding_dim={embedding_dim!r}.")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}.")
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}.")
        if int(n_outputs) < 3:
            raise ValueError(f"n_outputs counts <bos>, <eos> and the target tokens, so it is at "
                             f"least 3, got {n_outputs!r}.")
        D = 2 if bidirectional else 1
        if attention == "dot" and D != 1:
            raise ValueError(
                "attention='dot' scores a decoder state against encoder outputs of the same size, "
                f"but a bidirectional encoder gives 2 * hidden_size = {2 * hidden_size} values "
                f"per step against the decoder's {hidden_size}. Use attention='general' or "
                "'additive', or bidirectional=False.")
        self.config = dict(
            n_outputs=int(n_outputs), n_features=n_features, vocab_size=vocab_size,
            embedding_dim=embedding_dim, target_embedding_dim=int(target_embedding_dim),
            cell=cell, hidden_size=int(hidden_size), num_layers=int(num_layers),
            bidirectional=bool(bidirectional), attention=attention,
            input_feeding=bool(input_feeding), dropout=float(dropout),
            recurrent_dropout=float(recurrent_dropout), cell_options=dict(cell_options or {}),
            dtype=np.dtype(dtype).name)
        self.dtype = dt = check_dtype(dtype)
        self.n_outputs = int(n_outputs)
        self.hidden_size = H = int(hidden_size)
        self.attention = attention
        self.input_feeding = bool(input_feeding)
        self.dropout = float(dropout)
        #: the scheduled-sampling rate of :meth:`forward` (a training setting, not saved)
        self.scheduled_sampling = 0.0
        self.training = True
        self.rng_ = _init.check_random_state(random_state)
        seed = lambda: self.rng_.randint(np.iinfo(np.int32).max)  # noqa: E731
        opts = dict(cell_options or {})
        self.src_embedding = None
        if vocab_size is not None:
            self.src_embedding = Embedding(vocab_size, embedding_dim, dtype=dt,
                                           random_state=seed(), backend=backend)
            n_in = int(embedding_dim)
        else:
            n_in = int(n_features)
        rec = dict(dropout=dropout, recurrent_dropout=recurrent_dropout, dtype=dt,
                   backend=backend, **opts)
        self.encoder = CELLS[cell](n_in, H, num_layers, bidirectional=bidirectional,
                                   random_state=seed(), **rec)
        self.bridge_h = self.bridge_c = None
        if D == 2:
            self.bridge_h = Dense(2 * H, H, dtype=dt, random_state=seed())
            if self.encoder.has_cell:
                self.bridge_c = Dense(2 * H, H, dtype=dt, random_state=seed())
        E = int(target_embedding_dim)
        self.tgt_embedding = Embedding(self.n_outputs, E, padding_idx=None, dtype=dt,
                                       random_state=seed(), backend=backend)
        self.decoder = CELLS[cell](E + (H if self.input_feeding else 0), H, num_layers,
                                   random_state=seed(), **rec)
        self.attn = _Attention(attention, H, D * H, dt, np.random.RandomState(seed()))
        self.out = Dense(H, self.n_outputs, dtype=dt, random_state=seed())
        self.excluded = (BOS,)
        self.params, self.grads = {}, {}
        blocks = [("src_embedding", self.src_embedding), ("encoder", self.encoder),
                  ("bridge_h", self.bridge_h), ("bridge_c", self.bridge_c),
                  ("tgt_embedding", self.tgt_embedding), ("decoder", self.decoder),
                  ("out", self.out)]
        for prefix, block in blocks:
            if block is None:
                continue
            for k, v in block.params.items():
                self.params[f"{prefix}.{k}"] = v
                self.grads[f"{prefix}.{k}"] = block.grads[k]
        self.attn.grads = {k: np.zeros_like(v) for k, v in self.attn.params.items()}
        for k, v in self.attn.params.items():
            self.params[f"attention.{k}"] = v
            self.grads[f"attention.{k}"] = self.attn.grads[k]
        self._cache = None

    # ------------------------------------------------------------------ modes and state
    @property
    def embedding(self):
        """The source embedding (``None`` for a float source)."""
        return self.src_embedding

    @property
    def num_directions(self):
        return self.encoder.num_directions

    @property
    def has_cell(self):
        return self.encoder.has_cell

    def train(self, mode=True):
        """Switch dropout on (``mode=True``) or off; returns the network."""
        self.training = bool(mode)
        self.encoder.train(mode)
        self.decoder.train(mode)
        return self

    def eval(self):
        """Switch dropout off; returns the network."""
        return self.train(False)

    def constraints(self):
        """The encoder's and decoder's ``constraints()``, under the network's parameter names."""
        return {f"{prefix}.{k}": bound for prefix, layer in (("encoder", self.encoder),
                                                             ("decoder", self.decoder))
                for k, bound in layer.constraints().items()}

    def constrain(self):
        """Clip the constrained parameters into their bounds (after an update)."""
        self.encoder.constrain()
        self.decoder.constrain()

    def state_dict(self):
        """Copies of all parameters (see ``params``)."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Copy the arrays of ``state`` (names as in ``params``) into the parameters."""
        from ._checks import check_state_dict

        for k, v in check_state_dict(state, self.params, "network").items():
            self.params[k][...] = v

    def release(self):
        """Drop what the last :meth:`forward` kept for :meth:`backward`; returns the network."""
        self._cache = None
        self.encoder._cache = self.decoder._cache = None
        self.out._X = None
        for block in (self.src_embedding, self.tgt_embedding):
            if block is not None:
                block._ids = None
        for block in (self.bridge_h, self.bridge_c):
            if block is not None:
                block._X = None
        return self

    def _dropout(self, X, training):
        """Inverted dropout on ``X`` in training: ``(X * mask, mask)``, or ``(X, None)``."""
        if not (training and self.dropout > 0):
            return X, None
        seed = self.rng_.randint(np.iinfo(np.int32).max)
        return training_kernel("dropout")(X, self.dropout, seed, self.dtype)

    # ------------------------------------------------------------------ encoder and bridge
    def _encode(self, X, lengths, training):
        """Encoder outputs (B, S, D*H), the decoder's initial state, and the cache."""
        if self.src_embedding is not None:
            X = (self.src_embedding.forward(X) if training
                 else self.src_embedding.lookup(X))
        X, mask = self._dropout(X, training)
        if training:
            Henc, hn = self.encoder.forward(X, lengths)
        else:
            Henc, hn = self.encoder.infer(X, lengths)
        h0 = self._bridge(hn, training)
        return Henc, h0, mask

    def _bridge(self, hn, training):
        """The encoder's final state (num_layers * D, B, H) -> the decoder's (num_layers, B, H):
        unchanged for a unidirectional encoder, else each layer's two halves concatenated and
        mapped linearly."""
        if self.num_directions == 1:
            return hn
        parts = hn if self.has_cell else (hn,)
        out = []
        for part, dense in zip(parts, (self.bridge_h, self.bridge_c)):
            LD, B, H = part.shape
            cat = part.reshape(LD // 2, 2, B, H).transpose(0, 2, 1, 3).reshape(LD // 2, B, 2 * H)
            out.append(np.ascontiguousarray(dense.forward(cat) if training else dense.apply(cat)))
        return tuple(out) if self.has_cell else out[0]

    def _bridge_backward(self, dh0):
        if self.num_directions == 1:
            return dh0
        parts = dh0 if self.has_cell else (dh0,)
        out = []
        for part, dense in zip(parts, (self.bridge_h, self.bridge_c)):
            L, B, H = part.shape
            dcat = dense.backward(np.ascontiguousarray(part, self.dtype))
            out.append(np.ascontiguousarray(
                dcat.reshape(L, B, 2, H).transpose(0, 2, 1, 3).reshape(2 * L, B, H)))
        return tuple(out) if self.has_cell else out[0]

    # ------------------------------------------------------------------ training
    def forward(self, X, lengths, state=None, sampling=None):
        """Teacher-forced logits of every target step, keeping what :meth:`backward` needs.

        Parameters
        ----------
        X : tuple ``(source, target_in, target_lengths)``
            ``source``: float array (B, S, n_features) or token ids (B, S); ``target_in``:
            integer ids (B, T) whose row ``b`` is ``<bos>`` followed by the target tokens of
            sequence ``b`` (padded with anything past ``target_lengths[b]``);
            ``target_lengths``: (B,), the length of each target plus one.
        lengths : ndarray of shape (B,)
            The source lengths; source steps past them are never read (NaN may be there).
        state : None
            Unused (the decoder starts from the encoder's state); part of the trainer's protocol.
        sampling : float, optional
            Scheduled sampling (Bengio et al. 2015, "Scheduled sampling for sequence
            prediction with recurrent neural networks", NeurIPS): the probability that a step
            reads the model's own most probable token of the previous step instead of the true
            one. Default: the attribute ``scheduled_sampling`` (0 unless set).

        Returns
        -------
        logits : ndarray of shape (B, T, n_outputs)
            ``<bos>`` gets a logit of -1e4 (probability 0).
        h_n : None
        """
        src, yin, ylen = X
        if sampling is None:
            sampling = self.scheduled_sampling
        lengths = np.asarray(lengths, np.int64)
        ylen = np.asarray(ylen, np.int64)
        yin = np.asarray(yin)
        Henc, h0, src_mask = self._encode(src, lengths, True)
        valid = np.arange(Henc.shape[1])[None, :] < lengths[:, None]
        c = dict(src_mask=src_mask, lengths=lengths, S=Henc.shape[1])
        if self.input_feeding or sampling > 0:
            A, ids, cache = self._decode_steps(yin, ylen, h0, Henc, valid, sampling)
            c.update(mode="steps", steps=cache)
            self.tgt_embedding.forward(ids)  # the ids read, for the embedding's backward
        else:
            E, tgt_mask = self._dropout(self.tgt_embedding.forward(yin), True)
            Hd, _ = self.decoder.forward(E, ylen, h0)
            A, _, acache = self.attn.forward(Hd, Henc, valid)
            c.update(mode="parallel", tgt_mask=tgt_mask, acache=acache)
        A, out_mask = self._dropout(A, True)
        c["out_mask"] = out_mask
        logits = self.out.forward(A)
        logits[..., list(self.excluded)] = _EXCLUDED_LOGIT
        self._cache = c
        return logits, None

    __call__ = forward

    def _decode_steps(self, yin, ylen, h0, Henc, valid, sampling):
        """The decoder one step at a time (training): attentional states (B, T, H), the ids
        read, and the per-step caches."""
        B, T = yin.shape
        H, W = self.hidden_size, self.tgt_embedding.params["weight"]
        Kp = self.attn.keys(Henc) if self.attention is not None else None
        prev = np.zeros((B, H), self.dtype)
        ids = np.array(yin, dtype=np.intp)
        A = np.empty((B, T, H), self.dtype)
        h, steps = h0, []
        for t in range(T):
            x, emask = self._dropout(W[ids[:, t]], True)
            inp = np.concatenate([x, prev], axis=1) if self.input_feeding else x
            y, h = self.decoder.forward(inp[:, None, :], None, h)
            a, _, acache = self.attn.forward(y, Henc, valid, Kp)
            A[:, t] = a[:, 0]
            prev = a[:, 0]
            steps.append((self.decoder._cache, acache, emask))
            if sampling > 0 and t + 1 < T:
                pick = self.rng_.random_sample(B) < sampling
                if pick.any():
                    z = a[:, 0] @ self.out.params["weight"].T + self.out.params["bias"]
                    z[:, list(self.excluded)] = -np.inf
                    ids[pick, t + 1] = np.argmax(z[pick], axis=1)
        return A, ids, steps

    def backward(self, dout, dh_n=None):
        """Back-propagate ``dout`` (the gradient of the loss w.r.t. the logits); fills
        ``grads``. Returns the gradient w.r.t. a float source (``None`` for token ids)."""
        c = self._cache
        if c is None:
            raise ValueError("backward() needs the cache of a forward(); call forward first.")
        dout = np.array(dout, dtype=self.dtype)
        dout[..., list(self.excluded)] = 0.0  # those logits are constants
        dA = self.out.backward(dout)
        if c["out_mask"] is not None:
            dA = dA * c["out_mask"]
        if c["mode"] == "parallel":
            dHd, dHenc, g = self.attn.backward(dA, c["acache"])
            dE = self.decoder.backward(dHd)
            dh0 = self.decoder.grad_h0
            if c["tgt_mask"] is not None:
                dE = dE * c["tgt_mask"]
        else:
            dE, dHenc, dh0, g = self._steps_backward(dA, c["steps"])
        for k, v in self.attn.grads.items():
            v[...] = g.get(k, 0.0)
        self.tgt_embedding.backward(dE)
        dhn = self._bridge_backward(dh0)
        if dHenc is None:
            dHenc = np.zeros((len(c["lengths"]), c["S"], self.num_directions * self.hidden_size),
                             self.dtype)
        dX = self.encoder.backward(np.asarray(dHenc, self.dtype), dhn)
        if c["src_mask"] is not None:
            dX = dX * c["src_mask"]
        if self.src_embedding is not None:
            self.src_embedding.backward(dX)
            return None
        return dX

    def _steps_backward(self, dA, steps):
        B, T, H = dA.shape
        dec = self.decoder
        E = self.tgt_embedding.embedding_dim
        total = {k: np.zeros_like(v) for k, v in dec.grads.items()}
        gsum = {}
        dE = np.zeros((B, T, E), self.dtype)
        dHenc, dprev, dh = None, 0.0, None
        for t in range(T - 1, -1, -1):
            rcache, acache, emask = steps[t]
            dQ, dK, g = self.attn.backward(dA[:, t:t + 1] + dprev, acache)
            for k, v in g.items():
                gsum[k] = gsum.get(k, 0.0) + v
            if dK is not None:
                dHenc = dK if dHenc is None else dHenc + dK
            dec._cache = rcache
            dinp = dec.backward(np.ascontiguousarray(dQ, self.dtype), dh)[:, 0]
            for k, v in dec.grads.items():
                total[k] += v
            dh = dec.grad_h0
            dx = dinp[:, :E]
            dE[:, t] = dx if emask is None else dx * emask
            if self.input_feeding:
                dprev = dinp[:, None, E:]
        for k, v in total.items():
            dec.grads[k][...] = v
        return dE, dHenc, dh, gsum

    # ------------------------------------------------------------------ inference
    def logits(self, X, lengths):
        """:meth:`forward` in evaluation mode, keeping nothing (safe from several threads):
        teacher-forced logits (B, T, n_outputs) of ``X = (source, target_in, target_lengths)``."""
        src, yin, ylen = X
        lengths = np.asarray(lengths, np.int64)
        Henc, h0, _ = self._encode(src, lengths, False)
        valid = np.arange(Henc.shape[1])[None, :] < lengths[:, None]
        yin = np.asarray(yin)
        if self.input_feeding:
            dec = self.start(Henc, h0, lengths)
            A = np.empty(yin.shape + (self.hidden_size,), self.dtype)
            for t in range(yin.shape[1]):
                A[:, t] = self.attend_step(yin[:, t], dec)
        else:
            E = self.tgt_embedding.lookup(yin)
            Hd, _ = self.decoder.infer(E, np.asarray(ylen, np.int64), h0)
            A, _, _ = self.attn.forward(Hd, Henc, valid)
        z = self.out.apply(A)
        z[..., list(self.excluded)] = _EXCLUDED_LOGIT
        return z

    def encode(self, X, lengths):
        """Encoder outputs (B, S, num_directions * hidden_size) (zero past each length) and the
        decoder's initial state, in evaluation mode."""
        Henc, h0, _ = self._encode(X, np.asarray(lengths, np.int64), False)
        return Henc, h0

    def pooled(self, X, lengths):
        """The encoder's pooled representation (B, num_directions * hidden_size): the output at
        the last real step (a bidirectional encoder: its backward half at the first step)."""
        lengths = np.asarray(lengths, np.int64)
        Henc, _ = self.encode(X, lengths)
        return pool(Henc, lengths, "last", self.num_directions)[0]

    def start(self, Henc, h0, lengths, repeat=1, streaming=None):
        """A :class:`DecoderStream` for step-by-step decoding of the encoded batch, each source
        repeated ``repeat`` times (a beam). ``streaming``: advance the decoder with the layer's
        streaming step (default: for at most :data:`STREAM_MAX_ROWS` rows)."""
        return DecoderStream(self, Henc, h0, lengths, repeat, streaming)

    def attend_step(self, ids, dec):
        """Advance ``dec`` by one step reading the tokens ``ids`` (n,); return the attentional
        states (n, hidden_size) (a buffer of ``dec``)."""
        W = self.tgt_embedding.params["weight"]
        E = W.shape[1]
        np.take(W, ids, axis=0, out=dec.x[:, :E])
        if self.input_feeding:
            dec.x[:, E:] = dec.prev
        y = dec.advance(dec.x)
        a, alpha, _ = self.attn.forward(y[:, None, :], dec.K, dec.valid, dec.Kp)
        dec.prev[...] = a[:, 0]
        dec.alpha = None if alpha is None else alpha[:, 0]
        return dec.prev

    def step_log_probs(self, ids, dec):
        """Advance ``dec`` reading ``ids`` and return the log-probabilities (n, n_outputs) of
        the next token, in float64 (``<bos>``: -inf)."""
        a = self.attend_step(ids, dec)
        z = (a @ self.out.params["weight"].T + self.out.params["bias"]).astype(np.float64)
        z[:, list(self.excluded)] = -np.inf
        z -= z.max(axis=1, keepdims=True)
        z -= np.log(np.exp(z).sum(axis=1, keepdims=True))
        return z


class DecoderStream:
    """The state of a decoder run step by step over an encoded batch (see
    :meth:`Seq2SeqNetwork.start`): the decoder's state, the encoder outputs and their
    projections, the previous attentional state.

    A few rows (one input, a narrow beam) advance with the layer's streaming step
    (:meth:`fastrnn.nn.LSTM.step`, bound once to the weights: microseconds a step); more rows
    with a one-step call of the layer's sequence kernel (:meth:`fastrnn.nn.LSTM.infer`), whose
    matrix products over all rows at once cost far less there than the streaming step's row by
    row arithmetic. Both compute the same step.
    """

    def __init__(self, net, Henc, h0, lengths, repeat=1, streaming=None):
        r = int(repeat)
        lengths = np.asarray(lengths, np.int64)
        n = len(lengths) * r
        self.net = net
        self.K = np.repeat(Henc, r, axis=0) if r > 1 else Henc
        self.valid = np.repeat(np.arange(Henc.shape[1])[None, :] < lengths[:, None], r, axis=0)
        self.Kp = net.attn.keys(self.K) if net.attention is not None else None
        hs = [np.repeat(a, r, axis=1) if r > 1 else np.array(a)
              for a in (h0 if net.has_cell else (h0,))]
        if streaming is None:
            streaming = n <= STREAM_MAX_ROWS
        self.state = None
        if streaming:
            self.state = net.decoder.init_state(n)
            for dst, src in zip((self.state.h, self.state.c), hs):
                dst[...] = src
        else:
            self.h = tuple(hs) if net.has_cell else hs[0]
        self.x = np.empty((n, net.decoder.input_size), net.dtype)
        self.prev = np.zeros((n, net.hidden_size), net.dtype)
        self.alpha = None

    def advance(self, x):
        """One step of the decoder reading ``x`` (n, input_size); returns its output (n, H)."""
        if self.state is not None:
            return self.net.decoder.step(x, self.state)[0]
        y, self.h = self.net.decoder.infer(x[:, None, :], None, self.h)
        return y[:, 0]

    def reorder(self, rows):
        """Keep the rows ``rows`` of the state (a beam's surviving hypotheses)."""
        if self.state is not None:
            s = self.state
            s.h[...] = s.h[:, rows]
            if s.c is not None:
                s.c[...] = s.c[:, rows]
        elif self.net.has_cell:
            self.h = (self.h[0][:, rows], self.h[1][:, rows])
        else:
            self.h = self.h[:, rows]
        self.prev[...] = self.prev[rows]
