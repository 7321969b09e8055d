"""Recurrent layers on unpadded batches: the shortcuts a call without ``lengths`` takes (one shared
plan per batch shape, no sorting, no padding masks, no BLAS limit on the Numba fast driver) give the
results of the general padded path, bit for bit, and stay right when the inputs, the parameters, the
mode or the calling thread change."""

import threading

import numpy as np
import pytest

from fastrnn.nn import GRU, LSTM, RNN
from fastrnn.nn._plan import Plan, padded_plan, unpadded_plan

CELLS = {
    "rnn": (RNN, {}),
    "lstm": (LSTM, {}),
    "lstm-peephole": (LSTM, dict(peephole=True)),
    "gru": (GRU, {}),
    "gru-v1": (GRU, dict(reset_after=False)),
}


def make(name, backend, dtype, seed=0, **kw):
    cls, extra = CELLS[name]
    layer = cls(3, 5, dtype=dtype, backend=backend, random_state=seed, **extra, **kw)
    rng = np.random.RandomState(seed + 100)
    for k, v in layer.params.items():  # non-zero biases and peepholes: every term is exercised
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


def forward_backward(layer, X, lengths=None, steps=None):
    """Y, h_n, dX, the gradients and grad_h0 of a forward and backward of ``X``, with the loss
    gradient drawn for the first ``steps`` steps (zero after them)."""
    Y, hn = layer.forward(X, lengths)
    rng = np.random.RandomState(11)
    steps = Y.shape[1] if steps is None else steps
    dY = np.zeros(Y.shape)
    dY[:, :steps] = rng.randn(Y.shape[0], steps, Y.shape[2])
    dX = layer.backward(dY)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    states = hn if isinstance(hn, tuple) else (hn,)
    g0 = layer.grad_h0 if isinstance(layer.grad_h0, tuple) else (layer.grad_h0,)
    return Y, states, dX, grads, g0


def padded_reference(name, backend, dtype, X, **kw):
    """The same computation through the padded path: ``X`` with one more step holding NaN, every
    length ``T`` (so the batch is sorted, masked and scattered back, and the extra step ignored)."""
    B, T, F = X.shape
    Xp = np.concatenate([X, np.full((B, 1, F), np.nan, X.dtype)], axis=1)
    layer = make(name, backend, dtype, **kw)
    return forward_backward(layer, Xp, np.full(B, T), steps=T)


def assert_same(got, ref):
    Y, states, dX, grads, g0 = got
    Yr, states_r, dXr, grads_r, g0r = ref
    T = Y.shape[1]
    np.testing.assert_array_equal(Y, Yr[:, :T])
    np.testing.assert_array_equal(dX, dXr[:, :T])
    for a, b in zip(states + g0, states_r + g0r):
        np.testing.assert_array_equal(a, b)
    for k in grads_r:
        np.testing.assert_array_equal(grads[k], grads_r[k])


@pytest.mark.parametrize("shape", [
    dict(),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, bidirectional=True, dropout=0.3, recurrent_dropout=0.2),
], ids=["single", "stacked-bidir", "stacked-bidir-dropout"])
@pytest.mark.parametrize("B, T", [(1, 1), (3, 4), (4, 1100)])  # the last: a plan not kept
@pytest.mark.parametrize("name", CELLS)
def test_unpadded_call_matches_the_padded_path_bit_for_bit(name, B, T, shape, backend, dtype):
    X = np.random.RandomState(2).randn(B, T, 3).astype(dtype)
    layer = make(name, backend, dtype, **shape)
    got = forward_backward(layer, X)
    assert_same(got, padded_reference(name, backend, dtype, X, **shape))
    # the second call of the shape runs on the shared plan
    layer = make(name, backend, dtype, **shape)
    assert_same(forward_backward(layer, X), got)


