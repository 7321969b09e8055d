"""Shared machinery of the recurrent estimators.

:class:`BaseRNNEstimator` holds what every estimator of :mod:`fastrnn.estimators` does the same
way, so that a subclass only says what its targets are and how its loss is computed:

* parameter validation (``_parameter_constraints``, scikit-learn's ``_fit_context``);
* input validation through :func:`fastrnn.estimators._inputs.check_sequences` and optional
  per-channel standardisation of float input;
* building the :class:`fastrnn.nn.SequenceNetwork` and the :class:`fastrnn.train.Trainer`;
* training through the shared :class:`fastrnn.train.TrainingLoop`
  (:meth:`BaseRNNEstimator._run_epochs`): epochs of length-bucketed minibatches
  (:func:`fastrnn.text.length_buckets`), early stopping on a validation split or on the training
  loss with ``tol`` / ``n_iter_no_change`` exactly as scikit-learn's ``MLPClassifier`` does,
  ``ConvergenceWarning``, ``warm_start`` and ``partial_fit``, one progress bar per fit,
  checkpoints and ``fit(..., resume=True)`` (:mod:`fastrnn.estimators._checkpoint`);
* inference in length buckets (:func:`network_outputs`), which changes no state of the model;
* step-by-step inference (``init_state`` / ``step``) from
  :class:`fastrnn.estimators._streaming.StreamingMixin`;
* persistence (``save(path)`` / :func:`fastrnn.load`) from
  :class:`fastrnn.estimators._saving.SavingMixin`.

Subclass hooks
--------------
``_validate_targets(y, data, reset, incremental, **kwargs)``
    Check ``y`` against the validated input ``data`` (a :class:`~._inputs.SequenceData`) and
    return the encoded targets; with ``reset`` also set the target-related fitted attributes.
``_n_outputs()``
    Size of the network's output layer (after ``_validate_targets`` with ``reset``).
``_pooling()``
    The network's pooling (``None`` for per-step outputs).
``_subset_targets(targets, idx)``
    Targets of the sequences ``idx`` (used by the validation split).
``_stratify(targets)`` (optional)
    Labels to stratify the validation split on (classifiers).
``_make_loss(targets, idx, lengths, sample_weight)``
    ``(loss_fn, weight)`` for one minibatch: ``loss_fn(out) -> (loss, dout)`` for
    :meth:`fastrnn.train.Trainer.step`, and the batch's total weight (used to average the epoch
    loss).
``_validation_score(data, targets, sample_weight)``
    Score on held-out data (higher is better), for early stopping.
``_reference_loss(targets)`` (optional)
    The loss of an uninformed prediction (the trainer's divergence check).
``_check_fit_targets(targets, sample_weight, incremental)`` (optional)
    Extra checks that need the sample weights.
``_saved_attributes`` (class attribute)
    Names of the fitted attributes that ``save`` writes (arrays, numbers, strings, lists).

What is written is in :mod:`fastrnn.estimators._saving`, what is checked when a file is read in
:mod:`fastrnn.estimators._saved`; the scikit-learn checks
that do not apply to sequence models, with the reason, in
:mod:`fastrnn.estimators._sklearn_checks`.
"""

import copy
import math
import os
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from ..nn import SequenceNetwork
from ..nn.recurrent import CELLS
from ..nn.init import check_random_state
from ..optim import AnnealingLR, ReduceLROnPlateau, get_optimizer
from ..text import length_buckets
from ..callbacks import Callback, LearningRateScheduler
from ..train import Batch, StoppingRule, Task, Trainer, TrainingLoop
from ._inference import check_fitted_input, network_outputs, standardized
from ._inputs import check_sample_weight, check_sequences, is_integer_input, scaled_column_by_column
from ._checkpoint import EstimatorCheckpoint
from ._docs import document_parameters
from ._quantize import QuantizeMixin
from ._saved import ESTIMATOR_FORMAT_VERSION, SAVED_ATTRIBUTES
from ._saving import SavingMixin
from ._sklearn_checks import SKLEARN_CHECKS_NOT_APPLICABLE
from ._streaming import StreamingMixin

__all__ = ["BaseRNNEstimator", "PooledOutputMixin", "network_outputs", "ESTIMATOR_FORMAT_VERSION"]

#: ``max_iter="auto"``: epochs for about this many optimisation steps, within these bounds
AUTO_STEPS = 3000
AUTO_EPOCHS = (10, 200)

