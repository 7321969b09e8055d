"""What the diagnostics read of a model: its recurrent layer, split into one single-direction,
single-layer copy per layer-direction ("unit"), in float64, with the inputs and the loss of a batch.

Every model kind (a fitted estimator, the language model, a :class:`~fastrnn.nn.SequenceNetwork`,
a recurrent layer) is brought to the same :class:`Chain`: the float64 input of the recurrent layer,
the lengths, the initial state, and the gradient of a loss with respect to the top layer's outputs.
A unit reads its sequence in its own order (the reverse direction from the last real step back),
so that the per-unit computations are those of a forward layer.
"""

from numbers import Integral

import numpy as np

from ..nn import _skip
from ..nn.layers import SoftmaxHead, pool, pool_backward
from ..nn.network import SequenceNetwork
from ..nn.recurrent import GRU, LSTM, RNN, _Recurrent

__all__ = ["Chain", "Stack", "resolve", "unit_layers", "reading_order"]


def reading_order(A, lengths, reverse):
    """``A`` (B, T, ...) with each sequence's real steps reversed when ``reverse`` (zero past each
    length either way); its own inverse."""
    out = np.zeros_like(A)
    for b, n in enumerate(lengths):
        out[b, :n] = A[b, n - 1::-1] if reverse else A[b, :n]
    return out


def unit_layers(rnn, backend=None):
    """One float64, single-layer, unidirectional copy of every layer-direction of ``rnn``.

    Returns
    -------
    units : list of (layer, direction, _Recurrent)
        In the order of ``rnn``'s parameter suffixes (``_l0``, ``_l0_reverse``, ``_l1``, ...),
        which is also the order of the first axis of its ``h0``.
    """
    kw = {}
    if isinstance(rnn, RNN):
        kw["nonlinearity"] = rnn.nonlinearity
    elif isinstance(rnn, LSTM):
        on = [bool(v) for v in rnn.gates_on]
        kw.update(peephole=rnn.peephole, input_gate=on[0], forget_gate=on[1], output_gate=on[2])
    elif isinstance(rnn, GRU):
        kw["reset_after"] = rnn.reset_after
    if backend is None:
        backend = "auto" if rnn.backend == "cuda" else rnn.backend
    units = []
    for layer, d, sfx, size in rnn._units():
        u = type(rnn)(size, rnn.hidden_size, 1, dtype=np.float64, backend=backend, **kw)
        u.load_state_dict({k: rnn.params[k[:-len("_l0")] + sfx] for k in u.params})
        units.append((layer, d, u.eval()))
    return units


class Stack:
    """The layers' inputs and outputs of a recurrent layer's stack, joined by its connections
    (``skip``, see :class:`fastrnn.nn.LSTM`) in float64; plain stacking without them.

    Parameters
    ----------
    rnn : recurrent layer
    Z : ndarray of shape (B, T, input_size), float64
        The stack's input, zero past each length.
    """

    def __init__(self, rnn, Z):
        self.skip, self.Z = getattr(rnn, "skip", None), Z
        self.width = rnn.num_directions * rnn.hidden_size
        self.params = {k: np.asarray(v, np.float64) for k, v in rnn.params.items()
                       if k.startswith("skip_")}
        self.outputs, self._caches, self._dz = [], [], []

    def layer_input(self, layer):
        """The input (B, T, size) of layer ``layer``, once the layers below it are done."""
        if layer == 0:
            return self.Z
        if self.skip == "dense":
            return np.concatenate([self.Z] + self.outputs, axis=2)
        return self.outputs[-1]

    def add_layer(self, layer, f):
        """Layer ``layer``'s output from its recurrent outputs ``f`` (B, T, D * H)."""
        z, cache = (f, None) if self.skip is None else _skip.connect(
            self.skip, self.params, layer, self.layer_input(layer), f)
        self.outputs.append(z)
        self._caches.append(cache)
        self._dz.append(None)
        return z

    def output_grad(self, layer, dz=None):
        """The gradient of layer ``layer``'s recurrent outputs, from the gradient ``dz`` of the
        top layer's output (given for the top layer) or from those its input passed down; and
        the part of its input's gradient that goes around it (0 where none does)."""
        dz = self._dz[layer] if dz is None else dz
        if self.skip is None:
            return dz, 0.0
        scratch = {k: np.empty_like(v) for k, v in self.params.items()}
        df, around = _skip.connect_backward(self.skip, self.params, scratch, layer,
                                            self._caches[layer], dz)
        return df, (0.0 if around is None else around)

    def input_grad(self, layer, dx):
        """Pass the gradient ``dx`` of layer ``layer``'s input to the layers below it."""
        if layer == 0:
            return
        parts = [(layer - 1, dx)]
        if self.skip == "dense":
            n_in, W = self.Z.shape[2], self.width
            parts = [(k, dx[:, :, n_in + k * W:n_in + (k + 1) * W]) for k in range(layer)]
        for k, part in parts:
            self._dz[k] = part if self._dz[k] is None else self._dz[k] + part


