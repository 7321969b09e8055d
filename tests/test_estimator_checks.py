"""scikit-learn's estimator checks on RNNClassifier, RNNRegressor and RNNSeq2Seq (small, fast
settings).

The checks that cannot apply to sequence models are listed, with their reasons, in
``fastrnn.estimators._sklearn_checks.SKLEARN_CHECKS_NOT_APPLICABLE`` (and
``SEQ2SEQ_CHECKS_NOT_APPLICABLE`` for the encoder-decoder); they run as expected failures.
"""

import inspect
import re

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastrnn.estimators import RNNClassifier, RNNRegressor, RNNSeq2Seq
from fastrnn.estimators._sklearn_checks import (SEQ2SEQ_CHECKS_NOT_APPLICABLE,
                                                SKLEARN_CHECKS_NOT_APPLICABLE)

# Small networks, a high learning rate and few epochs: each fit of a check takes milliseconds.
# float64, because check_methods_subset_invariance compares predictions on subsets with a tolerance
# of 1e-7: in float32, which sequences share an inference batch changes the BLAS rounding in the
# last bit (about 1e-7 relative); test_estimators.py checks float32 subset invariance at 1e-5.
FAST = dict(hidden_size=8, learning_rate=0.03, max_iter=40, batch_size=32, n_iter_no_change=40,
            dtype="float64")

ESTIMATORS = [RNNClassifier(**FAST), RNNRegressor(**FAST)]
# the encoder-decoder reads a 1-D y of numbers as one-token target sequences
SEQ2SEQ = RNNSeq2Seq(**dict(FAST, max_iter=5))


def expected_failed_checks(estimator):
    if isinstance(estimator, RNNSeq2Seq):
        return dict(SEQ2SEQ_CHECKS_NOT_APPLICABLE)
    return dict(SKLEARN_CHECKS_NOT_APPLICABLE)


_kwargs = {}
if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters:
    _kwargs["expected_failed_checks"] = expected_failed_checks  # scikit-learn >= 1.6
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters:
        _kwargs["xfail_strict"] = False


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS + [SEQ2SEQ], **_kwargs)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_not_applicable_list_is_short_and_explained():
    assert len(SKLEARN_CHECKS_NOT_APPLICABLE) <= 7
    for name, reason in SKLEARN_CHECKS_NOT_APPLICABLE.items():
        assert name.startswith("check_") and len(reason) > 40


# The message (or failing assertion) each check stops at when it fails for the reason given in
# SKLEARN_CHECKS_NOT_APPLICABLE, and not for another one.
_REASONS = {
    "check_n_features_in": r"assert estimator\.n_features_in_ == X\.shape\[1\]",
    "check_n_features_in_after_fitting": r"assert estimator\.n_features_in_ == X\.shape\[1\]",
    "check_estimators_partial_fit_n_features": r"number of features changes between calls",
    "check_classifiers_train": r"number of features in predict is different",
    "check_estimators_dtypes": r"holds only PAD \(0\) ids",
    "check_transformer_general": r"number of features in transform is different",
    "check_sample_weight_equivalence_on_dense_data": r"Not equal to tolerance",
    "check_estimators_pickle": r"inhomogeneous shape",
    "check_methods_sample_order_invariance": r"inhomogeneous shape",
    "check_methods_subset_invariance": r"inhomogeneous shape",
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(SKLEARN_CHECKS_NOT_APPLICABLE))
def test_not_applicable_checks_fail_for_their_stated_reason(name):
    import traceback

    from sklearn.utils import estimator_checks

    check = getattr(estimator_checks, name)
    assert name in _REASONS
    for est in ESTIMATORS:
        if name == "check_classifiers_train" and not isinstance(est, RNNClassifier):
            continue
        with pytest.raises((AssertionError, ValueError)) as info:
            check(type(est).__name__, est)
        text = str(info.value) + "".join(traceback.format_tb(info.tb))
        assert re.search(_REASONS[name], text), text[-2000:]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", sorted(SEQ2SEQ_CHECKS_NOT_APPLICABLE))
def test_seq2seq_not_applicable_checks_fail_for_their_stated_reason(name):
    import traceback

    from sklearn.utils import estimator_checks

    assert len(SEQ2SEQ_CHECKS_NOT_APPLICABLE[name]) > 40
    with pytest.raises((AssertionError, ValueError)) as info:
        getattr(estimator_checks, name)("RNNSeq2Seq", SEQ2SEQ)
    text = str(info.value) + "".join(traceback.format_tb(info.tb))
    assert re.search(_REASONS[name], text), text[-2000:]