#: ``max_iter="auto"`` on long sequences: no more epochs than read about this many time steps
#: (summed over the training sequences of all epochs), but at least :data:`AUTO_MIN_EPOCHS`;
#: the cost of an epoch grows with its steps, so 1,200 reviews of 750 words get 5 epochs where
#: 2,400 sentences of 25 words keep the epochs of :data:`AUTO_STEPS`
AUTO_TIME_STEPS = 4_000_000
AUTO_MIN_EPOCHS = 3

#: ``batch_size="auto"``: about this many batches per epoch, each of these many sequences at
#: least and at most (small data sets get small batches, hence more steps per epoch)
AUTO_BATCHES_PER_EPOCH = 32
AUTO_BATCH = (8, 32)

#: ``early_stopping="auto"``: early stopping only when the validation split would hold at least
#: this many sequences; a smaller one is too noisy to choose an epoch on (the fit then runs its
#: epochs to the end)
AUTO_MIN_VALIDATION = 100

#: ``lr_schedule="plateau"``: the learning rate is multiplied by this factor when the monitored
#: value did not improve by ``tol`` for this many epochs
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 3

#: Largest vocabulary inferred from the token ids (``vocab_size=None``); larger ids are a mistake
#: far more often than a real vocabulary (hashed ids, raw code points), and would allocate a huge
#: embedding. An explicit ``vocab_size`` has no such limit.
MAX_INFERRED_VOCAB = 2 ** 22

_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adam", "adamw")
_BACKENDS = ("auto", "numba", "cython", "cuda", "numpy")

#: parameter constraints shared by the estimators (scikit-learn's ``_parameter_constraints``)
COMMON_CONSTRAINTS = {
    "cell": [StrOptions(set(CELLS))],
    "hidden_size": [Interval(Integral, 1, None, closed="left")],
    "num_layers": [Interval(Integral, 1, None, closed="left")],
    "bidirectional": ["boolean"],
    "skip": [StrOptions({"residual", "dense", "highway"}), None],
    "dropout": [Interval(Real, 0, 1, closed="left")],
    "recurrent_dropout": [Interval(Real, 0, 1, closed="left")],
    "embedding_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
    "vocab_size": [Interval(Integral, 1, None, closed="left"), None],
    "standardize": ["boolean"],
    "optimizer": [StrOptions(set(_OPTIMIZERS)), HasMethods(["step", "state_dict"])],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "max_iter": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "lr_schedule": [StrOptions({"constant", "plateau", "cosine", "linear"})],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "time_budget": [Interval(Real, 0, None, closed="neither"), None],
    "callbacks": [list, None],
    "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
    "early_stopping": ["boolean", StrOptions({"auto"})],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
    "backend": [StrOptions(set(_BACKENDS))],
    "warm_start": ["boolean"],
    "dtype": [StrOptions({"float32", "float64"})],
    "checkpoint_path": [str, os.PathLike, None],
}


# ---------------------------------------------------------------------------------------------
# reusable pieces
# ---------------------------------------------------------------------------------------------


def auto_embedding_dim(vocab_size):
    """The token vector size of ``embedding_dim="auto"``: ``round(1.6 * V ** 0.56)`` kept in
    [8, 128], a rule of thumb that grows with the vocabulary (about 16 for 60 characters, the
    cap from about 5,000 words on)."""
    return int(min(128, max(8, round(1.6 * float(vocab_size) ** 0.56))))


class _Progressive(Callback):
    """Keeps a fitting estimator's fitted attributes up to date after every epoch (``n_iter_``,
    ``t_``, ``loss_curve_``, ``grad_norm_curve_``, ``lr_curve_``, ``history_``), so that
    callbacks (a checkpoint) and an interrupted fit see a consistent estimator."""

    def __init__(self, done):
        self.n_iter, self.t = done

    def on_epoch_end(self, est, loop, logs):
        est.n_iter_ = self.n_iter + loop.epoch
        est.t_ = self.t + loop.epoch * loop.task.items_per_epoch()
        est.loss_curve_.append(float(loop.loss_curve[-1]))
        est.grad_norm_curve_.append(loop.grad_norm_curve[-1])
        # a model loaded from a file of an older version has no learning-rate curve
        est.lr_curve_ = list(getattr(est, "lr_curve_", None) or []) + [float(logs["lr"])]
        entry = dict(logs, epoch=est.n_iter_)
        est.history_ = list(getattr(est, "history_", None) or []) + [entry]


