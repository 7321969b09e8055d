"""Gradient flow through time: how much of a loss's gradient reaches a hidden state ``t`` steps
back, and how strongly the last state depends on an earlier one."""

import warnings

import numpy as np

from ._chain import Stack, reading_order, resolve, unit_layers

__all__ = ["GradientFlow", "gradient_flow"]


class GradientFlow:
    """The result of :func:`gradient_flow`.

    ``L`` is the number of stacked layers, ``D`` the number of directions, ``B`` the number of
    sequences and ``T`` the longest length. The *distance* of a step of a layer-direction is the
    number of steps from it to that direction's last step: ``length - 1 - t`` for the forward
    direction, ``t`` for the reverse one (which reads the sequence from its end).

    Attributes
    ----------
    distance : ndarray of shape (T,), int64
        ``0, 1, ..., T - 1``: the axis of the curves.
    loss_grad : ndarray of shape (L, D, T) or None
        Mean over the sequences of ``||dL/dh_t||`` (the Euclidean norm over the ``H`` units of the
        gradient of the loss with respect to the hidden state of the step at that distance, all
        paths through time and through the layers above included). NaN where no sequence reaches
        the distance; None without a loss.
    jacobian : ndarray of shape (L, D, T)
        Mean over the sequences of the spectral norm (largest singular value) of
        ``dh_T/dh_t``, the Jacobian of the direction's last hidden state with respect to the
        hidden state at that distance, within the direction (for an LSTM with the cell state
        ``c_t`` held fixed). 1 at distance 0.
    counts : ndarray of shape (T,), int64
        Number of sequences that reach each distance (those of length greater than it).
    loss_grad_per_sequence, jacobian_per_sequence : ndarray of shape (L, D, B, T)
        The values before the mean (NaN past each sequence's length); ``loss_grad_per_sequence``
        is None without a loss.
    cell : str
        ``"rnn"``, ``"lstm"`` or ``"gru"``.
    """

    def __init__(self, cell, distance, loss_grad_seq, jac_seq, lengths):
        self.cell = cell
        self.distance = distance
        self.counts = np.array([(lengths > k).sum() for k in distance], np.int64)
        self.loss_grad_per_sequence = loss_grad_seq
        self.jacobian_per_sequence = jac_seq
        self.loss_grad = None if loss_grad_seq is None else _mean(loss_grad_seq)
        self.jacobian = _mean(jac_seq)

    @property
    def num_layers(self):
        return self.jacobian.shape[0]

    @property
    def num_directions(self):
        return self.jacobian.shape[1]

    def __repr__(self):
        return (f"GradientFlow(cell={self.cell!r}, num_layers={self.num_layers}, "
                f"num_directions={self.num_directions}, max_distance={len(self.distance) - 1}, "
                f"loss={'yes' if self.loss_grad is not None else 'no'})")

    def to_text(self, distances=None):
        """A table of the curves at a few distances (a line per layer-direction)."""
        T = len(self.distance)
        if distances is None:
            distances = sorted({k for k in (0, 1, 2, 5, 10, 20, 50, 100, 200, 500) if k < T}
                               | {T - 1})
        head = "layer dir  quantity      " + "".join(f"{'d=' + str(k):>10}" for k in distances)
        lines = [head]
        for name, arr in (("|dL/dh_t|", self.loss_grad), ("|dh_T/dh_t|", self.jacobian)):
            if arr is None:
                continue
            for layer in range(self.num_layers):
                for d in range(self.num_directions):
                    cells = "".join(f"{arr[layer, d, k]:>10.3g}" for k in distances)
                    lines.append(f"{layer:>5} {'rev' if d else 'fwd':>3}  {name:<12}{cells}")
        return "\n".join(lines)


def _mean(per_seq):
    with warnings.catch_warnings():  # the mean of no sequence is NaN, without a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(per_seq, axis=2)


def _states(u, Zu, h0):
    """Hidden (and cell) state after every step of unit ``u`` on ``Zu`` (B, T, I) in reading
    order: arrays of shape (T, B, H)."""
    B, T, _ = Zu.shape
    st = u.init_state(B)
    if h0 is not None:
        if u.has_cell:
            st.h[0], st.c[0] = h0
        else:
            st.h[0] = h0
    hs = np.empty((T, B, u.hidden_size))
    cs = np.empty((T, B, u.hidden_size)) if u.has_cell else None
    for s in range(T):
        u.step(Zu[:, s], st)
        hs[s] = st.h[0]
        if cs is not None:
            cs[s] = st.c[0]
    return hs, cs


