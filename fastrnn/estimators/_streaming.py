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

The network advances with :meth:`fastrnn.nn.SequenceNetwork.step` (the recurrent layers' bound
steps, the running pooling and the head into preallocated buffers); the estimator validates and
standardises the input and turns the head's output into its result, so a call allocates nothing
that grows with the number of steps. A bidirectional network cannot run this way: its reverse
direction needs the whole sequence.
"""

import numpy as np

from ..losses import softmax

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
        self.n_streams = B
        self._net = net
        K = int(getattr(est, "n_features_in_", 1)) if net.embedding is not None else 1
        self._stream = net.init_stream(B, n_ids=K)
        self.output = np.zeros((B, n_outputs), np.float64)
        if net.embedding is not None:
            self._ids = np.zeros(B if K == 1 else (B, K), np.intp)
        else:
            self._x64 = np.empty((B, net.n_features), np.float64)
        self.reset()

    @property
    def steps(self):
        return self._stream.steps

    @property
    def logits(self):
        """ndarray of shape (n_streams, n_outputs): the network head's output after the last
        step."""
        return self._stream.out

    def reset(self):
        """Start new sequences in every stream."""
        self._stream.reset()
        return self

    def advance(self, x):
        """Feed one validated step ``x`` (float64 of shape (n_streams, n_features) in the model's
        units, or token ids of shape (n_streams,)); returns :attr:`logits`."""
        return self._net.step(x, self._stream)


def check_streamable(est):
    """Raise ``ValueError`` when ``est`` (fitted) cannot run step by step."""
    if est.network_.rnn.bidirectional:
        raise ValueError(
            f"this {type(est).__name__} is bidirectional, so it cannot read a sequence step by "
            "step: its reverse direction needs the whole sequence. Fit it with bidirectional=False to "
            "use init_state()/step(), or call the batch methods on the complete sequences."
        )


def softmax_into(logits, out, excluded=()):
    """Row softmax of ``logits`` in float64 into ``out`` (``excluded`` columns get 0)."""
    out[...] = logits
    if excluded:
        out[:, list(excluded)] = -np.inf
    return softmax(out, axis=1, out=out)
