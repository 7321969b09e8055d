"""Sequence tagging: :class:`RNNTagger`, one label per step."""

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import check_classification_targets

from .._params import store_params
from ..losses import log_softmax, sequence_softmax_cross_entropy, softmax
from ._docs import document_parameters
from ._base import BaseRNNEstimator, network_outputs
from ._inputs import check_label_sequences, check_sample_weight
from ._saved import SAVED_ATTRIBUTES
from .classifier import _encode_labels, _LabelTargetsMixin

__all__ = ["RNNTagger"]


@document_parameters
class RNNTagger(_LabelTargetsMixin, BaseRNNEstimator):
    r"""Recurrent neural network sequence tagger: one label per step (part of speech, entities).

    Each step's recurrent output goes through a dense softmax layer over the tags; the loss is the
    cross-entropy averaged over all real steps. A bidirectional network sees the whole
    sentence at every step and usually tags much better.

    Parameters
    ----------
    [shared parameters: cell hidden_size num_layers skip]
    bidirectional : bool, default=True
        Run each layer in both directions (the tag of a word depends on what follows it too).
    [shared parameters: dropout recurrent_dropout embedding_dim vocab_size standardize optimizer]
    [shared parameters: learning_rate batch_size max_iter clip_norm lr_schedule weight_decay]
    [shared parameters: time_budget early_stopping validation_fraction n_iter_no_change tol]
    class_weight : dict, "balanced" or None, default=None
        Weights of the tags in the loss; ``"balanced"`` uses the tag frequencies over all steps.
    [shared parameters: random_state verbose backend warm_start dtype callbacks]
    [shared parameters: checkpoint_path]

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The tags.
    [shared attributes: n_features_in_ vocab_size_ feature_mean_,feature_scale_ network_]
    [shared attributes: loss_curve_ grad_norm_curve_ lr_curve_ validation_scores_]
    [shared attributes: best_validation_score_]
    [shared attributes: best_loss_ n_iter_ t_ history_ stop_reason_]

    See Also
    --------
    RNNClassifier : one label per sequence.

    Notes
    -----
    ``y`` is a list of label sequences, ``y[i]`` holding one label per step of ``X[i]`` (for token
    ids, per step after the trailing ``PAD`` ids are removed). ``predict`` returns a list of label
    arrays in the same form. With a rectangular ``y`` of the padded width, the labels of padded
    steps are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn import RNNTagger
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randint(4, 10, size=rng.randint(2, 9)) for _ in range(60)]   # token ids
    >>> y = [np.where(x % 2 == 0, "even", "odd") for x in X]                   # a tag per token
    >>> tagger = RNNTagger(embedding_dim=8, hidden_size=8, learning_rate=0.05, max_iter=15,
    ...                    random_state=0).fit(X, y)
    >>> tagger.predict(X[:2])[0].shape == X[0].shape
    True
    >>> bool(tagger.score(X, y) > 0.95)
    True
    """

    _parameter_constraints = {
        **BaseRNNEstimator._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    _saved_attributes = SAVED_ATTRIBUTES["RNNTagger"]

    def __init__(self, cell="lstm", hidden_size=64, num_layers=1, bidirectional=True,
                 dropout=0.3, recurrent_dropout=0.0, embedding_dim="auto", vocab_size=None,
                 standardize=True, optimizer="adam", learning_rate=3e-3, batch_size="auto",
                 max_iter="auto", clip_norm=5.0, lr_schedule="cosine", weight_decay=0.0,
                 time_budget=None, early_stopping="auto", validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, class_weight=None, random_state=None, verbose=0,
                 backend="auto", warm_start=False, dtype="float32", callbacks=None,
                 checkpoint_path=None, skip=None):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ------------------------------------------------------------------ hooks
    def _pooling(self):
        return None

    def _n_outputs(self):
        return len(self.classes_)

    def _validate_targets(self, y, data, reset, classes=None, incremental=False):
        seqs = check_label_sequences(y, data.lengths)
        flat = np.concatenate(seqs)
        check_classification_targets(flat)
        if reset:
            self._set_classes(flat, classes, incremental_first=incremental)
            what = "given in classes=" if incremental else "of y"
        else:
            what = "the model was fitted with,"
        codes = _encode_labels(flat, self.classes_, what)
        self._fit_class_weight = self._class_weight_vector(codes, incremental)
        bounds = np.cumsum(data.lengths)[:-1]
        return np.split(codes, bounds)

    def _subset_targets(self, targets, idx):
        return [targets[i] for i in idx]

    def _make_loss(self, targets, idx, lengths, sample_weight):
        B, T = len(idx), int(lengths.max())
        Y = np.zeros((B, T), dtype=np.intp)
        for b, i in enumerate(idx):
            Y[b, : lengths[b]] = targets[i]
        cw = self._fit_class_weight
        real = np.arange(T)[None, :] < lengths[:, None]
        w = np.ones((B, T)) if sample_weight is None else np.repeat(
            sample_weight[:, None], T, axis=1)
        if cw is not None:
            w = w * cw[Y]
        total = float(w[real].sum())

        def loss_fn(out):
            return sequence_softmax_cross_entropy(out, Y, lengths, sample_weight=sample_weight,
                                                  class_weight=cw)

        # the same loss for a step on the GPU (fastrnn.train.Trainer.start_device): a weight per
        # step, zero at padded steps
        loss_fn.device_loss = ("ce", Y, np.where(real, w, 0.0) / total if total > 0
                               else np.zeros((B, T)))
        return loss_fn, total

    def _validation_score(self, data, targets, sample_weight):
        logits = network_outputs(self.network_, data)
        return self._token_accuracy([np.argmax(z, axis=1) for z in logits], targets,
                                    sample_weight)

    @staticmethod
    def _token_accuracy(pred, true, sample_weight):
        correct = np.concatenate([np.asarray(p) == np.asarray(t) for p, t in zip(pred, true)])
        if sample_weight is None:
            return float(correct.mean())
        w = np.repeat(sample_weight, [len(t) for t in true])
        return float(np.average(correct, weights=w))

    # ------------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def fit(self, X, y, sample_weight=None, validation_data=None, resume=False):
        """Train the tagger.

        Parameters
        ----------
        [shared parameters: X]
        y : list of array-like of shape (T_i,)
            One label per step of each sequence, of any hashable type numpy can sort.
        [shared parameters: sample_weight]
        [shared parameters: validation_data resume]

        Returns
        -------
        self : RNNTagger
        """
        return self._fit(X, y, sample_weight, validation_data=validation_data, resume=resume)

    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch over ``(X, y)``, keeping the model and the optimiser state.

        Parameters
        ----------
        [shared parameters: X]
        y : list of array-like of shape (T_i,)
        classes : array-like of shape (n_classes,), default=None
            All the tags; required on the first call.
        [shared parameters: sample_weight]

        Returns
        -------
        self : RNNTagger
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def decision_function(self, X):
        """Unnormalised tag scores (logits) of every step.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        scores : list of ndarray of shape (T_i, n_classes), dtype float64
        """
        return [np.asarray(z, dtype=np.float64) for z in self._outputs(X)]

    def predict_proba(self, X):
        """Tag probabilities of every step.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        proba : list of ndarray of shape (T_i, n_classes), dtype float64
            Columns follow ``classes_``.
        """
        return [softmax(z, axis=1) for z in self.decision_function(X)]

    def predict_log_proba(self, X):
        """Logarithm of the tag probabilities of every step.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        log_proba : list of ndarray of shape (T_i, n_classes), dtype float64
        """
        return [log_softmax(z, axis=1) for z in self.decision_function(X)]

    def predict(self, X):
        """Most probable tag of every step.

        Parameters
        ----------
        X : array-like or list of arrays

        Returns
        -------
        y : list of ndarray of shape (T_i,)
            One label array per sequence, labels from ``classes_``.
        """
        scores = self._outputs(X)
        return [self.classes_[np.argmax(z, axis=1)] for z in scores]

    def score(self, X, y, sample_weight=None):
        """Token accuracy: the share of steps whose predicted tag is right.

        Parameters
        ----------
        X : array-like or list of arrays
        y : list of array-like of shape (T_i,)
            True tags.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sequence (applied to each of its steps).

        Returns
        -------
        score : float
        """
        self._check_fitted()
        data = self._validate_X(X, reset=False)
        true = check_label_sequences(y, data.lengths)
        sw = check_sample_weight(sample_weight, len(data))
        logits = network_outputs(self.network_, data)
        pred = [self.classes_[np.argmax(z, axis=1)] for z in logits]
        return self._token_accuracy(pred, true, sw)
