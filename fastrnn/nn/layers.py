"""Building blocks around the recurrent layers: token embedding, dense head, pooling over real steps.

Each block follows the recurrent layers' protocol: ``params`` and ``grads`` dicts of numpy arrays,
``forward`` caches what ``backward`` needs, and ``backward`` overwrites ``grads``.
"""

import numpy as np

from .._backend import check_name, get_backend, route, training_kernel
from .._config import check_dtype
from ..losses import blocked_log_probs, blocked_softmax_cross_entropy
from . import init as _init

__all__ = ["Embedding", "Dense", "SoftmaxHead", "pool", "pool_backward", "POOLINGS"]

POOLINGS = ("last", "mean", "max")


class Embedding:
    """Token embedding: ids of shape (B, T) to vectors of shape (B, T, embedding_dim).

    Ids of shape (B, T, K) (several ids per step, e.g. a word and its subword features) give the
    sum of their ``K`` vectors at each step (an "embedding bag"); ``PAD`` ids add nothing.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size ``V``; ids must lie in ``[0, V)``.
    embedding_dim : int
    padding_idx : int or None, default 0
        Id whose vector is kept at zero and never receives a gradient (the ``PAD`` token).
    dtype : {np.float32, np.float64}
    backend : {"auto", "numba", "cython", "cuda", "numpy"}, default "auto"
        The backend whose kernels sum the vectors of the ids and scatter their gradients, chosen
        as for the recurrent layers; the arrays stay in host memory on every backend.
    random_state : int, RandomState or None
        Vectors are drawn from ``N(0, 1) / sqrt(embedding_dim)``.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=0, dtype=np.float32,
                 random_state=None, backend="auto"):
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.padding_idx = padding_idx
        self.dtype = check_dtype(dtype)
        #: the ``backend`` argument: "auto" or a backend's name
        self.backend = check_name(backend)
        rng = _init.check_random_state(random_state)
        w = (rng.normal(size=(self.num_embeddings, self.embedding_dim))
             / np.sqrt(self.embedding_dim)).astype(self.dtype)
        if padding_idx is not None:
            w[padding_idx] = 0.0
        self.params = {"weight": w}
        self.grads = {"weight": np.zeros_like(w)}
        self._ids = None

    def forward(self, ids):
        """Look up ``ids`` (integers of shape (B, T) or (B, T, K)); returns (B, T, embedding_dim)
        and keeps the ids for :meth:`backward`."""
        out, table = self._lookup(ids, route(self.backend))
        self._ids = table
        return out

    def lookup(self, ids):
        """:meth:`forward` without keeping anything (inference; safe from several threads)."""
        ids = np.asarray(ids)
        one = ids.ndim >= 2 and ids.shape[0] == 1
        return self._lookup(ids, route(self.backend, "infer1" if one else None))[0]

    def _lookup(self, ids, backend):
        """The vectors of ``ids`` and the table of ids the kernels read: ``(R, K)``, ``np.intp``,
        one row per step."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers, got dtype {ids.dtype}.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            bad = ids[(ids < 0) | (ids >= self.num_embeddings)].flat[0]
            raise ValueError(
                f"token id {bad} is out of range [0, {self.num_embeddings}); encode the text with "
                "the same vocabulary the model was built with (unknown tokens map to UNK)."
            )
        steps = ids.shape[:-1] if ids.ndim == 3 else ids.shape
        table = np.ascontiguousarray(ids.reshape(-1, ids.shape[-1] if ids.ndim == 3 else 1),
                                     dtype=np.intp)
        W = self.params["weight"]
        out = np.empty((table.shape[0], self.embedding_dim), W.dtype)
        get_backend(backend).embedding_forward(W, table, out)
        return out.reshape(steps + (self.embedding_dim,)), table

    def backward(self, dY):
        """Accumulate ``dY`` (B, T, embedding_dim) into the rows of the ids used; returns None."""
        if self._ids is None:
            raise ValueError("backward() needs the ids of a forward(); call forward first.")
        g = self.grads["weight"]
        rows = np.ascontiguousarray(dY, dtype=g.dtype)
        R, E = self._ids.shape[0], self.embedding_dim
        if rows.shape[-1:] != (E,) or rows.size != R * E:
            raise ValueError(
                f"dY must hold one vector of {E} values per step of the last forward ({R} "
                f"steps), got shape {rows.shape}; pass the gradient of that forward's output."
            )
        rows = rows.reshape(R, E)
        pad = -1 if self.padding_idx is None else int(self.padding_idx) % self.num_embeddings
        get_backend(route(self.backend)).embedding_backward(self._ids, rows, pad, g)


