"""Step-by-step inference of a fitted estimator: one step of each stream per call.

``state = est.init_state(n_streams)`` preallocates every buffer; ``out, state = est.step(x_t,
state)`` reads the next step of every stream and returns what the estimator's batch method would
return for the sequences read so far:

========================  ==============================================================
estimator                 ``out`` after ``t`` steps equals
========================  ==============================================================
``RNNClassifier``         ``predict_proba(X[:, :t])``
``RNNRegressor``          ``predict(X[:, :t])``
``RNNTagger``             ``predict_proba(X)[i][t - 1]`` (the tag of step ``t``)
``RNNLanguageModel``      the next-token distribution after ``<bos>`` and the ``t`` tokens
========================  ==============================================================

The recurrent layers advance with :meth:`fastrnn.nn.LSTM.step` (the backend's compiled kernels
over a single step); standardisation, pooling (``"last"``, a running mean or a running maximum),
the output layer and the softmax run with numpy into the preallocated buffers, so a call allocates
nothing that grows with the number of steps. A bidirectional network cannot run this way: its
reverse direction needs the whole sequence.
"""

import numpy as np

__all__ = ["EstimatorStream"]


class EstimatorStream:
    """The carried state and the buffers of step-by-step inference with a fitted estimator.

    Made by ``init_state`` of an estimator; advanced in place by its ``step``.

    Attributes
    ----------
    n_streams : int
        Number of sequences read in parallel.
    steps : int
        Steps read since the start (or :meth:`reset`).
    output : ndarray
        What the latest ``step`` returned (a buffer the next step overwrites; copy it to keep it).
        For a language model, right after ``init_state`` / ``reset`` it holds the distribution of
        the first token (after ``<bos>``).
    """

    def __init__(self, est, n_streams, n_outputs):
        net = est.network_
        B = int(n_streams)
        dt = net.dtype
        self.n_streams = B
        self.steps = 0
        self._net = net
        self._layer_state = net.rnn.init_state(B)
        H = net.rnn.hidden_size
        self._acc = np.empty((B, H), dt)  # running sum ("mean") or maximum ("max") of the outputs
        self._pooled = np.empty((B, H), dt)
        self._logits = np.empty((B, net.head.params["weight"].shape[0]), dt)
        self._z = np.empty(self._logits.shape, np.float64)
        self._zmax = np.empty((B, 1), np.float64)
        self.output = np.zeros((B, n_outputs), np.float64)
        if net.embedding is not None:
            self._ids = np.zeros(B, np.intp)
            self._x = np.empty((B, net.embedding.params["weight"].shape[1]), dt)
        else:
            self._x = np.empty((B, net.n_features), dt)
            self._x64 = np.empty((B, net.n_features), np.float64)
        self.reset()

    def reset(self):
        """Start new sequences in every stream: the initial state (learned or zero), no steps."""
        ls = self._layer_state.reset()
        init = getattr(self._net, "_state_params", {})
        if init:
            ls.h[...] = init["h0"][:, None, :]
            if ls.c is not None:
                ls.c[...] = init["c0"][:, None, :]
        self.steps = 0
        self._acc[...] = -np.inf if self._net.pooling == "max" else 0.0
        return self


def check_streamable(est):
    """Raise ``ValueError`` when ``est`` (fitted) cannot run step by step."""
    if est.network_.rnn.bidirectional:
        raise ValueError(
            f"this {type(est).__name__} is bidirectional, so it cannot read a sequence step by "
            "step: its reverse direction needs the whole sequence. Fit it with bidirectional=False to "
            "use init_state()/step(), or call the batch methods on the complete sequences."
        )


def advance(state, x):
    """Feed one step ``x`` (validated, shape ``(n_streams, n_features)`` float64 in the model's
    units, or ``(n_streams,)`` token ids) and compute the logits of the head into
    ``state._logits``; returns them."""
    net = state._net
    if net.embedding is not None:
        np.take(net.embedding.params["weight"], x, axis=0, out=state._x)
    else:
        np.copyto(state._x, x, casting="same_kind")
    y, _ = net.rnn.step(state._x, state._layer_state)
    state.steps += 1
    pooled = y
    if net.pooling == "mean":
        state._acc += y
        pooled = np.divide(state._acc, state.steps, out=state._pooled)
    elif net.pooling == "max":
        pooled = np.maximum(state._acc, y, out=state._acc)
    head = net.head.params
    np.dot(pooled, head["weight"].T, out=state._logits)
    state._logits += head["bias"]
    return state._logits


def softmax_into(state, out, excluded=()):
    """Row softmax of ``state._logits`` in float64 into ``out`` (``excluded`` columns get 0)."""
    z = state._z
    z[...] = state._logits
    for j in excluded:
        z[:, j] = -np.inf
    np.max(z, axis=1, keepdims=True, out=state._zmax)
    z -= state._zmax
    np.exp(z, out=out)
    np.sum(out, axis=1, keepdims=True, out=state._zmax)
    out /= state._zmax
    return out