def test_unpadded_plan_is_shared_per_shape_and_read_only():
    a, b = unpadded_plan(3, 4), unpadded_plan(3, 4)
    assert a is b and a.unpadded and unpadded_plan(4, 3) is not a
    fresh = Plan(np.full(3, 4, np.int64), 4)
    for k in ("order", "Ls", "batch_sizes", "real", "rev"):
        np.testing.assert_array_equal(getattr(a, k), getattr(fresh, k))
    for k in ("order", "Ls", "real", "rev", "cols"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(a, k).flat[0] = 0
    assert not Plan(np.array([4, 2, 4], np.int64), 4).unpadded
    big = unpadded_plan(64, 100)  # a large shape: built for each call, same layout
    assert big.unpadded and big is not unpadded_plan(64, 100)
    np.testing.assert_array_equal(big.batch_sizes, np.full(100, 64))


def test_padded_plan_is_shared_per_lengths_and_read_only():
    lengths = np.array([4, 2, 4, 1], np.int64)
    a = padded_plan(lengths, 5)
    lengths[0] = 3  # the caller's array changes after the call: the shared plan keeps its own
    b = padded_plan(np.array([4, 2, 4, 1], np.int64), 5)
    assert a is b
    assert padded_plan(np.array([2, 4, 4, 1], np.int64), 5) is not a  # another order
    assert padded_plan(np.array([4, 2, 4, 1], np.int64), 6) is not a  # another T
    fresh = Plan(np.array([4, 2, 4, 1], np.int64), 5)
    for k in ("order", "Ls", "batch_sizes", "real", "rev", "cols"):
        np.testing.assert_array_equal(getattr(a, k), getattr(fresh, k))
    assert a.Tm == fresh.Tm == 4 and not a.unpadded
    for k in ("order", "Ls", "real", "rev", "cols"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(a, k).flat[0] = 0
    big = np.full(64, 100, np.int64)
    big[0] = 99  # a large batch: built for each call
    assert padded_plan(big, 100) is not padded_plan(big, 100)


def test_a_layer_on_a_shared_padded_plan_gives_the_results_of_a_fresh_one(backend):
    """Two layers in the same state, the second call of the same lengths running on the plan (and
    the row tables) that the first built: the same outputs and gradients bit for bit."""
    from fastrnn.nn import _plan

    _plan._padded.clear()  # the first call builds the plan and its tables
    X = np.random.RandomState(4).randn(3, 5, 3).astype(np.float32)
    L = np.array([5, 2, 4])
    got = [forward_backward(make("gru", backend, np.float32, bidirectional=True), X, L)
           for _ in range(2)]
    assert list(_plan._padded.values()) == [padded_plan(np.asarray(L, np.int64), 5)]
    assert_same(got[1], got[0])


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_repeated_calls_follow_every_change(name, backend):
    """One layer called again and again on one shape: each result is that of a fresh layer in the
    same state (through the padded path), whatever changed in between."""
    dtype = np.float32
    layer = make(name, backend, dtype, num_layers=2, bidirectional=True, dropout=0.4,
                 recurrent_dropout=0.3, seed=5)
    X = np.random.RandomState(3).randn(2, 3, 3).astype(dtype)

    def check(X):
        ref = make(name, backend, dtype, num_layers=2, bidirectional=True, dropout=0.4,
                   recurrent_dropout=0.3, seed=5)
        ref.load_state_dict(layer.state_dict())
        ref.rng_.set_state(layer.rng_.get_state())
        ref.train(layer.training)
        ref.dropout, ref.recurrent_dropout = layer.dropout, layer.recurrent_dropout
        B, T, F = X.shape
        Xp = np.concatenate([X, np.full((B, 1, F), np.nan, X.dtype)], axis=1)
        Yr, hr = ref.forward(Xp, np.full(B, T))
        Y, h = layer.forward(X)
        np.testing.assert_array_equal(Y, Yr[:, :T])
        for a, b in zip(h, hr):
            np.testing.assert_array_equal(a, b)
        return Y

    first = check(X)  # training mode: dropout masks drawn
    assert not np.array_equal(check(X), first)  # fresh masks each call
    layer.eval()
    evaluated = check(X)
    np.testing.assert_array_equal(check(X), evaluated)
    layer.params["weight_hh_l0"] *= 0.5  # parameters changed in place
    changed = check(X)
    assert not np.array_equal(changed, evaluated)
    layer.load_state_dict(make(name, backend, dtype, num_layers=2, bidirectional=True,
                               seed=9).state_dict())  # parameters replaced
    check(X)
    layer.forward(X, lengths=[3, 1])  # a padded call in between
    check(X.astype(np.float64))  # another input dtype
    check(X[:1])  # another shape
    layer.train()
    layer.dropout = layer.recurrent_dropout = 0.0  # dropout switched off
    check(X)


def test_calls_from_two_threads_on_one_layer(compiled_backend):
    """``infer`` from two threads at once on one layer, with interleaved shapes: every result is
    the one computed alone."""
    layer = make("lstm", compiled_backend, np.float32, num_layers=2, bidirectional=True)
    rng = np.random.RandomState(4)
    inputs = [rng.randn(B, T, 3).astype(np.float32) for B, T in [(1, 1), (2, 5), (8, 1), (3, 2)]]
    expected = [layer.infer(X)[0] for X in inputs]
    failures = []

    def work(offset):
        for i in range(200):
            k = (i + offset) % len(inputs)
            Y, _ = layer.infer(inputs[k])
            if not np.array_equal(Y, expected[k]):
                failures.append((offset, i))

    threads = [threading.Thread(target=work, args=(o,)) for o in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_one_blas_thread_limits_every_blas_library_and_restores_it():
    from fastrnn import _backend

    ctl = _backend._blas_controller()
    if ctl is None:
        pytest.skip("threadpoolctl is not installed")
    libs = ctl.lib_controllers
    before = [lib.num_threads for lib in libs]
    for lib in libs:
        lib.set_num_threads(2)
    try:
        with _backend.one_blas_thread():
            assert [lib.num_threads for lib in libs] == [1] * len(libs)
            with _backend.one_blas_thread():  # nested: still one, and left at one
                assert [lib.num_threads for lib in libs] == [1] * len(libs)
            assert [lib.num_threads for lib in libs] == [1] * len(libs)
        assert [lib.num_threads for lib in libs] == [2] * len(libs)
        with pytest.raises(KeyError):  # restored on an exception too
            with _backend.one_blas_thread():
                raise KeyError("x")
        assert [lib.num_threads for lib in libs] == [2] * len(libs)
    finally:
        for lib, n in zip(libs, before):
            lib.set_num_threads(n)