class _SequenceTask(Task):
    """The training data of an estimator for the :class:`~fastrnn.train.TrainingLoop`:
    length-bucketed minibatches, drawn anew every epoch, and the validation score."""

    unit = "seq"

    def __init__(self, est, train, val):
        self.est = est
        self.data, self.targets, self.sw = train
        if hasattr(self.data, "padded"):  # batches cut from one array
            self.data = self.data.padded()
        self.val = val
        self.has_validation = val is not None
        self.batches = None

    def items_per_epoch(self):
        return len(self.data)

    def start_epoch(self, rng):
        self.batches = length_buckets(self.data.lengths, self.est._batch_size(len(self.data)),
                                      random_state=rng)
        return len(self.batches)

    def batch(self, j):
        idx = self.batches[j]
        swb = None if self.sw is None else self.sw[idx]
        if swb is not None and not swb.any():
            return None
        X, L = self.data.batch(idx)
        loss_fn, w = self.est._make_loss(self.targets, idx, L, swb)
        return Batch(X, L, loss_fn, None, w, len(idx))

    def evaluate(self):
        if self.val is None:
            return None
        return {"val_score": self.est._validation_score(*self.val)}

    def state_dict(self):
        sizes = np.array([len(b) for b in self.batches], np.int64)
        return {}, {"order": np.concatenate(self.batches), "sizes": sizes}

    def load_state_dict(self, meta, arrays):
        self.batches = np.split(arrays["order"], np.cumsum(arrays["sizes"])[:-1])
        return len(self.batches)


# ---------------------------------------------------------------------------------------------
# the base estimator
# ---------------------------------------------------------------------------------------------


