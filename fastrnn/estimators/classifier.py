"""Sequence classification: :class:`RNNClassifier`."""

import math
from numbers import Integral, Number, Real

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from .._params import store_params
from ..text import length_buckets
from ..nn.recurrent import CELLS
from ..losses import log_softmax, softmax, softmax_cross_entropy
from ._docs import PARAMS, document_parameters
from . import _base
from ._base import BaseRNNEstimator, PooledOutputMixin, _SequenceTask
from ._inference import frame_steps, series_input
from ._saved import SAVED_ATTRIBUTES
from ..train import Batch

__all__ = ["RNNClassifier"]

#: ``learning_rate="auto"``: the rate, and the higher one for long documents with
#: ``max_iter="auto"`` (see ``RNNClassifier._long_documents``)
AUTO_LEARNING_RATE = {"default": 2e-3, "long_tokens": 4e-3}

#: long series (``frame_size="auto"``): univariate float series whose median length is at least
#: this many steps are read in frames
LONG_SERIES_STEPS = 200
#: ``frame_size="auto"`` on long series: about this many frames per series
FRAMES_PER_SERIES = 50
#: ``crop_fraction="auto"`` on long series
AUTO_CROP_FRACTION = 0.9
#: with cropping, an epoch holds every series as often as gives at least this many crops
CROPS_PER_EPOCH = 512
#: ``cell="auto"`` and ``recurrent_dropout="auto"`` on float series of several channels (on
#: token ids and univariate series: an LSTM without recurrent dropout)
MULTICHANNEL_CELL = "gru"
MULTICHANNEL_RECURRENT_DROPOUT = 0.2


class _WindowTask(_SequenceTask):
    """Window slicing: every epoch, each training series ``copies`` times, each time a random
    window of ``crop_fraction`` of its steps (drawn anew every epoch), read in frames of
    ``frame_size`` steps. The data come in frames already; a window is cut from the steps."""

    def __init__(self, est, train, val):
        super().__init__(est, train, val)
        self.frame = est.frame_size_
        self.fraction = est._crop_fraction()
        self.copies = est._crop_copies(len(self.data))
        self.items = self.starts = None

    def items_per_epoch(self):
        return len(self.data) * self.copies

    def _crop_lengths(self):
        steps = self.data.lengths[self.items] * self.frame
        return np.maximum(1, np.round(self.fraction * steps).astype(np.int64))

    def start_epoch(self, rng):
        n = len(self.data)
        self.items = np.tile(np.arange(n, dtype=np.int64), self.copies)
        crop = self._crop_lengths()
        free = self.data.lengths[self.items] * self.frame - crop + 1
        self.starts = (rng.random_sample(len(self.items)) * free).astype(np.int64)
        self.batches = length_buckets(-(-crop // self.frame), self.est._batch_size(len(crop)),
                                      random_state=rng)
        return len(self.batches)

    def batch(self, j):
        pos = self.batches[j]
        idx = self.items[pos]
        swb = None if self.sw is None else self.sw[idx]
        if swb is not None and not swb.any():
            return None
        crop, starts = self._crop_lengths()[pos], self.starts[pos]
        f = self.data.n_features // self.frame
        pieces = [frame_steps(self.data.seqs[i].reshape(-1, f)[s:s + c], self.frame)
                  for i, s, c in zip(idx, starts, crop)]
        L = np.array([len(p) for p in pieces], dtype=np.int64)
        X = np.zeros((len(idx), int(L.max()), self.data.n_features), self.data.seqs[0].dtype)
        for b, p in enumerate(pieces):
            X[b, :len(p)] = p
        loss_fn, w = self.est._make_loss(self.targets, idx, L, swb)
        return Batch(X, L, loss_fn, None, w, len(idx))

    def state_dict(self):
        meta, arrays = super().state_dict()
        return meta, dict(arrays, items=self.items, starts=self.starts)

    def load_state_dict(self, meta, arrays):
        self.items, self.starts = arrays["items"], arrays["starts"]
        return super().load_state_dict(meta, arrays)


def _check_y_length(n_X, n_y):
    if n_X != n_y:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: X has {n_X} sequences "
            f"but y has {n_y} labels. Pass exactly one label per sequence."
        )


def _is_plain_label(v):
    return isinstance(v, (str, bytes, Number, np.generic))


def _object_labels(values):
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # element by element: tuples must stay whole labels
        out[i] = v
    return out