def _step_jacobians(u, x, h, c):
    """``dstate_{s+1}/dstate_s`` of unit ``u`` for a batch: from state ``(h, c)`` (n, H) and the
    next input ``x`` (n, I), by the layer's backward with one probe per component of the state.

    Returns
    -------
    A : ndarray of shape (n, S, S)
        ``A[b, i, j] = d state_{s+1}[i] / d state_s[j]`` with the state ``(h, c)`` (S = 2H) for an
        LSTM, else ``h`` (S = H).
    """
    n, H = h.shape
    S = 2 * H if u.has_cell else H
    X1 = np.repeat(x, S, axis=0)[:, None, :]
    eye = np.tile(np.eye(S), (n, 1))  # row b * S + i probes component i of sequence b
    if u.has_cell:
        u.forward(X1, None, (np.repeat(h, S, axis=0)[None], np.repeat(c, S, axis=0)[None]))
        u.backward(np.zeros((n * S, 1, H)), (eye[None, :, :H], eye[None, :, H:]))
        dh0, dc0 = u.grad_h0
        rows = np.concatenate([dh0[0], dc0[0]], axis=1)
    else:
        u.forward(X1, None, np.repeat(h, S, axis=0)[None])
        u.backward(np.zeros((n * S, 1, H)), eye[None])
        rows = u.grad_h0[0]
    return rows.reshape(n, S, S)


def _unit_flow(u, Zu, lengths, h0, dYu):
    """Per-sequence ``||dL/dh||`` and ``||dh_end/dh||`` of one unit, indexed by distance.

    Going backwards over the reading steps ``s``, with ``A_{s+1} = dstate_{s+1}/dstate_s``:
    ``M_s = M_{s+1} A_{s+1}`` (``M = I`` at a sequence's last step) is ``dstate_end/dstate_s``,
    and ``g_s = (dY_s, 0) + A_{s+1}^T g_{s+1}`` the total gradient of the loss with respect to
    the state of step ``s``.
    """
    B, T, _ = Zu.shape
    H = u.hidden_size
    S = 2 * H if u.has_cell else H
    hs, cs = _states(u, Zu, h0)
    M = np.tile(np.eye(S), (B, 1, 1))
    g = np.zeros((B, S))
    jac = np.full((B, T), np.nan)
    lg = None if dYu is None else np.full((B, T), np.nan)
    for s in range(T - 1, -1, -1):
        act = np.flatnonzero(lengths > s + 1)  # sequences with a step after s
        if len(act):
            A = _step_jacobians(u, Zu[act, s + 1], hs[s, act],
                                None if cs is None else cs[s, act])
            M[act] = M[act] @ A
            g[act] = np.einsum("bij,bi->bj", A, g[act])
        real = np.flatnonzero(lengths > s)
        dist = lengths[real] - 1 - s
        if dYu is not None:
            g[real, :H] += dYu[real, s]
            lg[real, dist] = np.linalg.norm(g[real, :H], axis=1)
        jac[real, dist] = np.linalg.norm(M[real, :H, :H], ord=2, axis=(1, 2))
    return lg, jac


