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

from numbers import Integral

import numpy as np

from ..losses import softmax

__all__ = ["EstimatorStream", "StreamingMixin"]


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
    frame = getattr(est, "frame_size_", 1)
    if frame > 1:
        raise ValueError(
            f"this {type(est).__name__} reads its series in frames of {frame} steps "
            f"(frame_size_={frame}), not step by step. Fit it with frame_size=1 to use "
            "init_state()/step(), or call the batch methods on the complete sequences."
        )
    if getattr(est, "difference_", False):
        raise ValueError(
            f"this {type(est).__name__} reads each series with its first difference divided by "
            "the difference's standard deviation over the whole series (difference_=True), "
            "which a step does not know. Fit it with difference=False to use "
            "init_state()/step(), or call the batch methods on the complete sequences."
        )


def softmax_into(logits, out, excluded=()):
    """Row softmax of ``logits`` in float64 into ``out`` (``excluded`` columns get 0)."""
    out[...] = logits
    if excluded:
        out[:, list(excluded)] = -np.inf
    return softmax(out, axis=1, out=out)


class StreamingMixin:
    """``init_state`` and ``step`` of the recurrent estimators (see the module docstring).

    Subclasses may override ``_stream_width`` and ``_stream_output`` (what ``step`` returns); the
    estimator provides ``_check_fitted``, ``_uses_tokens``, ``_name``, ``network_`` and the
    standardisation attributes ``feature_mean_`` / ``feature_scale_``.
    """

    def init_state(self, n_streams=1):
        """Start step-by-step inference over ``n_streams`` sequences (see :meth:`step`).

        Parameters
        ----------
        n_streams : int, default 1
            Number of sequences read in parallel.

        Returns
        -------
        state : fastrnn.estimators.EstimatorStream
            Preallocated buffers and the initial recurrent state; ``state.reset()`` starts over.
        """
        self._check_fitted()
        check_streamable(self)
        if isinstance(n_streams, bool) or not isinstance(n_streams, Integral) or n_streams < 1:
            raise ValueError(f"n_streams must be a positive integer, got {n_streams!r}.")
        return EstimatorStream(self, n_streams, self._stream_width())

    def step(self, x, state):
        """Read the next step of every stream and predict from the sequences read so far.

        The result equals the batch method on the prefixes (``predict_proba`` for the classifier
        and the tagger, ``predict`` for the regressor; see the subclass), at the cost of one step:
        the recurrent state is carried in ``state`` and nothing is recomputed.

        Parameters
        ----------
        x : array-like of shape (n_streams, n_features), or (n_features,) for one stream
            The step's features; token ids of shape (n_streams,) (or one int) for a model
            fitted on token ids.
        state : EstimatorStream
            From :meth:`init_state`; advanced in place.

        Returns
        -------
        out : ndarray
            The prediction for each stream after this step (a buffer of ``state`` that the next
            step overwrites: copy it to keep it).
        state : EstimatorStream
            The same object.
        """
        if not isinstance(state, EstimatorStream) or state._net is not getattr(
                self, "network_", None):
            raise ValueError(f"state must come from this {self._name()}'s init_state(); got "
                             f"{type(state).__name__}.")
        state.advance(self._stream_input(x, state))
        return self._stream_output(state), state

    def _stream_input(self, x, state):
        """Validate one step of input (and standardise it) for :meth:`step`."""
        B = state.n_streams
        if self._uses_tokens():
            ids = np.asarray(x)
            K = self.n_features_in_
            want = (B,) if K == 1 else (B, K)
            if ids.ndim == len(want) - 1 and B == 1:
                ids = ids.reshape(want)
            if ids.shape != want or ids.dtype.kind not in "iu":
                raise ValueError(
                    f"x must be integer token ids of shape {want} ({K} per stream), got "
                    f"{ids.dtype} of shape {ids.shape}.")
            if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size_):
                bad = int(ids.min() if ids.min() < 0 else ids.max())
                raise ValueError(f"x holds token id {bad}, out of range 0..{self.vocab_size_ - 1} "
                                 f"of this {self._name()}.")
            state._ids[...] = ids
            return state._ids
        F = self.n_features_in_
        a = np.asarray(x)
        if a.ndim == 1 and B == 1:
            a = a.reshape(1, -1)
        if a.shape != (B, F):
            raise ValueError(
                f"x must have shape (n_streams, n_features) = {(B, F)} (or ({F},) for one "
                f"stream), got {a.shape}.")
        x64 = state._x64
        try:
            np.copyto(x64, a, casting="unsafe" if a.dtype.kind in "iub" else "same_kind")
        except TypeError as exc:
            raise ValueError(f"x must hold numbers, got dtype {a.dtype} ({exc}).") from exc
        if not np.isfinite(x64).all():
            raise ValueError("x holds NaN or infinity; pass finite values.")
        if self.feature_mean_ is not None:
            x64 -= self.feature_mean_
            x64 /= self.feature_scale_
        return x64

    def _stream_width(self):
        """Width of the array :meth:`step` returns (subclasses)."""
        return self.network_.head.params["bias"].shape[0]

    def _stream_output(self, state):
        """Turn ``state.logits`` into what :meth:`step` returns (subclasses)."""
        return softmax_into(state.logits, state.output)