def _as_label_array(y):
    """``y`` as a 1-D label array, and whether it holds general hashable objects (tuples, ...).

    Numbers and strings follow scikit-learn (``column_or_1d``, ``check_classification_targets``);
    other hashable labels, e.g. tuples, are kept whole in an object array.
    """
    if isinstance(y, np.ndarray) and y.dtype != object:
        return y, False
    items = list(y) if isinstance(y, (list, tuple, np.ndarray)) else None
    if items and any(not _is_plain_label(v) for v in items):
        for i, v in enumerate(items):
            if isinstance(v, (list, np.ndarray, dict, set)):
                break  # rows of a 2-D y, or unhashable labels: let scikit-learn reject them
        else:
            for i, v in enumerate(items):
                try:
                    hash(v)
                except TypeError:
                    raise ValueError(
                        f"y[{i}] = {v!r:.40} is not hashable; class labels must be hashable "
                        "(str, int, tuple, ...)."
                    ) from None
            return _object_labels(items), True
    return y, False


def _refuse_multi_output(y, name):
    """Refuse a 2-D ``y`` (several labels per sequence), naming its shape; a column ``(n, 1)``
    and a list of tuples (one tuple label per sequence) pass."""
    shape = getattr(y, "shape", None)  # arrays, DataFrames
    if not isinstance(shape, tuple):
        shape = None
    if shape is None and isinstance(y, (list, tuple)) and y and all(
            isinstance(v, (list, np.ndarray)) for v in y):
        widths = {len(v) for v in y}
        shape = (len(y), widths.pop()) if len(widths) == 1 else None
    if shape is None or len(shape) != 2 or shape[1] == 1:
        return
    raise ValueError(
        f"y has shape {tuple(shape)}, but {name} predicts one label per sequence: multilabel "
        f"and multi-output targets are not supported. Pass a 1-D y of shape ({shape[0]},) "
        "(combine the columns into one label per sequence, or fit one classifier per column)."
    )


def _refuse_nan_labels(y):
    """Raise naming the first NaN or infinite label of ``y``. Checked before any conversion:
    numpy would turn a NaN among strings into the string ``'nan'``, a class of its own."""
    if isinstance(y, (list, tuple)):
        items = list(y)
    else:
        a = np.asarray(y)
        if a.dtype.kind == "f" and a.ndim in (1, 2):
            bad = np.flatnonzero(~np.isfinite(a.reshape(-1)))
            items = [] if not bad.size else [None] * int(bad[0]) + [a.reshape(-1)[bad[0]].item()]
        elif a.dtype == object:
            items = a.reshape(-1).tolist()
        else:
            return
    for i, v in enumerate(items):
        if isinstance(v, (float, np.floating)) and not np.isfinite(v):
            raise ValueError(
                f"y[{i}] is {float(v)!r}: every sequence needs a label (NaN is not a class). "
                "Remove the unlabelled sequences (and their rows of X), or give them a label."
            )


def _unique_labels(y):
    """Sorted unique labels; general objects are sorted by value if possible, else by repr."""
    y = np.asarray(y) if not isinstance(y, np.ndarray) else y
    if y.dtype != object or all(_is_plain_label(v) for v in y):
        return np.unique(y)
    uniq = list(dict.fromkeys(y.tolist()))
    try:
        uniq = sorted(uniq)
    except TypeError:
        uniq = sorted(uniq, key=lambda v: (type(v).__name__, repr(v)))
    return _object_labels(uniq)


def _encode_labels(y, classes, what):
    """Indices of ``y`` in ``classes``; raise naming the labels that are not there."""
    if classes.dtype == object and not all(_is_plain_label(v) for v in classes):
        index = {c: i for i, c in enumerate(classes.tolist())}
        codes = np.array([index.get(v, -1) for v in y.tolist()], dtype=np.intp)
        known = codes >= 0
    else:
        known = np.isin(y, classes)
        codes = None
    if not known.all():
        unknown = list(dict.fromkeys(y[~known].tolist()))
        raise ValueError(
            f"y holds label(s) {unknown[:5]} that are not among the classes {what} "
            f"{classes[:10].tolist()}. Pass all classes to the first partial_fit call "
            "(classes=...), or refit without warm_start."
        )
    if codes is None:
        codes = np.searchsorted(classes, y).astype(np.intp)
    return codes