def gradient_flow(model, X, y=None, lengths=None, output_grad=None, max_sequences=64):
    """How the gradient of a loss flows back through time in a recurrent network.

    For every layer and direction of the model's recurrent layer, and every distance ``k``
    between a step and the last step that direction reads, the mean over a batch of

    * ``||dL/dh_t||``: the norm of the gradient of the loss with respect to the hidden state at
      that distance (through all paths: later steps and the layers above), and
    * ``||dh_T/dh_t||``: the spectral norm of the Jacobian of the direction's last hidden state
      with respect to that hidden state (how much of a change ``k`` steps back reaches the end).

    A vanishing gradient shows as curves that fall exponentially with the distance; an exploding
    one as curves that grow.

    Parameters
    ----------
    model : fitted estimator, SequenceNetwork, or RNN / LSTM / GRU layer
        :class:`~fastrnn.estimators.RNNClassifier`, :class:`~fastrnn.estimators.RNNRegressor`,
        :class:`~fastrnn.estimators.RNNTagger`, :class:`~fastrnn.estimators.RNNLanguageModel`,
        a :class:`fastrnn.nn.SequenceNetwork` or a recurrent layer of :mod:`fastrnn.nn`.
    X : input
        Estimators: what their ``predict`` takes (the language model: a list of documents).
        Networks and layers: a batch of shape (B, T, n_features), or token ids (B, T) for a
        network with an embedding.
    y : targets, optional
        Estimators: the targets as ``fit`` takes them; the loss is the estimator's training loss.
        Without them, ``loss_grad`` is None (the language model needs none: it predicts its
        input).
    lengths : array-like of shape (B,), optional
        Networks and layers: real length of each sequence (default all ``T``).
    output_grad : callable, optional
        Networks and layers: ``output_grad(out) -> dout``, the gradient of your loss with respect
        to the output (a layer's ``Y`` of shape (B, T, D * H); a network's head output). Default:
        the loss ``0.5 * sum ||out||^2`` over the outputs at each sequence's last real step (or
        over the pooled outputs of a network with pooling).
    max_sequences : int or None, default 64
        Use the first ``max_sequences`` sequences of ``X`` (the cost grows with their number
        times ``T`` times ``H^3``).

    Returns
    -------
    GradientFlow
        ``distance`` (T,), ``loss_grad`` and ``jacobian`` of shape (num_layers, num_directions, T).

    Notes
    -----
    The computation runs in float64 on single-layer copies of each layer-direction, with the
    layers' own backward passes: dropout is off (the model as it predicts). The gradient at
    step ``s`` combines the gradient of the outputs with the one-step Jacobians
    ``dstate_{s+1}/dstate_s``, which the backward of a one-step call gives for one probe per
    state component; a fitted model is not changed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import LSTM
    >>> from fastrnn.diagnostics import gradient_flow
    >>> lstm = LSTM(2, 4, random_state=0)
    >>> flow = gradient_flow(lstm, np.random.RandomState(0).randn(3, 10, 2))
    >>> flow.loss_grad.shape, flow.jacobian.shape, float(flow.jacobian[0, 0, 0])
    ((1, 1, 10), (1, 1, 10), 1.0)
    """
    chain = resolve(model, X, y, lengths=lengths, output_grad=output_grad,
                    max_sequences=max_sequences)
    rnn, Z, L = chain.rnn, chain.Z, chain.lengths
    units = unit_layers(rnn)
    D, H, B, T = rnn.num_directions, rnn.hidden_size, len(L), Z.shape[1]
    # forward through the stack, keeping every unit's reading-order input and output
    inputs, outputs = [], []
    stack = Stack(rnn, Z)
    for k, (layer, d, u) in enumerate(units):
        Zu = reading_order(stack.layer_input(layer), L, d == 1)
        h0 = chain.unit_h0(k)  # (B, H) per state: the layer takes (1, B, H)
        if h0 is not None:
            h0 = tuple(s[None] for s in h0) if u.has_cell else h0[None]
        Yu, _ = u.forward(Zu, L, h0)
        inputs.append(Zu)
        outputs.append(Yu)
        if d == D - 1:
            top = stack.add_layer(layer, np.concatenate(
                [reading_order(outputs[k - D + 1 + j], L, j == 1) for j in range(D)], axis=2))
    # backward through the stack (and its connections): the gradient of each unit's outputs
    dYs = [None] * len(units)
    if chain.output_grad is not None:
        dtop = np.asarray(chain.output_grad(top), np.float64)
        for k in range(len(units) - 1, -1, -1):
            layer, d, u = units[k]
            if d == D - 1:
                df, dbelow = stack.output_grad(layer, dtop if layer == rnn.num_layers - 1
                                               else None)
                dsplit = [reading_order(df[:, :, j * H:(j + 1) * H], L, j == 1)
                          for j in range(D)]
            dYs[k] = dsplit[d]
            dbelow = dbelow + reading_order(u.backward(dYs[k]), L, d == 1)
            if d == 0:
                stack.input_grad(layer, dbelow)
    lg = None if chain.output_grad is None else np.full((rnn.num_layers, D, B, T), np.nan)
    jac = np.full((rnn.num_layers, D, B, T), np.nan)
    for k, (layer, d, u) in enumerate(units):
        g, j = _unit_flow(u, inputs[k], L, chain.unit_h0(k), dYs[k])
        jac[layer, d] = j
        if lg is not None:
            lg[layer, d] = g
    kind = type(rnn).__name__.lower()
    return GradientFlow(kind, np.arange(T, dtype=np.int64), lg, jac, L)
