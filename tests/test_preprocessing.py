"""SequenceScaler, and the warning about a scikit-learn scaler in front of a sequence model."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from fastrnn import RNNClassifier
from fastrnn.preprocessing import SequenceScaler


def test_scaler_uses_every_real_step_of_ragged_sequences():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(2, 9), 3) * [1, 10, 100] + [5, -2, 0] for _ in range(20)]
    sc = SequenceScaler().fit(X)
    steps = np.concatenate(X)
    assert_allclose(sc.mean_, steps.mean(axis=0))
    assert_allclose(sc.scale_, steps.std(axis=0))
    Z = sc.transform(X)
    assert [z.shape for z in Z] == [x.shape for x in X]
    assert_allclose(np.concatenate(Z).mean(axis=0), 0, atol=1e-12)
    assert_allclose(np.concatenate(Z).std(axis=0), 1, atol=1e-12)
    for a, b in zip(sc.inverse_transform(Z), X):
        assert_allclose(a, b)
    with pytest.raises(ValueError, match="2 features per step.*fitted with 3"):
        sc.transform([np.ones((4, 2))])


def test_scaler_keeps_the_form_of_2d_and_3d_input():
    rng = np.random.RandomState(1)
    X2 = rng.randn(30, 12) * 3 + 7
    Z2 = SequenceScaler().fit_transform(X2)
    assert Z2.shape == X2.shape
    assert_allclose(Z2, (X2 - X2.mean()) / X2.std())  # one feature: all steps together
    X3 = rng.randn(10, 6, 2)
    Z3 = SequenceScaler(with_mean=False).fit_transform(X3)
    assert Z3.shape == X3.shape
    assert_allclose(Z3, X3 / X3.reshape(-1, 2).std(axis=0))
    assert_array_equal(SequenceScaler(with_std=False).fit([[1.0, 3.0]]).scale_, [1.0])


@pytest.mark.parametrize("scaler", [StandardScaler(), MinMaxScaler()])
def test_a_column_scaler_before_a_sequence_model_is_named(scaler):
    rng = np.random.RandomState(2)
    X = rng.randn(40, 20).cumsum(axis=1)
    y = (X[:, -1] > 0).astype(int)
    pipe = make_pipeline(scaler, RNNClassifier(hidden_size=4, max_iter=1, random_state=0))
    with pytest.warns(UserWarning) as record:
        pipe.fit(X, y)
    assert any("scaled column by column" in str(w.message) and "SequenceScaler" in str(w.message)
               for w in record)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*scaled column by column")
        make_pipeline(SequenceScaler(), RNNClassifier(hidden_size=4, max_iter=1,
                                                      random_state=0)).fit(X, y)
