"""scikit-learn estimator checks that do not apply to sequence models, with the reason.

Used by the test suite (``parametrize_with_checks(..., expected_failed_checks=...)``) and, for
scikit-learn < 1.6, by the ``_xfail_checks`` tag of the estimators.
"""

__all__ = ["SKLEARN_CHECKS_NOT_APPLICABLE", "SEQ2SEQ_CHECKS_NOT_APPLICABLE"]

SKLEARN_CHECKS_NOT_APPLICABLE = {
    "check_n_features_in": (
        "a 2-D X is (n_samples, T): its columns are time steps, not features, so n_features_in_ "
        "is the number of features per step (1), not X.shape[1]"
    ),
    "check_n_features_in_after_fitting": (
        "as check_n_features_in, and it then expects predicting on fewer columns of a 2-D X to "
        "fail, but these are shorter sequences, which is valid; a different number of features "
        "per step (3-D or ragged input) is an error"
    ),
    "check_estimators_partial_fit_n_features": (
        "a 2-D X is (n_samples, T): fewer columns in a later partial_fit call means shorter "
        "sequences, which is valid; a different number of features per step is an error"
    ),
    "check_classifiers_train": (
        "it requires predict(X.T) to fail, but a transposed 2-D X is a valid input for a "
        "sequence model (other sequences of another length); accuracy, shapes and the other "
        "assertions of this check are covered in tests/test_estimators.py"
    ),
    "check_transformer_general": (
        "it requires transform(X[:, :-1]) to fail, but fewer columns of a 2-D X are shorter "
        "sequences, a valid input; the consistency of fit_transform and transform is covered in "
        "tests/test_estimators.py"
    ),
    "check_estimators_dtypes": (
        "it fits integer X (0, 1, 2 from a float array) and expects numbers; with the default "
        "embedding_dim='auto' integer input is token ids, where 0 is padding and a row of zeros "
        "an empty sequence. With embedding_dim=None integers are numbers (tested in "
        "tests/test_estimators.py)"
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "training is stochastic minibatch gradient descent with per-batch normalised losses, so "
        "sample_weight is not equivalent to repeating samples (as for SGDClassifier)"
    ),
}

#: the checks that do not apply to :class:`fastrnn.estimators.RNNSeq2Seq`: those of the other
#: estimators that it meets too (it has neither partial_fit nor a classifier's predict), and the
#: checks that turn predict's output into one array, which fails on output sequences of
#: different lengths
SEQ2SEQ_CHECKS_NOT_APPLICABLE = {
    **{name: SKLEARN_CHECKS_NOT_APPLICABLE[name] for name in (
        "check_n_features_in", "check_n_features_in_after_fitting", "check_estimators_dtypes",
        "check_transformer_general", "check_sample_weight_equivalence_on_dense_data")},
    **{name: (
        "predict returns output sequences of different lengths (a list of lists), which the "
        f"check converts to one numpy array; {what} is covered in tests/test_seq2seq.py"
    ) for name, what in (
        ("check_estimators_pickle", "a pickle or save/load round trip"),
        ("check_methods_sample_order_invariance", "predicting a batch or one input at a time"),
        ("check_methods_subset_invariance", "predicting a batch or one input at a time"))},
}
