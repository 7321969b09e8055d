"""Sequence regression: :class:`RNNRegressor`."""

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.utils._param_validation import StrOptions

from .._params import store_params
from ..losses import mean_squared_error
from ._docs import document_parameters
from ._base import BaseRNNEstimator, PooledOutputMixin, network_outputs
from ._inference import to_targets
from ._saved import SAVED_ATTRIBUTES

__all__ = ["RNNRegressor"]


def _check_targets_fit(raw, z, standardized, dtype):
    """Raise if a training target ``z`` (``raw`` after standardisation) overflows the model's
    ``dtype``, naming the value the user passed."""
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.isfinite(z.astype(dtype))
    if ok.all():
        return
    i, k = (int(v) for v in np.argwhere(~ok)[0])
    what = (f", which is {z[i, k]:.3g} standard deviations from the training mean of its target,"
            if standardized else "")
    fix = ("Check the targets' scale (e.g. a unit error), or use dtype='float64'."
           if standardized else "Set standardize=True, rescale y, or use dtype='float64'.")
    raise ValueError(f"y holds {float(raw[i, k])!r} (sample {i}, output {k}){what} and overflows "
                     f"{np.dtype(dtype).name} (the model's dtype). {fix}")


@document_parameters
class RNNRegressor(RegressorMixin, PooledOutputMixin, BaseRNNEstimator):
    r"""Recurrent neural network regressor: one or more real values per sequence.

    Each sequence runs through an optional token embedding and the recurrent layers; its outputs
    are pooled over the real steps into one vector, which a linear layer maps to the targets.
    Trained on the mean squared error with minibatches of sequences of similar length.

    Parameters
    ----------
    [shared parameters: cell hidden_size num_layers bidirectional skip]
    pooling : {"max", "mean", "last"}, default="max"
        Sequence representation: state at the last real step, or mean / max over the real steps.
    [shared parameters: dropout recurrent_dropout embedding_dim vocab_size]
    standardize : bool, default=True
        Standardise each input channel (float input) and each target with the training data's
        mean and standard deviation; predictions are transformed back. The loss (``loss_curve_``)
        is then the mean squared error of the standardised targets.
    [shared parameters: optimizer learning_rate batch_size max_iter clip_norm lr_schedule]
    [shared parameters: weight_decay time_budget early_stopping validation_fraction]
    [shared parameters: n_iter_no_change tol random_state verbose backend warm_start dtype]
    [shared parameters: callbacks checkpoint_path precision]

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.
    [shared attributes: n_features_in_ vocab_size_ feature_mean_,feature_scale_]
    target_mean_, target_scale_ : ndarray of shape (n_outputs,) or None
        Standardisation of the targets.
    [shared attributes: network_ loss_curve_ grad_norm_curve_ lr_curve_ validation_scores_]
    [shared attributes: best_validation_score_ best_loss_ n_iter_ t_ history_ stop_reason_]

    See Also
    --------
    RNNClassifier : the same network with a softmax output.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn import RNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = [rng.randn(rng.randint(3, 12), 2) for _ in range(80)]
    >>> y = np.array([x[:, 0].mean() for x in X])           # the mean of channel 0
    >>> reg = RNNRegressor(hidden_size=16, learning_rate=0.01, max_iter=30, random_state=0)
    >>> reg.fit(X, y).predict(X[:3]).shape
    (3,)
    >>> bool(reg.score(X, y) > 0.8)
    True
    """

    _parameter_constraints = {
        **BaseRNNEstimator._parameter_constraints,
        "precision": [StrOptions({"float32", "bf16"})],
        "pooling": [StrOptions({"last", "mean", "max"})],
    }
    _saved_attributes = SAVED_ATTRIBUTES["RNNRegressor"]

    def __init__(self, cell="lstm", hidden_size=64, num_layers=1, bidirectional=False,
                 pooling="max", dropout=0.0, recurrent_dropout=0.0, embedding_dim="auto",
                 vocab_size=None, standardize=True, optimizer="adam", learning_rate=1e-3,
                 batch_size=32, max_iter=100, clip_norm=5.0, lr_schedule="constant",
                 weight_decay=0.0, time_budget=None, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, random_state=None,
                 verbose=0, backend="auto", warm_start=False, dtype="float32", callbacks=None,
                 checkpoint_path=None, skip=None, precision="float32"):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = []
        return tags

    # ------------------------------------------------------------------ hooks
    def _pooling(self):
        return self.pooling

    def _n_outputs(self):
        return self.n_outputs_

    def _validate_targets(self, y, data, reset, incremental=False):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None. Pass "
                "one target value (or one row of targets) per sequence."
            )
        y = np.asarray(y)
        if y.dtype.kind == "c":
            raise ValueError(f"Complex data not supported in y (dtype {y.dtype}); pass real "
                             "targets.")
        if y.dtype.kind in "USO":
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"y must hold numbers for regression, got dtype {y.dtype} ({exc}). For class "
                    "labels use RNNClassifier."
                ) from None
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must hold numbers, got dtype {y.dtype}.")
        if y.ndim not in (1, 2):
            raise ValueError(
                f"y must have shape (n_samples,) or (n_samples, n_outputs), got shape {y.shape}."
            )
        if y.shape[0] != len(data):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: X has {len(data)} "
                f"sequences but y has {y.shape[0]} rows. Pass one target (row) per sequence."
            )
        y2 = y.astype(np.float64).reshape(len(data), -1)
        if y2.shape[1] == 0:
            raise ValueError(f"y has 0 outputs (shape {y.shape}); pass at least one target.")
        if not np.isfinite(y2).all():
            i = tuple(int(k) for k in np.argwhere(~np.isfinite(y2))[0])
            kind = "NaN" if np.isnan(y2[i]) else "infinity"
            raise ValueError(
                f"Input y contains {kind} at sample {i[0]}, output {i[1]}. Remove or impute "
                "missing targets."
            )
        if reset:
            self.n_outputs_ = y2.shape[1]
            self._y_ndim = y.ndim
            if self.standardize:
                with np.errstate(over="ignore", invalid="ignore"):
                    mean, scale = y2.mean(axis=0), y2.std(axis=0)
                if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
                    raise ValueError(
                        "y holds values too large to standardise (their variance overflows "
                        f"float64; largest |value| {np.abs(y2).max():.3g}). Rescale y (divide it "
                        "by a constant, and multiply the predictions by it)."
                    )
                self.target_mean_ = mean
                scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(
                    np.abs(self.target_mean_), 1)] = 1.0
                self.target_scale_ = scale
            else:
                self.target_mean_ = self.target_scale_ = None
        elif y2.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y2.shape[1]} output(s), but this {type(self).__name__} was fitted with "
                f"{self.n_outputs_}. Pass targets of the same shape as at fit."
            )
        raw = y2
        if self.target_mean_ is not None:
            with np.errstate(over="ignore"):
                y2 = (y2 - self.target_mean_) / self.target_scale_
        # the dtype of the fitted network; of this fit's, for its validation_data (no network yet)
        _check_targets_fit(raw, y2, self.target_mean_ is not None,
                           self.network_.dtype if self._is_fitted() and not reset
                           else self._dtype)
        return y2

    def _subset_targets(self, targets, idx):
        return targets[idx]

    def _reference_loss(self, targets):
        """Mean squared error of predicting the mean target (in the units the network fits)."""
        return float(np.mean(np.var(targets, axis=0)))

    def _make_loss(self, targets, idx, lengths, sample_weight):
        yb = targets[idx]
        total = float(len(idx) if sample_weight is None else sample_weight.sum())
        dt = self.network_.dtype

        def loss_fn(out):
            return mean_squared_error(out, yb.astype(dt), sample_weight=sample_weight)

        # the same loss for a step on the GPU (fastrnn.train.Trainer.start_device)
        w = np.ones(len(idx)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        loss_fn.device_loss = ("mse", yb, w / total if total > 0 else np.zeros(len(idx)))
        return loss_fn, total

    def _validation_score(self, data, targets, sample_weight):
        from sklearn.metrics import r2_score

        pred = network_outputs(self.network_, data).astype(np.float64)
        return float(r2_score(targets, pred, sample_weight=sample_weight))

    # ------------------------------------------------------------------ API
    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def fit(self, X, y, sample_weight=None, validation_data=None, resume=False):
        """Train the regressor.

        Parameters
        ----------
        [shared parameters: X]
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        [shared parameters: sample_weight]
        [shared parameters: validation_data resume]

        Returns
        -------
        self : RNNRegressor
        """
        return self._fit(X, y, sample_weight, validation_data=validation_data, resume=resume)

    @_fit_context(prefer_skip_nested_validation=True)
    @document_parameters
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch over ``(X, y)``, keeping the model and the optimiser state.

        The first call fixes the standardisation statistics (from its data).

        Parameters
        ----------
        [shared parameters: X]
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        [shared parameters: sample_weight]

        Returns
        -------
        self : RNNRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _to_targets(self, out):
        """Network outputs (float64, shape (n, n_outputs_)) -> predicted targets: the target
        standardisation undone in place, 1-D when ``y`` was 1-D at fit."""
        return to_targets(out, self.target_mean_, self.target_scale_, self._y_ndim)

    def _stream_output(self, state):
        np.copyto(state.output, state.logits)
        return self._to_targets(state.output)

    @document_parameters
    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        [shared parameters: X]

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs), dtype float64
            1-D when ``y`` was 1-D at fit.
        """
        return self._to_targets(np.array(self._outputs(X), dtype=np.float64))