class _LabelTargetsMixin:
    """Class-label bookkeeping of the classifier and the tagger (``classes_``, class weights)."""

    def _set_classes(self, labels, classes, incremental_first):
        """Set ``classes_`` from ``classes`` (partial_fit) or from the labels seen."""
        if incremental_first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: give every label "
                    "that will ever occur, e.g. classes=np.unique(y_all)."
                )
            self.classes_ = _unique_labels(_as_label_array(classes)[0])
        else:
            self.classes_ = _unique_labels(labels)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes, but y has 1 class "
                f"({self.classes_.tolist()[:1]!r}). A classifier cannot be trained on a single "
                "class; check y."
            )

    def _class_weight_vector(self, codes, incremental):
        """Class weights aligned with ``classes_`` (``None`` without class_weight).

        ``"balanced"`` gives class ``c`` the weight ``n / (n_present * count_c)`` over the classes
        present in ``codes`` (scikit-learn's rule); a dict maps labels to weights, 1 for the others.
        """
        cw = self.class_weight
        if cw is None:
            return None
        n_classes = len(self.classes_)
        if isinstance(cw, str):
            if incremental:
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: the class "
                    "frequencies of all the data are unknown there. Compute the weights once "
                    "with sklearn.utils.class_weight.compute_class_weight and pass them as a dict."
                )
            counts = np.bincount(codes, minlength=n_classes)
            present = counts > 0
            out = np.ones(n_classes)
            out[present] = codes.size / (present.sum() * counts[present])
            return out
        out = np.ones(n_classes)
        for label, weight in cw.items():
            hit = [i for i, c in enumerate(self.classes_.tolist()) if c == label]
            if not hit:
                raise ValueError(
                    f"class_weight has a weight for {label!r}, which is not a class; the classes "
                    f"are {self.classes_.tolist()[:10]}. Use the labels of y as keys."
                )
            if not (isinstance(weight, Number) and np.isfinite(weight) and weight >= 0):
                raise ValueError(f"class_weight[{label!r}] must be a finite number >= 0, got "
                                 f"{weight!r}.")
            out[hit[0]] = float(weight)
        return out

    def _label_attributes(self):
        return ("classes_",)

    def _reference_loss(self, targets):
        """Cross-entropy of the uniform prediction: log of the number of classes."""
        return math.log(len(self.classes_))


