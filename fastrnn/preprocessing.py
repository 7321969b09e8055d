"""Preprocessing of sequences for pipelines: :class:`SequenceScaler`.

scikit-learn's scalers treat the columns of a 2-D array as features. For sequences of one value
per step, a 2-D array ``(n_samples, T)`` has time steps as columns, so ``StandardScaler`` would
scale every time step on its own (and it refuses 3-D arrays and ragged lists). ``SequenceScaler``
standardises each feature over all the real steps of all sequences, whatever their lengths, and
returns the input's own form.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils.validation import check_is_fitted

from ._params import store_params
from .estimators._inputs import check_sequences

__all__ = ["SequenceScaler"]


class SequenceScaler(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Standardise every feature of sequences over all their steps.

    Each feature (channel) gets the mean and standard deviation of all the real steps of the
    training sequences; ``transform`` returns ``(x - mean_) / scale_`` in the input's form: a 2-D
    array ``(n_samples, T)`` (one value per step), a 3-D array ``(n_samples, T, n_features)``, or a
    list of arrays of different lengths.

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean.
    with_std : bool, default=True
        Divide by the standard deviation (a constant feature keeps scale 1).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
    n_features_in_ : int
        Features per step (1 for a 2-D ``X``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.preprocessing import SequenceScaler
    >>> X = [np.array([1.0, 2.0, 3.0]), np.array([5.0])]
    >>> sc = SequenceScaler().fit(X)
    >>> sc.mean_, sc.scale_.round(4)
    (array([2.75]), array([1.479]))
    >>> [x.round(3) for x in sc.transform(X)]
    [array([-1.183, -0.507,  0.169]), array([1.521])]
    """

    _parameter_constraints = {"with_mean": ["boolean"], "with_std": ["boolean"]}

    def __init__(self, with_mean=True, with_std=True):
        store_params(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the mean and standard deviation of every feature over all steps.

        Parameters
        ----------
        X : array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of arrays
        y : None
            Ignored.

        Returns
        -------
        self : SequenceScaler
        """
        steps = check_sequences(X, dtype=np.float64).concatenated()
        self.n_features_in_ = steps.shape[1]
        self.mean_ = steps.mean(axis=0) if self.with_mean else np.zeros(steps.shape[1])
        scale = steps.std(axis=0) if self.with_std else np.ones(steps.shape[1])
        scale[scale < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(self.mean_), 1)] = 1.0
        self.scale_ = scale
        return self

    def _apply(self, X, forward):
        check_is_fitted(self, "mean_")
        data = check_sequences(X, dtype=np.float64)
        if data.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {data.n_features} features per step, but this SequenceScaler was fitted "
                f"with {self.n_features_in_}; pass sequences with the same features.")
        mean, scale = self.mean_, self.scale_
        out = [((s - mean) / scale) if forward else (s * scale + mean) for s in data.seqs]
        arr = np.asarray(X) if isinstance(X, np.ndarray) and X.dtype != object else None
        if arr is not None:
            full = np.stack(out)
            return full[:, :, 0] if arr.ndim == 2 else full
        return [o[:, 0] if np.ndim(x) == 1 else o for o, x in zip(out, X)]

    def transform(self, X):
        """Standardise ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of arrays

        Returns
        -------
        X_scaled : ndarray or list of ndarray, float64
            The form of ``X``.
        """
        return self._apply(X, True)

    def inverse_transform(self, X):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of arrays

        Returns
        -------
        X_original : ndarray or list of ndarray, float64
        """
        return self._apply(X, False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = False
        return tags