class Dense:
    """Affine map on the last axis: ``Y = X W^T + b`` with ``W`` of shape (out_features, in_features).

    Initialised Glorot-uniform with zero bias.
    """

    def __init__(self, in_features, out_features, dtype=np.float32, random_state=None):
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.dtype = check_dtype(dtype)
        rng = _init.check_random_state(random_state)
        self.params = {
            "weight": _init.glorot_uniform((self.out_features, self.in_features), rng, self.dtype),
            "bias": np.zeros(self.out_features, self.dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._X = None

    def forward(self, X):
        """X of shape (..., in_features) -> (..., out_features); keeps ``X`` for
        :meth:`backward`."""
        self._X = X
        return self.apply(X)

    def apply(self, X):
        """:meth:`forward` without keeping anything (inference; safe from several threads)."""
        return X @ self.params["weight"].T + self.params["bias"]

    def backward(self, dY):
        """dY of shape (..., out_features) -> dX of shape (..., in_features); fills ``grads``."""
        X2 = self._X.reshape(-1, self.in_features)
        d2 = dY.reshape(-1, self.out_features)
        np.dot(d2.T, X2, out=self.grads["weight"])
        np.sum(d2, axis=0, out=self.grads["bias"])
        return dY @ self.params["weight"]


class SoftmaxHead(Dense):
    """A dense layer followed by a softmax over a large output vocabulary, applied through the
    loss: the logits of all positions are never formed at once.

    The network's forward stops at the head's input (the hidden states); :meth:`loss_fn` computes
    the mean cross-entropy of the targets block by block
    (:func:`fastrnn.losses.blocked_softmax_cross_entropy`) and fills the head's gradients, and
    :meth:`log_probs` scores targets the same way. This is the output layer of a language model.

    Parameters
    ----------
    in_features, out_features, dtype, random_state
        As for :class:`Dense`.
    excluded : sequence of int, default ()
        Output ids that never get probability (e.g. padding and beginning-of-sequence tokens).
    block_rows : int, optional
        Rows of logits per block (default: about 4 MiB of them).
    """

    def __init__(self, in_features, out_features, dtype=np.float32, random_state=None,
                 excluded=(), block_rows=None):
        super().__init__(in_features, out_features, dtype=dtype, random_state=random_state)
        self.excluded = tuple(int(e) for e in excluded)
        self.block_rows = block_rows

    def loss_fn(self, targets, valid):
        """A loss function ``hidden -> (loss, dhidden)`` for :meth:`fastrnn.train.Trainer.step`.

        Parameters
        ----------
        targets : integer ndarray of shape (B, T)
            The target id at every position.
        valid : bool ndarray of shape (B, T)
            Positions that count.

        Notes
        -----
        Calling the returned function fills ``grads`` with the head's gradients.
        """

        def fn(hidden):
            B, T, F = hidden.shape
            loss, dh, dw, db = blocked_softmax_cross_entropy(
                hidden.reshape(B * T, F), self.params["weight"], self.params["bias"],
                targets.reshape(-1), valid.reshape(-1), self.excluded, self.block_rows)
            self.grads["weight"][...] = dw
            self.grads["bias"][...] = db
            return loss, dh.reshape(B, T, F)

        # the same loss for a step on the GPU (fastrnn.train.Trainer.start_device): a weight per
        # position, 1 / (number of valid positions) where valid
        w = (np.ones(np.shape(targets)) if valid is None
             else np.asarray(valid, np.float64).reshape(np.shape(targets)))
        fn.device_loss = ("ce", targets, w / max(np.count_nonzero(w), 1))
        return fn

    def log_probs(self, hidden, targets):
        """``log p(targets[i] | hidden[i])`` in float64 for ``hidden`` of shape (N, F)."""
        return blocked_log_probs(hidden, self.params["weight"], self.params["bias"], targets,
                                 self.excluded, self.block_rows)

    def logits(self, hidden, out=None):
        """Full logits of a few rows, float64 of shape (n, V), ``-inf`` at the excluded ids.

        Parameters
        ----------
        hidden : ndarray of shape (n, F)
        out : ndarray of shape (n, V), float64, optional
            Written in place when given (streaming: nothing allocated).
        """
        W = self.params["weight"]
        z = np.asarray(hidden, W.dtype) @ W.T + self.params["bias"]
        if out is None:
            out = z.astype(np.float64)
        else:
            out[...] = z
        out[:, list(self.excluded)] = -np.inf
        return out

    def backward(self, dY):
        raise RuntimeError("a SoftmaxHead gets its gradients from loss_fn(), not from backward().")


def pool(Y, lengths, mode, num_directions=1, compiled=False):
    """Pool the outputs of a recurrent layer over each sequence's real steps.

    Parameters
    ----------
    Y : ndarray of shape (B, T, D*H)
        Outputs, zero past each length.
    lengths : ndarray of shape (B,)
    mode : {"last", "mean", "max"}
        ``"last"``: the state at the last real step; for a bidirectional layer the forward half at the
        last real step and the backward half at the first step (its final state). ``"mean"`` and
        ``"max"``: element-wise over the real steps.
    num_directions : {1, 2}
    compiled : bool, default False
        Max pooling by its Numba kernel (``fastrnn.kernels.pooling.max_pool``; the same
        values): what training uses. Inference keeps numpy, so that a model predicts without
        loading Numba.

    Returns
    -------
    P : ndarray of shape (B, D*H)
    cache : object
        Pass to :func:`pool_backward`.
    """
    B, T, F = Y.shape
    if mode == "max" and compiled:
        P, arg = np.empty((B, F), Y.dtype), np.empty((B, F), np.intp)
        training_kernel("max_pool")(np.ascontiguousarray(Y), np.asarray(lengths, np.int64), P, arg)
        return P, arg
    rows = np.arange(B)
    if mode == "last":
        P = Y[rows, lengths - 1].copy()
        if num_directions == 2:
            H = F // 2
            P[:, H:] = Y[:, 0, H:]
        return P, None
    if mode == "max" and B == 1:  # one sequence: its real steps are a slice
        arg = Y[0, :lengths[0]].argmax(axis=0)
        return Y[0, arg, np.arange(F)][None], arg[None]
    real = np.arange(T)[None, :] < lengths[:, None]
    if mode == "mean":
        return Y.sum(axis=1) / lengths[:, None].astype(Y.dtype), None
    if mode == "max":
        masked = np.where(real[:, :, None], Y, -np.inf)
        arg = masked.argmax(axis=1)  # (B, F)
        return np.take_along_axis(Y, arg[:, None, :], axis=1)[:, 0], arg
    raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}.")


def pool_backward(dP, lengths, mode, T, cache, num_directions=1):
    """Gradient of :func:`pool`: ``dP`` (B, D*H) -> ``dY`` (B, T, D*H), zero past each length."""
    B, F = dP.shape
    if mode == "max":  # by the kernel (:func:`fastrnn.kernels.pooling.max_pool_backward`)
        dY = np.empty((B, T, F), dP.dtype)
        training_kernel("max_pool_backward")(np.ascontiguousarray(dP), cache, dY)
        return dY
    dY = np.zeros((B, T, F), dP.dtype)
    rows = np.arange(B)
    if mode == "last":
        if num_directions == 2:
            H = F // 2
            dY[rows, lengths - 1, :H] = dP[:, :H]
            dY[:, 0, H:] += dP[:, H:]
        else:
            dY[rows, lengths - 1] = dP
    elif mode == "mean":
        real = np.arange(T)[None, :] < lengths[:, None]
        dY[...] = (dP / lengths[:, None].astype(dP.dtype))[:, None, :] * real[:, :, None]
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}.")
    return dY