@document_parameters
class RNNClassifier(ClassifierMixin, PooledOutputMixin, _LabelTargetsMixin,
                    BaseRNNEstimator):
    r"""Recurrent neural network classifier: one label per sequence.

    Each sequence runs through an optional token embedding and the recurrent layers; its outputs
    are pooled over the real (unpadded) steps into one vector, which a dense softmax layer maps to
    class probabilities. Trained with minibatches of sequences of similar length,
    gradient clipping and recovery from non-finite steps.

    Parameters
    ----------
    [shared parameters: cell hidden_size num_layers bidirectional skip]
    pooling : {"max", "mean", "last"}, default="max"
        How the recurrent outputs of a sequence become one vector: the element-wise maximum or mean
        over the real steps, or the state at the last real step (for a bidirectional layer, the
        forward state at the last step and the backward state at the first). Max pooling is the
        default because it also finds short events in long sequences (see Notes).
    bag_of_embeddings : bool or "auto", default="auto"
        Also give the output layer a bag of embeddings of each sequence of token ids: its token
        vectors summed and divided by the square root of its length, next to the pooled
        recurrent outputs (a fastText-like path). ``"auto"``: on for long documents (see Notes),
        off otherwise and in ``partial_fit``. Float input has no token vectors: ``True`` there is
        an error.
    frame_size : int or "auto", default="auto"
        Read float series in frames: ``frame_size`` consecutive steps of ``n_features`` values
        become one step of ``frame_size * n_features`` values (the last frame is filled up by
        repeating the last step), so the recurrence runs over ``ceil(T / frame_size)`` steps.
        ``"auto"``: for long series (see Notes) about 50 frames per series, ``round(median
        length / 50)`` steps per frame; 1 (step by step) otherwise and in ``partial_fit``.
        ``frame_size_`` says which. Token ids are always read step by step.
    crop_fraction : float in (0, 1] or "auto", default="auto"
        Window slicing while training: every epoch, each training series is read as a random
        window of ``crop_fraction`` of its steps, drawn anew every epoch, and an epoch holds each
        series ``ceil(512 / n_samples)`` times (at least once) so that it reads at least 512
        windows; prediction reads the whole series. 1 trains on whole series. ``"auto"``: 0.9 for
        long series (see Notes), 1 otherwise and in ``partial_fit``.
    difference : bool or "auto", default="auto"
        Read float series with their first difference beside them: every channel ``x`` gets a
        channel ``d`` with ``d[0] = 0`` and ``d[t] = x[t] - x[t - 1]`` (of the standardised
        series), divided by its own standard deviation over the series, so that the network
        reads ``2 * n_features`` values per step (before framing). ``"auto"``: on for long series
        (see Notes), off otherwise and in ``partial_fit``. ``difference_`` says which. Token
        ids have no difference: ``True`` there is an error.
    linear : bool or "auto", default="auto"
        Add to the network's logits those of a linear model on the bag of each sequence's token
        ids (a "wide" part next to the recurrent "deep" one): a logistic regression on TF-IDF
        features of the first id of every step, fitted by scikit-learn on the training
        sequences before the network's epochs (``partial_fit`` keeps it as it is). The network
        then learns what the linear model leaves unexplained, its logits added to the linear
        model's (see Notes). ``"auto"``: on for token ids in ``fit``, off for float input,
        where ``True`` is an error. With it, ``max_iter="auto"`` gives long documents (see
        Notes) 3 epochs.
    [shared parameters: dropout recurrent_dropout embedding_dim vocab_size standardize optimizer]
    [shared parameters: learning_rate batch_size max_iter clip_norm lr_schedule weight_decay]
    [shared parameters: time_budget early_stopping validation_fraction n_iter_no_change tol]
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss (``{label: weight}``); ``"balanced"`` uses
        ``n_samples / (n_classes * np.bincount(y))``.
    [shared parameters: random_state verbose backend warm_start dtype callbacks]
    [shared parameters: checkpoint_path precision]

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted: numbers, strings, or any hashable objects such as tuples (kept
        whole in an object array; sorted by value, or by ``repr`` if they cannot be compared).
    [shared attributes: n_features_in_ vocab_size_ feature_mean_,feature_scale_ network_]
    frame_size_ : int
        Steps per frame the fitted network reads (1: step by step; see ``frame_size``).
    difference_ : bool
        Whether the fitted network reads the series' first difference beside them (see
        ``difference``).
    [shared attributes: loss_curve_ grad_norm_curve_ lr_curve_ validation_scores_]
    [shared attributes: best_validation_score_]
    [shared attributes: best_loss_ n_iter_ t_ history_ stop_reason_]

    See Also
    --------
    RNNRegressor : one or more real values per sequence.
    RNNTagger : one label per step.
    fastrnn.text.SequenceVectorizer : raw text to token ids.

    Notes
    -----
    Input forms (details in the user guide, "Input formats"): a 2-D array ``(n_samples, T)`` (one
    value, or one token id, per step), a 3-D array ``(n_samples, T, n_features)``, or a list of
    arrays of different lengths. With token ids, trailing ``PAD`` (0) ids are padding. NaN is
    never padding: it is an error.

    Long documents: token ids of more than 400,000 time steps in all (1,200 reviews of 800 words),
    for which ``max_iter="auto"`` gives fewer than 10 epochs (see ``max_iter``). There the network
    alone fits the training texts in a few epochs and loses to a linear model over word counts.
    ``bag_of_embeddings="auto"`` adds the bag of embeddings, which learns what such a model learns;
    with ``max_iter="auto"`` it learns fast enough only with a higher rate, so
    ``learning_rate="auto"`` becomes 4e-3, and ``early_stopping="auto"`` trains on all the data
    (5 epochs give early stopping nothing to stop, and choosing one of them on a tenth of the data
    was noise). On sentences (2,400 of 25 words) the bag cost a point of accuracy, so shorter data
    keep the recurrent model alone. The user guide ("Text") gives the measurements.

    Long series: univariate float series whose median length is at least 200 steps, in ``fit``.
    On few of them (ArrowHead: 36 training series of 251 steps) a recurrence over every step
    learned poorly; ``frame_size="auto"`` reads them in about 50 frames and ``crop_fraction=
    "auto"`` trains on random windows of 90 % of each series (window slicing, Le Guennec et al.,
    2016, "Data augmentation for time series classification using convolutional neural
    networks"). ``difference="auto"`` adds the first difference of each series, scaled to unit
    standard deviation, as a second channel: a smooth series changes little from one step to
    the next, and the scaled difference brings those changes, the bends of its shape, to the
    scale of the series (the series and its first derivative read together, as Górecki and
    Łuczak, 2013, "Using derivatives in time series classification", Data Mining and Knowledge
    Discovery, do for distances). With both rules the default went from 69.3 % to 83.4 % on
    ArrowHead, where 1-NN with the Euclidean distance reaches 80.0 %. The defaults study
    (``benchmarks/defaults_study.py``) gives the measurements.
    A model read in frames or with the difference cannot stream step by step, nor be exported
    to ONNX.
    The linear part follows the wide and deep models of Cheng et al. (2016, "Wide & deep
    learning for recommender systems", DLRS): a linear model on sparse features beside a deep
    one, the linear part remembering what single tokens say, the recurrent part generalising
    over their order and spelling. Here they are fitted one after the other, as in forward
    stagewise additive modelling: the linear part first, by a convex solver (a logistic
    regression with ``C=10`` on sublinear TF-IDF features), then the network with the linear
    logits as a fixed offset. Trained jointly with Adam instead, a table of token weights
    learned too little for rare tokens and did not help. The user guide ("Text") gives the
    measurements.

    Float series of several channels (JapaneseVowels: 12 cepstrum coefficients per step, 7 to 29
    steps) get ``cell="auto"``'s GRU and ``recurrent_dropout="auto"``'s 0.2. Over ten seeds on
    JapaneseVowels the LSTM averaged 98.2 % test accuracy (97.6 to 98.9), no better than a
    logistic regression on six summary features per channel (98.4 %), whatever its size, dropout,
    weight decay, learning rate, batch size or number of epochs; the GRU with recurrent dropout
    averaged 98.6 % (98.1 to 98.9), and it also fitted BasicMotions (6 channels, 100 steps)
    without an error over five seeds, where the LSTM averaged 99.0 %. On univariate series the
    LSTM stays: the GRU lost a point on ItalyPowerDemand (94.5 % against 95.5 %, five seeds) and
    three on ArrowHead. The defaults study gives the measurements.

    Max pooling over the states of a bidirectional LSTM was the best sentence encoder among those
    compared by Conneau et al. (2017, "Supervised learning of universal sentence representations
    from natural language inference data", EMNLP). On GunPoint (a 150-step series whose class shows
    in a short segment) we measured mean pooling near chance and max pooling at 96 %; on
    JapaneseVowels all three poolings reach 97-98 %.

    Examples
    --------
    >>> from fastrnn import RNNClassifier
    >>> from fastrnn.datasets import make_sequence_classification
    >>> X, y = make_sequence_classification(n_samples=60, random_state=0)
    >>> clf = RNNClassifier(hidden_size=16, learning_rate=0.01, max_iter=15, random_state=0)
    >>> clf.fit(X, y).predict(X[:4]).shape
    (4,)
    >>> clf.predict_proba(X[:4]).shape
    (4, 2)
    >>> clf.transform(X[:4]).shape  # the pooled states of both directions
    (4, 32)
    >>> bool(clf.score(X, y) > 0.9)
    True
    """

    _parameter_constraints = {
        **BaseRNNEstimator._parameter_constraints,
        "cell": [StrOptions({*BaseRNNEstimator._parameter_constraints["cell"][0].options,
                             "auto"})],
        "recurrent_dropout": [*BaseRNNEstimator._parameter_constraints["recurrent_dropout"],
                              StrOptions({"auto"})],
        "precision": [StrOptions({"float32", "bf16"})],
        "pooling": [StrOptions({"last", "mean", "max"})],
        "bag_of_embeddings": ["boolean", StrOptions({"auto"})],
        "frame_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "crop_fraction": [Interval(Real, 0, 1, closed="right"), StrOptions({"auto"})],
        "difference": ["boolean", StrOptions({"auto"})],
        "linear": ["boolean", StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    _saved_attributes = SAVED_ATTRIBUTES["RNNClassifier"]
    _param_docs = {
        "cell": ('{"auto", "lstm", "gru", "rnn", "mingru", "minlstm", "indrnn"}', """
        Recurrent cell: LSTM, GRU, simple (Elman, tanh) RNN, or one with an element-wise
        recurrence: minGRU, minLSTM (Feng et al. 2024; no ``recurrent_dropout``) or IndRNN (Li et
        al. 2018). ``"auto"``: a GRU on float series of several channels, an LSTM on univariate
        series and on token ids (see Notes)."""),
        "recurrent_dropout": ('float or "auto"', """
        Dropout rate on the recurrent connections (one mask per sequence, Gal & Ghahramani
        2016). ``"auto"``: 0.2 on float series of several channels (0 with minGRU and minLSTM,
        which have no recurrent weight), 0 on univariate series and on token ids (see Notes)."""),
        "learning_rate": ('float or "auto"', """
        Learning rate of a named optimiser. ``"auto"``: 2e-3, or 4e-3 for long documents with
        ``max_iter="auto"`` (see Notes); ``partial_fit`` reads it as 2e-3."""),
        "early_stopping": (PARAMS["early_stopping"][0], PARAMS["early_stopping"][1] + """
        For long documents with ``max_iter="auto"`` (see Notes), ``"auto"`` holds nothing out:
        their few epochs leave nothing to stop."""),
    }

    def __init__(self, cell="auto", hidden_size=64, num_layers=1, bidirectional=True,
                 pooling="max", bag_of_embeddings="auto", frame_size="auto", crop_fraction="auto",
                 difference="auto", dropout=0.2, recurrent_dropout="auto",
                 embedding_dim="auto", vocab_size=None, standardize=True, optimizer="adam",
                 learning_rate="auto", batch_size="auto", max_iter="auto", clip_norm=5.0,
                 lr_schedule="cosine", weight_decay=0.0, time_budget=None, early_stopping="auto",
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, class_weight=None,
                 random_state=None, verbose=0, backend="auto", warm_start=False,
                 dtype="float32", callbacks=None,
                 checkpoint_path=None, skip=None, linear="auto", precision="float32"):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        if tags.transformer_tags is not None:
            # transform returns the model's dtype, whatever the input's
            tags.transformer_tags.preserves_dtype = []
        return tags

    # ------------------------------------------------------------------ hooks
    def _pooling(self):
        return self.pooling

    def _n_outputs(self):
        return len(self.classes_)

    def _long_documents(self):
        """Whether ``fit`` reads long documents: token ids of more time steps in all than
        ``max_iter="auto"`` reads in ``AUTO_EPOCHS[0]`` epochs (400,000), so that it gives them
        fewer epochs. The "auto" values of ``bag_of_embeddings``, ``learning_rate`` and
        ``early_stopping`` depend on it (see Notes)."""
        steps = getattr(self, "_fit_time_steps", None)
        return (steps is not None and getattr(self, "vocab_size_", None) is not None
                and steps * _base.AUTO_EPOCHS[0] > _base.AUTO_TIME_STEPS)

    # long series: frames and window slicing
    def _fit(self, X, y, sample_weight=None, *, incremental=False, **kwargs):
        # what the rule for long series needs to know during this fit: partial_fit or not, and
        # (set by the first _validate_X, the training data's) whether the series are long
        self._fit_series = {"incremental": incremental, "long": None}
        try:
            return super()._fit(X, y, sample_weight, incremental=incremental, **kwargs)
        finally:
            del self._fit_series

    def _long_series(self, data):
        """Whether ``fit`` reads long series: univariate float series whose median length is
        at least :data:`LONG_SERIES_STEPS` (not in ``partial_fit``)."""
        fitting = getattr(self, "_fit_series", None)
        return (fitting is not None and not fitting["incremental"] and not data.tokens
                and data.n_features == 1 and float(np.median(data.lengths)) >= LONG_SERIES_STEPS)

    def _validate_X(self, X, reset):
        data = super()._validate_X(X, reset)
        fitting = getattr(self, "_fit_series", None)
        if fitting is not None and fitting["long"] is None:
            fitting["long"] = self._long_series(data)
        if reset:
            k = self.frame_size
            if k == "auto":
                k = (max(1, round(float(np.median(data.lengths)) / FRAMES_PER_SERIES))
                     if self._long_series(data) else 1)
            if k > 1 and data.tokens:
                raise ValueError(
                    f"frame_size={k} reads float series in frames, but X holds token ids. Use "
                    "frame_size='auto' or 1 for token ids.")
            if data.tokens and self.crop_fraction != "auto" and self.crop_fraction < 1:
                raise ValueError(
                    f"crop_fraction={self.crop_fraction} trains on windows of float series, but "
                    "X holds token ids. Use crop_fraction='auto' or 1 for token ids.")
            diff = self.difference
            if diff == "auto":
                diff = self._long_series(data)
            elif diff and data.tokens:
                raise ValueError(
                    "difference=True adds the first difference of float series, but X holds "
                    "token ids. Use difference='auto' or False for token ids.")
            self.frame_size_ = int(k)
            self.difference_ = bool(diff)
        return series_input(data, getattr(self, "frame_size_", 1),
                            getattr(self, "difference_", False))

    def _crop_fraction(self):
        if self.crop_fraction != "auto":
            return float(self.crop_fraction)
        fitting = getattr(self, "_fit_series", None)
        return AUTO_CROP_FRACTION if fitting is not None and fitting["long"] else 1.0

    def _crop_copies(self, n_train):
        """How often an epoch with window slicing holds each training series."""
        return max(1, math.ceil(CROPS_PER_EPOCH / n_train))

    @property
    def _task_class(self):
        fitting = getattr(self, "_fit_series", None)
        windows = fitting is not None and not fitting["incremental"] and self._crop_fraction() < 1
        return _WindowTask if windows else _SequenceTask

    def _few_epochs(self):
        return self.max_iter == "auto" and self._long_documents()

    def _n_epochs(self, n_train, n_time_steps=None):
        if self._task_class is _WindowTask:
            # an epoch of window slicing holds every series `copies` times
            copies = self._crop_copies(n_train)
            n_train, n_time_steps = n_train * copies, n_time_steps and n_time_steps * copies
        epochs = super()._n_epochs(n_train, n_time_steps)
        if self._few_epochs() and self.network_.linear is not None:
            # the linear part reads the bag of words: the network needs fewer epochs
            epochs = min(epochs, _base.AUTO_MIN_EPOCHS)
        return epochs

    def _learning_rate(self):
        if self.learning_rate != "auto":
            return self.learning_rate
        return AUTO_LEARNING_RATE["long_tokens" if self._few_epochs() else "default"]

    def _stopping_mode(self, n_train, given_val, incremental):
        if (self.early_stopping == "auto" and given_val is None and not incremental
                and self._few_epochs()):
            return False, False  # too few epochs to stop early: train on all the data
        return super()._stopping_mode(n_train, given_val, incremental)

    def _network_kwargs(self):
        kw = super()._network_kwargs()
        bag = self.bag_of_embeddings
        if bag == "auto":
            bag = self._long_documents()
        elif bag and getattr(self, "vocab_size_", None) is None:
            raise ValueError(
                "bag_of_embeddings=True adds up the token vectors of each sequence, but X holds "
                "float features, not token ids. Use bag_of_embeddings='auto' or False for float "
                "input (or encode the sequences as token ids).")
        kw["bag_of_embeddings"] = bool(bag)
        kw["linear"] = self._use_linear()
        return kw

    def _cell(self):
        """``(cell, recurrent_dropout)`` of a new network, the ``"auto"`` values resolved: a GRU
        with recurrent dropout 0.2 on float series of several channels, an LSTM without it on
        token ids and univariate series (see Notes)."""
        several = (getattr(self, "vocab_size_", None) is None
                   and getattr(self, "n_features_in_", 1) > 1)
        cell = self.cell
        if cell == "auto":
            cell = MULTICHANNEL_CELL if several else "lstm"
        rd = self.recurrent_dropout
        if rd == "auto":
            rd = (MULTICHANNEL_RECURRENT_DROPOUT if several and CELLS[cell].recurrent_weight
                  else 0.0)
        return cell, float(rd)

    def _use_linear(self):
        """Whether a new network gets a linear part (see ``linear``)."""
        tokens = getattr(self, "vocab_size_", None) is not None
        if self.linear == "auto":
            return tokens and getattr(self, "_fit_time_steps", None) is not None
        if self.linear and not tokens:
            raise ValueError(
                "linear=True adds a linear model on the bag of each sequence's token ids, but X "
                "holds float features, not token ids. Use linear='auto' or False for float "
                "input (or encode the sequences as token ids).")
        return bool(self.linear)

    def _run_epochs(self, train, val, **kw):
        """Fit the network's linear part, if it has one, on the training part (not in
        ``partial_fit``), then run the epochs."""
        net = self.network_
        if net.linear is not None and not kw.get("incremental"):
            from ._linear_part import fit_linear_part

            data, codes, sw = train
            if self._fit_class_weight is not None:
                sw = (np.ones(len(codes)) if sw is None else sw) * self._fit_class_weight[codes]
            fit_linear_part(net, data.seqs, codes, len(self.classes_), sw)
        return super()._run_epochs(train, val, **kw)

    def _validate_targets(self, y, data, reset, classes=None, incremental=False):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None. Pass "
                "one label per sequence."
            )
        _refuse_multi_output(y, type(self).__name__)
        _refuse_nan_labels(y)
        y, general = _as_label_array(y)
        if not general:
            y = column_or_1d(y, warn=True)
            check_classification_targets(y)
        _check_y_length(len(data), y.shape[0])
        if reset:
            self._set_classes(y, classes, incremental_first=incremental)
            what = "given in classes=" if incremental else "of y"
        else:
            given = None if classes is None else _unique_labels(_as_label_array(classes)[0])
            if given is not None and not (len(given) == len(self.classes_) and all(
                    a == b for a, b in zip(given.tolist(), self.classes_.tolist()))):
                raise ValueError(
                    f"classes={given.tolist()[:10]} differs from the classes of the "
                    f"first partial_fit call, {self.classes_.tolist()[:10]}; classes cannot change."
                )
            what = "the model was fitted with,"
        codes = _encode_labels(y, self.classes_, what)
        self._fit_class_weight = self._class_weight_vector(codes, incremental)
        return codes

    def _check_fit_targets(self, targets, sample_weight, incremental=False):
        if incremental or sample_weight is None:
            return
        weighted = np.unique(targets[sample_weight > 0])
        if len(weighted) < 2:
            raise ValueError(
                f"sample_weight leaves only 1 class with positive weight "
                f"({self.classes_[weighted].tolist()!r}); a classifier needs at least 2 classes "
                "to learn from. Check the sample weights."
            )

    def _subset_targets(self, targets, idx):
        return targets[idx]

    def _stratify(self, targets):
        return targets

    def _make_loss(self, targets, idx, lengths, sample_weight):
        yb = targets[idx]
        cw = self._fit_class_weight
        w = np.ones(len(idx)) if sample_weight is None else sample_weight
        if cw is not None:
            w = w * cw[yb]
        total = float(w.sum())

        def loss_fn(out):
            return softmax_cross_entropy(out, yb, sample_weight=sample_weight, class_weight=cw)

        # the same loss for a step on the GPU (fastrnn.train.Trainer.start_device)
        loss_fn.device_loss = ("ce", yb, w / total if total > 0 else np.zeros(len(idx)))
        return loss_fn, total

    def _validation_score(self, data, targets, sample_weight):
        from ._base import network_outputs

        logits = network_outputs(self.network_, data)
        correct = (np.argmax(logits, axis=1) == targets).astype(np.float64)
        return float(np.average(correct, weights=sample_weight))

    # ------------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def fit(self, X, y, sample_weight=None, validation_data=None, resume=False):
        """Train the classifier (``max_iter`` epochs at most; see ``early_stopping``).

        Parameters
        ----------
        [shared parameters: X]
        y : array-like of shape (n_samples,)
            One label per sequence, of any hashable type numpy can sort (str, int, ...).
        [shared parameters: sample_weight]
        [shared parameters: validation_data resume]

        Returns
        -------
        self : RNNClassifier
        """
        return self._fit(X, y, sample_weight, validation_data=validation_data, resume=resume)

    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch over ``(X, y)``, keeping the model and the optimiser state.

        Parameters
        ----------
        [shared parameters: X]
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            All the classes of the problem; required on the first call, optional afterwards.
        [shared parameters: sample_weight]

        Returns
        -------
        self : RNNClassifier
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    @document_parameters
    def decision_function(self, X):
        """Unnormalised class scores (logits).

        Parameters
        ----------
        [shared parameters: X]

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            For two classes, the score of ``classes_[1]`` minus that of ``classes_[0]``
            (positive means ``classes_[1]``), as scikit-learn's binary classifiers do.
        """
        z = np.asarray(self._outputs(X), dtype=np.float64)
        if z.shape[1] == 2:
            return z[:, 1] - z[:, 0]
        return z

    @document_parameters
    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        [shared parameters: X]

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), dtype float64
            Columns follow ``classes_``; rows sum to 1.
        """
        return softmax(np.asarray(self._outputs(X), dtype=np.float64), axis=1)

    @document_parameters
    def predict_log_proba(self, X):
        """Logarithm of the class probabilities.

        Parameters
        ----------
        [shared parameters: X]

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes), dtype float64
        """
        return log_softmax(np.asarray(self._outputs(X), dtype=np.float64), axis=1)

    @document_parameters
    def score(self, X, y, sample_weight=None):
        """Accuracy: the share of sequences whose predicted label is right.

        Parameters
        ----------
        [shared parameters: X]
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        pred = self.predict(X)
        y, general = _as_label_array(y)
        if not general:
            from sklearn.metrics import accuracy_score

            return float(accuracy_score(y, pred, sample_weight=sample_weight))
        _check_y_length(len(pred), len(y))
        correct = np.array([a == b for a, b in zip(pred.tolist(), y.tolist())], dtype=float)
        return float(np.average(correct, weights=sample_weight))

    @document_parameters
    def predict(self, X):
        """Most probable class of each sequence.

        Parameters
        ----------
        [shared parameters: X]

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        scores = self._outputs(X)
        return self.classes_[np.argmax(scores, axis=1)]