class Chain:
    """A batch of a model, ready for the per-unit diagnostics.

    Attributes
    ----------
    rnn : RNN, LSTM or GRU
        The model's recurrent layer.
    Z : ndarray of shape (B, T, input_size), float64
        The recurrent layer's input (after embedding and standardisation), zero past each length.
    lengths : ndarray of shape (B,), int64
    h0 : ndarray of shape (num_layers * num_directions, B, H), or a pair of them (LSTM), or None
        The initial state (None: zeros).
    output_grad : callable or None
        ``output_grad(Y) -> dY``: for the top layer's outputs ``Y`` (B, T, D * H) in float64, the
        gradient of the loss with respect to them; None when there is no loss.
    """

    def __init__(self, rnn, Z, lengths, h0=None, output_grad=None):
        self.rnn, self.Z, self.lengths = rnn, Z, lengths
        self.h0, self.output_grad = h0, output_grad

    def unit_h0(self, k):
        """The initial state of unit ``k`` (float64, shape (B, H), a pair for an LSTM) or None."""
        if self.h0 is None:
            return None
        if isinstance(self.h0, tuple):
            return tuple(np.asarray(s[k], np.float64) for s in self.h0)
        return np.asarray(self.h0[k], np.float64)


def _check_lengths(lengths, B, T):
    if lengths is None:
        return np.full(B, T, np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (B,) or lengths.dtype.kind not in "iu" or (
            B and (lengths.min() < 1 or lengths.max() > T)):
        raise ValueError(f"lengths must be {B} integers in [1, {T}] (one per sequence), got "
                         f"{lengths!r:.80}.")
    return lengths.astype(np.int64)


def _last_step_grad(out, lengths):
    """The gradient of ``0.5 * sum_b ||out[b, lengths[b] - 1]||^2`` (per-step output) or of
    ``0.5 * ||out||^2`` (one output per sequence)."""
    if out.ndim == 2:
        return out.copy()
    d = np.zeros_like(out)
    rows = np.arange(len(lengths))
    d[rows, lengths - 1] = out[rows, lengths - 1]
    return d


def _head_grad(net, lengths, loss_grad, Z, ids=None):
    """``output_grad`` of a network with a dense head: forward through pooling and the head in
    float64, ``loss_grad(out) -> dout``, and back to the recurrent outputs. ``Z`` (B, T, E) is
    the recurrent layer's input, whose bag of embeddings a network with one adds to the head's
    input (a term of the logits that the states do not change), as are the logits of its linear
    part, computed from the token ``ids``."""
    W = net.head.params["weight"].astype(np.float64)
    b = net.head.params["bias"].astype(np.float64)
    if net.linear is not None:
        b = b + net.linear.apply(ids, lengths).astype(np.float64)
    D = net.rnn.num_directions
    F = D * net.rnn.hidden_size
    if net.bag_of_embeddings:  # Z is zero past each length
        b = b + (Z.sum(axis=1) / np.sqrt(lengths)[:, None]) @ W[:, F:].T
        W = W[:, :F]

    def fn(Y):
        if net.pooling:
            P, cache = pool(Y, lengths, net.pooling, D)
        else:
            P, cache = Y, None
        dout = np.asarray(loss_grad(P @ W.T + b), np.float64)
        dP = dout @ W
        if net.pooling:
            return pool_backward(dP, lengths, net.pooling, Y.shape[1], cache, D)
        real = np.arange(Y.shape[1])[None, :] < lengths[:, None]
        return dP * real[:, :, None]

    return fn


def _network_input(net, X, lengths):
    """The float64 input of ``net``'s recurrent layer and the lengths, from features or ids."""
    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X must be a batch of shape (B, T, ...), got shape {X.shape}.")
    B, T = X.shape[:2]
    lengths = _check_lengths(lengths, B, T)
    if net.embedding is not None:
        if X.dtype.kind not in "iu":
            raise ValueError(f"this network reads token ids: X must hold integers, got dtype "
                             f"{X.dtype}.")
        Z = net.embedding.lookup(X).astype(np.float64)
    else:
        Z = np.asarray(X, np.float64)
        if Z.ndim != 3 or Z.shape[2] != net.n_features:
            raise ValueError(f"X must have shape (B, T, {net.n_features}), got {Z.shape}.")
    real = np.arange(T)[None, :] < lengths[:, None]
    return Z * real[:, :, None], lengths


def _from_network(net, X, lengths, output_grad, loss_grad=None):
    Z, lengths = _network_input(net, X, lengths)
    h0, _ = net._initial(None, len(lengths))
    if isinstance(net.head, SoftmaxHead):
        fn = output_grad
    elif loss_grad is not None:
        fn = _head_grad(net, lengths, loss_grad, Z, X)
    elif output_grad is not None:
        fn = _head_grad(net, lengths, output_grad, Z, X)
    else:
        fn = _head_grad(net, lengths, lambda out: _last_step_grad(out, lengths), Z, X)
    return Chain(net.rnn, Z, lengths, h0, fn)


def _lm_chain(lm, X, max_sequences):
    """Documents of a language model: ids shifted by one step give the inputs and the targets;
    the loss is the mean cross-entropy of the predicted tokens."""
    from ..losses import blocked_softmax_cross_entropy

    docs, _ = lm._documents(X, "X", lm.input_type_)
    if not docs:
        raise ValueError("X is empty; pass at least one document.")
    ids = lm._encode(docs)[:max_sequences]
    ids = [d for d in ids if len(d) > 1]
    lengths = np.array([len(d) - 1 for d in ids], np.int64)
    B, T = len(ids), int(lengths.max())
    inp = np.zeros((B, T), np.int64)
    tgt = np.zeros((B, T), np.int64)
    for b, d in enumerate(ids):
        inp[b, :len(d) - 1] = d[:-1]
        tgt[b, :len(d) - 1] = d[1:]
    valid = np.arange(T)[None, :] < lengths[:, None]
    net = lm.network_
    head = net.head
    W = head.params["weight"].astype(np.float64)
    bias = head.params["bias"].astype(np.float64)

    def fn(Y):
        _, dh, _, _ = blocked_softmax_cross_entropy(
            Y.reshape(B * T, -1), W, bias, tgt.reshape(-1), valid.reshape(-1), head.excluded,
            head.block_rows)
        return np.asarray(dh, np.float64).reshape(Y.shape)

    return _from_network(net, inp, lengths, fn)


def resolve(model, X, y=None, lengths=None, output_grad=None, max_sequences=None):
    """The :class:`Chain` of ``model`` on the batch ``X``.

    Parameters
    ----------
    model : fitted estimator, RNNLanguageModel, SequenceNetwork, or RNN / LSTM / GRU layer
    X : input of the model
        Estimators: what ``predict`` takes (texts for the language model); networks and layers:
        a padded batch of shape (B, T, n_features) (token ids (B, T) for a network that embeds).
    y : targets, optional
        Estimators: what ``fit`` takes; the loss is the estimator's training loss. Without ``y``
        an estimator has no loss (``output_grad`` is None), except the language model, whose
        targets are its input shifted by one step.
    lengths : array-like of shape (B,), optional
        Networks and layers: the real length of each sequence (default: all ``T``).
    output_grad : callable, optional
        Networks and layers: ``output_grad(out) -> dout``, the gradient of a loss with respect to
        the model's output (a layer's ``Y``; a network's head output). Default: the loss
        ``0.5 * ||out||^2`` of the output at each sequence's last real step (or of the pooled
        output).
    max_sequences : int, optional
        Use the first ``max_sequences`` sequences only.
    """
    if max_sequences is not None and (not isinstance(max_sequences, Integral)
                                      or isinstance(max_sequences, bool) or max_sequences < 1):
        raise ValueError(f"max_sequences must be a positive integer or None, got "
                         f"{max_sequences!r}.")
    if isinstance(model, _Recurrent):
        Z = np.asarray(X, np.float64)
        if Z.ndim != 3 or Z.shape[2] != model.input_size:
            raise ValueError(f"X must have shape (B, T, {model.input_size}) for this layer, got "
                             f"{Z.shape}.")
        Z = Z[:max_sequences]
        lengths = _check_lengths(None if lengths is None else np.asarray(lengths)[:max_sequences],
                                 *Z.shape[:2])
        real = np.arange(Z.shape[1])[None, :] < lengths[:, None]
        Z = Z * real[:, :, None]
        fn = output_grad or (lambda Y: _last_step_grad(Y, lengths))
        return Chain(model, Z, lengths, None, fn)
    if isinstance(model, SequenceNetwork):
        X = np.asarray(X)[:max_sequences]
        if lengths is not None:
            lengths = np.asarray(lengths)[:max_sequences]
        return _from_network(model, X, lengths, output_grad)
    net = getattr(model, "network_", None)
    if not isinstance(net, SequenceNetwork):
        raise TypeError(
            f"model must be a fitted fastrnn estimator, a SequenceNetwork or a recurrent layer "
            f"(RNN, LSTM, GRU), got {type(model).__name__}"
            + (" (not fitted: call fit first)." if hasattr(model, "fit") else "."))
    if type(model).__name__ == "RNNLanguageModel":
        return _lm_chain(model, X, max_sequences)
    data = model._validate_X(X, reset=False)
    n = len(data) if max_sequences is None else min(len(data), int(max_sequences))
    idx = np.arange(n)
    Xb, L = data.batch(idx)
    if y is None:
        return Chain(net.rnn, *_network_input(net, Xb, L), net._initial(None, n)[0], None)
    had, keep = hasattr(model, "_fit_class_weight"), getattr(model, "_fit_class_weight", None)
    try:  # the targets' checks may set the class weights of a fit: leave the model as it was
        targets = model._validate_targets(y, data, reset=False)
        loss_fn, _ = model._make_loss(targets, idx, L, None)
    finally:
        if had:
            model._fit_class_weight = keep
        elif hasattr(model, "_fit_class_weight"):
            del model._fit_class_weight
    return _from_network(net, Xb, L, None, lambda out: loss_fn(out)[1])