class BaseRNNEstimator(StreamingMixin, SavingMixin, QuantizeMixin, BaseEstimator):
    """Base class of the recurrent estimators (see the module docstring for the subclass hooks).

    Not meant to be used directly. Parameters common to all subclasses are documented in
    :class:`fastrnn.estimators.RNNClassifier`.
    """

    _parameter_constraints = dict(COMMON_CONSTRAINTS)

    #: fitted attributes written by ``save`` (subclasses extend this)
    _saved_attributes = SAVED_ATTRIBUTES["BaseRNNEstimator"]
    #: the :class:`~fastrnn.train.Task` that cuts the training data into minibatches
    _task_class = _SequenceTask

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["2darray", "3darray"], "allow_nan": False,
                "_xfail_checks": dict(SKLEARN_CHECKS_NOT_APPLICABLE)}

    # ------------------------------------------------------------------ small helpers
    @property
    def _dtype(self):
        return np.dtype(self.dtype)

    def _is_fitted(self):
        return hasattr(self, "network_")

    def _check_fitted(self):
        if not self._is_fitted():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _uses_tokens(self):
        """Whether the fitted model reads token ids (it has an embedding)."""
        return self._is_fitted() and self.network_.embedding is not None

    @property
    def embedding_dim_(self):
        """Size of the token vectors of the fitted model (``None`` for float input)."""
        if not self._is_fitted():
            raise AttributeError("embedding_dim_ is set by fit.")
        emb = self.network_.embedding
        return None if emb is None else emb.embedding_dim

    def _name(self):
        return type(self).__name__

    # ------------------------------------------------------------------ input validation
    def _validate_X(self, X, reset):
        """Validate ``X``; at ``reset`` set ``n_features_in_``, ``vocab_size_`` and the
        standardisation statistics; otherwise check ``X`` against them. Returns standardised
        :class:`~._inputs.SequenceData` in the model's dtype."""
        if not reset:
            # validation_data of a first fit (no network yet) is read as its training data was
            tokens = (self._uses_tokens() if self._is_fitted()
                      else getattr(self, "vocab_size_", None) is not None)
            return check_fitted_input(
                X, tokens=tokens, n_features_in=self.n_features_in_, vocab_size=self.vocab_size_,
                feature_mean=getattr(self, "feature_mean_", None),
                feature_scale=getattr(self, "feature_scale_", None), dtype=self._dtype,
                name=self._name())
        # what this fit reads, whatever an earlier fit read
        tokens = (is_integer_input(X) if isinstance(self.embedding_dim, str)
                  else self.embedding_dim is not None)
        standardize = self.standardize and not tokens
        work = np.float64 if standardize else self._dtype
        if not tokens and scaled_column_by_column(X):
            warnings.warn(
                f"X of shape {np.shape(X)} looks scaled column by column (every column has mean 0 "
                "and standard deviation 1, or minimum 0 and maximum 1), as a scikit-learn scaler "
                "placed before this estimator does it. The columns of a 2-D X are time steps, so "
                "that scaled every step on its own and broke the sequences. Use "
                "fastrnn.preprocessing.SequenceScaler, or no scaler: the estimator standardises "
                "its input itself (standardize=True).", UserWarning, stacklevel=4)
        data = check_sequences(X, tokens=tokens, dtype=work)
        self.n_features_in_ = data.n_features
        if tokens:
            max_id = data.max_id
            if self.vocab_size is not None and max_id >= self.vocab_size:
                raise ValueError(
                    f"X holds token id {max_id}, but vocab_size={self.vocab_size} allows ids "
                    f"0..{self.vocab_size - 1}. Raise vocab_size (or leave it None to use the "
                    "largest id + 1)."
                )
            if self.vocab_size is None and max_id >= MAX_INFERRED_VOCAB:
                raise ValueError(
                    f"X holds token id {max_id}, so the inferred vocabulary would have "
                    f"{max_id + 1} ids (an embedding with that many rows). Map tokens to "
                    "consecutive ids with a vocabulary (e.g. SequenceVectorizer), or pass "
                    "vocab_size= explicitly if this is intended."
                )
            # a vectorizer's output knows how many ids it can produce (subword ids too)
            self.vocab_size_ = int(self.vocab_size or max(
                max_id + 1, int(getattr(X, "vocab_size", 0) or 0)))
        else:
            self.vocab_size_ = None
        if standardize:
            steps = data.concatenated()
            with np.errstate(over="ignore", invalid="ignore"):
                mean = steps.mean(axis=0)
                scale = steps.std(axis=0)
            if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
                raise ValueError(
                    "X holds values too large to standardise (their variance overflows "
                    f"float64; largest |value| {np.abs(steps).max():.3g}). Rescale X, or set "
                    "standardize=False."
                )
            scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1)] = 1.0
            self.feature_mean_, self.feature_scale_ = mean, scale
            return standardized(data, mean, scale, self._dtype)
        self.feature_mean_ = self.feature_scale_ = None
        return data

    # ------------------------------------------------------------------ building
    def _cell(self):
        """``(cell, recurrent_dropout)`` of a new network (subclasses resolve an ``"auto"``)."""
        return self.cell, float(self.recurrent_dropout)

    def _network_kwargs(self):
        cell, recurrent_dropout = self._cell()
        return dict(
            cell=cell, hidden_size=int(self.hidden_size), num_layers=int(self.num_layers),
            bidirectional=bool(self.bidirectional), dropout=float(self.dropout),
            recurrent_dropout=recurrent_dropout, dtype=self._dtype,
            backend=self.backend, skip=self.skip,
            # the estimators that take ``precision`` (classifier, regressor); float32 the others
            precision=getattr(self, "precision", "float32"),
        )

    def _build_network(self, rng):
        kw = self._network_kwargs()
        if self.vocab_size_ is not None:
            dim = self.embedding_dim
            if isinstance(dim, str) or dim is None:
                dim = auto_embedding_dim(self.vocab_size_)
            kw.update(vocab_size=self.vocab_size_, embedding_dim=int(dim))
        else:
            # a classifier may read float series in frames of several steps, and with their
            # first difference beside them
            kw.update(n_features=self.n_features_in_ * getattr(self, "frame_size_", 1)
                      * (2 if getattr(self, "difference_", False) else 1))
        return SequenceNetwork(self._n_outputs(), pooling=self._pooling(),
                               random_state=int(rng.randint(np.iinfo(np.int32).max)), **kw)

    def _make_trainer(self):
        opt = self.optimizer
        if isinstance(opt, str):
            opt = get_optimizer(opt, lr=float(self._learning_rate()),
                                weight_decay=float(self.weight_decay))
        else:
            opt = copy.deepcopy(opt)
        return Trainer(self.network_, optimizer=opt, clip_norm=self.clip_norm)

    def _learning_rate(self):
        """The learning rate of a named optimiser (subclasses resolve an ``"auto"``)."""
        return self.learning_rate

    def _n_epochs(self, n_train, n_time_steps=None):
        """``max_iter``, or with ``"auto"`` the epochs that give about :data:`AUTO_STEPS`
        optimisation steps, at least :data:`AUTO_EPOCHS` [0] and at most [1]; and, given the
        time steps of an epoch (``n_time_steps``), at most the epochs that read
        :data:`AUTO_TIME_STEPS` steps (at least :data:`AUTO_MIN_EPOCHS`)."""
        if self.max_iter != "auto":
            return int(self.max_iter)
        batches = max(1, math.ceil(n_train / self._batch_size(n_train)))
        lo, hi = AUTO_EPOCHS
        epochs = min(hi, max(lo, math.ceil(AUTO_STEPS / batches)))
        if n_time_steps:
            epochs = min(epochs, max(AUTO_MIN_EPOCHS, math.ceil(AUTO_TIME_STEPS / n_time_steps)))
        return int(epochs)

    def _batch_size(self, n_train):
        """``batch_size``, or with ``"auto"`` about :data:`AUTO_BATCHES_PER_EPOCH` batches per
        epoch, of :data:`AUTO_BATCH` [0] to [1] sequences."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        lo, hi = AUTO_BATCH
        return int(min(hi, max(lo, n_train // AUTO_BATCHES_PER_EPOCH)))

    def _stopping_mode(self, n_train, given_val, incremental):
        """``(early, active)``: whether the fit watches validation data (stops on it and keeps
        its best parameters), and whether the stopping rule may stop it at all."""
        if self.early_stopping != "auto":
            return bool(self.early_stopping), True
        if incremental:
            return False, False
        if given_val is not None:
            return True, True
        if math.ceil(self.validation_fraction * n_train) >= AUTO_MIN_VALIDATION:
            return True, True
        return False, False

    def _schedules(self, early, incremental=False):
        """The learning-rate schedule of ``lr_schedule`` for the training loop:
        ``(plateau, monitor, annealing)``. None where a ``LearningRateScheduler`` callback sets
        the rate, and no annealing in ``partial_fit`` (a call is no horizon to anneal over)."""
        opt = self._trainer.optimizer
        if any(isinstance(cb, LearningRateScheduler) for cb in self.callbacks or ()):
            return None, None, None
        if self.lr_schedule == "plateau":
            return (ReduceLROnPlateau(opt, mode="max" if early else "min", factor=PLATEAU_FACTOR,
                                      patience=PLATEAU_PATIENCE, threshold=self.tol,
                                      threshold_mode="abs"),
                    "val_score" if early else "loss", None)
        if self.lr_schedule in ("cosine", "linear") and not incremental:
            return None, None, AnnealingLR(opt, self.lr_schedule, min_lr=0.0)
        return None, None, None

    def _initialize(self, early, active=True):
        """Fresh network, optimiser and training history (first fit, or fit without warm_start)."""
        if isinstance(self.random_state, Integral):
            # an int seed gives the same run every time; a RandomState instance is advanced
            self._rng = np.random.RandomState(int(self.random_state))
        else:
            self._rng = check_random_state(self.random_state)
        self.network_ = self._build_network(self._rng)
        self._trainer = self._make_trainer()
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.grad_norm_curve_ = []
        self.lr_curve_ = []
        self.history_ = []
        self._seconds = 0.0
        self._new_counter(early, active)

    def _new_counter(self, early, active=True):
        """Start the early-stopping bookkeeping (MLP semantics for the fitted attributes): on the
        validation score with ``early_stopping``, else on the training loss (``active=False``:
        the bookkeeping without ever stopping)."""
        if early:
            self._counter = StoppingRule("val_score", "max", self.tol, self.n_iter_no_change,
                                         active=active)
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self._counter = StoppingRule("loss", "min", self.tol, self.n_iter_no_change,
                                         active=active)
            self.validation_scores_ = None
            self.best_validation_score_ = None
            finite = [v for v in getattr(self, "loss_curve_", []) if math.isfinite(v)]
            self._counter.best = min(finite) if finite else np.inf
            self.best_loss_ = float(self._counter.best)

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, sample_weight=None, *, incremental=False, validation_data=None,
             resume=False, **target_kwargs):
        """Validate, (re)initialise when needed and run the epochs. Returns ``self``.

        ``fit`` calls it with ``incremental=False`` (``max_iter`` epochs, a fresh model unless
        ``warm_start``), ``partial_fit`` with ``incremental=True`` (one epoch, the model kept).
        With ``resume`` the model and the run come from the checkpoint at ``checkpoint_path``
        (:class:`~._checkpoint.EstimatorCheckpoint`).
        """
        if incremental and self.early_stopping is True:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no fixed validation "
                "set across calls. Set early_stopping=False, or use fit()."
            )
        ckpt = EstimatorCheckpoint.open(self, resume, incremental)
        resuming = ckpt is not None and ckpt.resuming
        reset = not resuming and (not self._is_fitted() or not (self.warm_start or incremental))
        try:
            data = self._validate_X(X, reset=reset)
            # the size of the data, for the "auto" settings that depend on it (not partial_fit)
            self._fit_time_steps = None if incremental else int(np.sum(data.lengths))
            targets = self._validate_targets(y, data, reset=reset, incremental=incremental,
                                             **target_kwargs)
            sw = check_sample_weight(sample_weight, len(data))
            self._check_fit_targets(targets, sw, incremental=incremental)
            given_val = self._validation_data(validation_data)
        except Exception as exc:
            if reset and self._is_fitted():
                # validation with reset already replaced fitted attributes: do not leave a
                # mixture of the old model and the new data's statistics behind
                del self.network_
            if resuming and isinstance(exc, ValueError):
                raise ValueError(f"cannot resume the fit of the checkpoint at {ckpt.path!r} "
                                 f"with this data: {exc}") from exc
            raise
        early, active = self._stopping_mode(len(data), given_val, incremental)
        if reset:
            self._initialize(early, active)
        elif resuming:
            ckpt.initialize(early, active)
        else:
            if not incremental or getattr(self, "_trainer", None) is None:
                # as scikit-learn's MLP: a warm-started fit gets a fresh optimiser (so changed
                # optimizer / learning_rate apply); partial_fit keeps its optimiser state
                self._trainer = self._make_trainer()
            if getattr(self, "_rng", None) is None:
                self._rng = check_random_state(self.random_state)
            counter = getattr(self, "_counter", None)
            if counter is None or (counter.monitor != "loss") != early:
                self._new_counter(early, active)
            self._counter.active = active
        if not incremental:
            self._counter.count = 0
        if ckpt is not None:
            ckpt.check_data(data, targets, sw, given_val)
        train, val = (data, targets, sw), given_val
        if early and val is None:
            tr, va = (self._validation_split(data, targets) if ckpt is None
                      else ckpt.validation_split(data, targets))
            val = (data.subset(va), self._subset_targets(targets, va),
                   None if sw is None else sw[va])
            train = (data.subset(tr), self._subset_targets(targets, tr),
                     None if sw is None else sw[tr])
        n_epochs = 1 if incremental else self._n_epochs(len(train[0]),
                                                          int(np.sum(train[0].lengths)))
        self._run_epochs(train, val, n_epochs=n_epochs,
                         incremental=incremental, early=early, checkpoint=ckpt)
        return self

    def _validation_data(self, validation_data):
        """Validate ``fit``'s ``validation_data``: ``(X_val, y_val)`` or ``(X_val, y_val,
        sample_weight_val)``, encoded as the training data (after it). Returns the validation
        triple, or None."""
        if validation_data is None:
            return None
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(
                "validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
                f"sample_weight_val), got {type(validation_data).__name__} "
                f"{validation_data!r:.60}.")
        Xv, yv, *swv = validation_data
        keep = getattr(self, "_fit_class_weight", None)  # set from the training labels
        try:
            data = self._validate_X(Xv, reset=False)
            targets = self._validate_targets(yv, data, reset=False)
        finally:
            self._fit_class_weight = keep
        return data, targets, check_sample_weight(swv[0] if swv else None, len(data))

    def _check_fit_targets(self, targets, sample_weight, incremental=False):
        """Hook: extra checks on the targets that need the sample weights."""

    def _stratify(self, targets):
        """Hook: labels to stratify the validation split on (``None``: no stratification)."""
        return None

    def _validation_split(self, data, targets):
        n = len(data)
        n_val = int(math.ceil(self.validation_fraction * n))
        if n < 2 or n_val >= n:
            raise ValueError(
                f"early_stopping needs a validation split, but validation_fraction="
                f"{self.validation_fraction} of {n} sequence(s) leaves no training data. Use more "
                "sequences, a smaller validation_fraction, or early_stopping=False."
            )
        rng = np.random.RandomState(self._rng.randint(np.iinfo(np.int32).max))
        strata = self._stratify(targets)
        if strata is not None:
            _, inv, counts = np.unique(strata, return_inverse=True, return_counts=True)
            if counts.min() >= 2 and n_val >= len(counts) and n - n_val >= len(counts):
                from sklearn.model_selection import train_test_split

                tr, va = train_test_split(np.arange(n), test_size=n_val, stratify=inv,
                                          random_state=rng)
                return np.sort(tr), np.sort(va)
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _reference_loss(self, targets):
        """The training loss of an uninformed prediction (subclasses; the trainer treats a loss
        far above it as divergence)."""
        return None

    def _run_epochs(self, train, val, n_epochs, incremental, early, checkpoint=None):
        """Train with the shared :class:`~fastrnn.train.TrainingLoop` and set the fitted
        attributes (``early``: stop on, and keep the best of, the validation score;
        ``checkpoint``: an :class:`~._checkpoint.EstimatorCheckpoint` the loop writes, and
        resumes from)."""
        self._trainer.reference_loss = self._reference_loss(train[1])
        plateau, monitor, annealing = self._schedules(early, incremental)
        loop = TrainingLoop(
            self._trainer, self._task_class(self, train, val), self._rng, n_epochs,
            time_budget=self.time_budget, stopping=self._counter, restore_best=early,
            plateau=plateau, plateau_monitor=monitor, annealing=annealing, verbose=self.verbose,
            log_level=2, incremental=incremental, seconds=getattr(self, "_seconds", 0.0),
            callbacks=self.callbacks, estimator=self)
        done = (self.n_iter_, self.t_)
        if checkpoint is not None:
            done = checkpoint.attach(loop, done, val is not None, early)
        loop.callbacks.insert(0, _Progressive(done))
        reason = loop.run()
        self._seconds = loop.seconds
        self.stop_reason_ = reason
        for name, value in self._run_results(loop, val is not None, early).items():
            setattr(self, name, value)
        if reason == "early_stopping" and self.verbose:
            what = "Validation score" if early else "Training loss"
            loop._bar.write(f"{what} did not improve more than tol={self.tol} for "
                            f"{self.n_iter_no_change} consecutive epochs. Stopping.")
        if reason == "max_iter" and not incremental and self._counter.active:
            warnings.warn(
                f"{self._name()}: stopped after max_iter={n_epochs} epochs while the "
                f"{'validation score' if early else 'training loss'} was still improving by more "
                f"than tol={self.tol}. Raise max_iter (or learning_rate) if the model underfits.",
                ConvergenceWarning,
            )

    def _run_results(self, loop, has_val, early):
        """The fitted attributes a run sets from ``loop`` when it ends (and that its checkpoints
        hold): the validation scores, and the best validation score or training loss."""
        out = {}
        if has_val:
            out["validation_scores_"] = list(self.validation_scores_ or []) + [
                e["val_score"] for e in loop.evaluations]
        out["best_validation_score_" if early else "best_loss_"] = float(self._counter.best)
        return out

    # ------------------------------------------------------------------ inference helpers
    def _outputs(self, X, what="head"):
        """Validate ``X`` against the fitted model and run the network (see
        :func:`network_outputs`)."""
        self._check_fitted()
        data = self._validate_X(X, reset=False)
        return network_outputs(self.network_, data, what=what)


class PooledOutputMixin(TransformerMixin):
    """``transform`` and feature names for estimators that pool each sequence into one vector.

    A scikit-learn transformer: ``set_output(transform="pandas")`` makes :meth:`transform` (and
    ``fit_transform``) return a DataFrame with :meth:`get_feature_names_out` as its columns.
    """

    @property
    def _n_features_out(self):
        return self.network_.head.in_features

    @document_parameters
    def transform(self, X):
        """Pooled recurrent representation of each sequence (the input of the output layer).

        Parameters
        ----------
        [shared parameters: X]

        Returns
        -------
        Z : ndarray of shape (n_samples, num_directions * hidden_size [+ embedding_dim])
            In the model's dtype; the last ``embedding_dim`` columns are the bag of embeddings
            of a classifier that has one (see ``bag_of_embeddings``).
        """
        return self._outputs(X, what="pooled")

    def get_feature_names_out(self, input_features=None):
        """Names of the pooled features: ``"<classname>0"``, ``"<classname>1"``, ...

        Parameters
        ----------
        input_features : None
            Ignored.

        Returns
        -------
        ndarray of str objects of shape (n_features_out,)
            One name per column of :meth:`transform`.
        """
        self._check_fitted()
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object)
