"""Whole networks: gradient checks through embedding, stacked bidirectional layers, pooling, head and
loss; pooling semantics; the training step with clipping and non-finite recovery; truncated BPTT."""

import warnings

import numpy as np
import pytest

from fastrnn.datasets import make_sequence_classification
from fastrnn.losses import sequence_softmax_cross_entropy, softmax_cross_entropy
from fastrnn.nn import SequenceNetwork
from fastrnn.nn.layers import pool, pool_backward
from fastrnn.text import pad_sequences
from fastrnn.train import NonFiniteWarning, Trainer, reset_streams, truncated_bptt_batches

from conftest import numerical_grad
from test_recurrent import rel_err


def token_batch(seed=0):
    rng = np.random.RandomState(seed)
    L = np.array([5, 1, 3, 5])
    ids = rng.randint(1, 7, size=(4, 5))
    for b, n in enumerate(L):
        ids[b, n:] = 0
    return ids, L


def check_network_gradients(net, X, L, loss, reseed=None, frozen=None):
    def f():
        if reseed:
            reseed()
        out, _ = net.forward(X, L)
        return loss(out)[0]

    if reseed:
        reseed()
    out, _ = net.forward(X, L)
    dX = net.backward(loss(out)[1])
    grads = {k: v.copy() for k, v in net.grads.items()}
    for k, p in net.params.items():
        num = numerical_grad(f, p)
        if frozen and k in frozen:  # rows held fixed by design get no gradient
            num[frozen[k]] = 0
        assert rel_err(num, grads[k]) < 1e-6, k
    return dX, f


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_network_gradient_check_classifier(cell, pooling, backend):
    net = SequenceNetwork(3, vocab_size=7, embedding_dim=3, cell=cell, hidden_size=3, num_layers=2,
                          bidirectional=True, pooling=pooling, learn_initial_state=True,
                          dtype=np.float64, backend=backend, random_state=0)
    for v in net.params.values():  # break symmetry of zero biases / initial states
        v += np.random.RandomState(1).uniform(-0.3, 0.3, v.shape)
    net.params["embedding.weight"][0] = 0
    ids, L = token_batch()
    y = np.array([0, 2, 1, 2])
    check_network_gradients(net, ids, L, lambda out: softmax_cross_entropy(out, y))
    assert np.all(net.grads["embedding.weight"][0] == 0), "the padding id gets no gradient"


def test_network_gradient_check_tagger_tied_and_dropout(backend):
    net = SequenceNetwork(7, vocab_size=7, embedding_dim=4, cell="lstm", hidden_size=2,
                          bidirectional=True, pooling=None, tie_weights=True, dropout=0.3,
                          recurrent_dropout=0.4, dtype=np.float64, backend=backend, random_state=0)
    assert "head.weight" not in net.params
    ids, L = token_batch(1)
    y = np.where(np.arange(5)[None, :] < L[:, None], np.roll(ids, -1, axis=1), -1)

    def reseed():  # a fixed dropout mask for every evaluation
        net.rng_ = np.random.RandomState(11)
        net.rnn.rng_ = np.random.RandomState(12)

    # the padding row is frozen at zero, also where it doubles as the head's weight
    check_network_gradients(net, ids, L, lambda out: sequence_softmax_cross_entropy(out, y, L),
                            reseed, frozen={"embedding.weight": 0})
    assert np.all(net.grads["embedding.weight"][0] == 0)
    ctx = net.rnn._cache[2]  # the general driver's record (the numba backend wraps it in a pair)
    ctx = ctx[1] if isinstance(ctx, tuple) else ctx
    assert ctx["units"][0]["hmask"] is not None, "recurrent dropout was active"


def test_network_gradient_check_float_input_regression(backend):
    net = SequenceNetwork(2, n_features=3, cell="rnn", hidden_size=4, pooling="mean",
                          dtype=np.float64, backend=backend, random_state=0,
                          cell_options=dict(nonlinearity="tanh"))
    rng = np.random.RandomState(0)
    X, L = rng.randn(3, 4, 3), np.array([4, 2, 1])
    target = rng.randn(3, 2)

    def mse(out):
        d = out - target
        return float((d ** 2).sum()), 2 * d

    dX, f = check_network_gradients(net, X, L, mse)
    assert rel_err(numerical_grad(f, X), dX) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_max_pooling_equals_numpys(dtype):
    rng = np.random.default_rng(4)
    B, T, F = 6, 9, 5
    L = np.array([9, 1, 4, 0, 7, 3])
    Y = rng.integers(-3, 3, (B, T, F)).astype(dtype)  # small integers: many ties
    Y[2, 1, 0] = Y[2, 3, 0] = np.nan  # the first NaN wins, as with numpy's argmax
    Y[4, 6, 1] = np.nan
    Y[0, :, 2] = -np.inf
    Y[np.arange(T)[None, :] >= L[:, None]] = 99.0  # padding must never win
    for Yb, Lb in ((Y, L), (Y[:1], L[:1]), (Y[2:3], L[2:3])):
        P, arg = pool(Yb, Lb, "max")
        Pc, argc = pool(Yb, Lb, "max", compiled=True)
        assert Pc.dtype == Yb.dtype
        np.testing.assert_array_equal(argc, arg)
        np.testing.assert_array_equal(Pc, P)
        dP = rng.standard_normal(P.shape).astype(dtype)
        want = np.zeros(Yb.shape, dtype)
        np.put_along_axis(want, arg[:, None, :], dP[:, None, :], axis=1)
        np.testing.assert_array_equal(pool_backward(dP, Lb, "max", T, argc), want)


@pytest.mark.parametrize("mode", ["last", "mean", "max"])
@pytest.mark.parametrize("D", [1, 2])
def test_pooling_semantics(mode, D):
    rng = np.random.RandomState(0)
    L = np.array([3, 1, 4])
    Y = rng.randn(3, 4, 2 * D)
    for b, n in enumerate(L):
        Y[b, n:] = 0 if mode != "max" else 50.0  # padding must never win a max
    P, cache = pool(Y, L, mode, D)
    for b, n in enumerate(L):
        if mode == "last":
            exp = Y[b, n - 1].copy()
            if D == 2:
                exp[2:] = Y[b, 0, 2:]
        elif mode == "mean":
            exp = Y[b, :n].mean(0)
        else:
            exp = Y[b, :n].max(0)
        np.testing.assert_allclose(P[b], exp)
    dP = rng.randn(*P.shape)
    dY = pool_backward(dP, L, mode, 4, cache, D)
    # adjoint identity: <pool(Y), dP> is linear in Y around this point for last/mean
    for b, n in enumerate(L):
        assert np.all(dY[b, n:] == 0)
    eps = 1e-6
    E = rng.randn(*Y.shape)
    for b, n in enumerate(L):
        E[b, n:] = 0
    num = (np.sum(pool(Y + eps * E, L, mode, D)[0] * dP)
           - np.sum(pool(Y - eps * E, L, mode, D)[0] * dP)) / (2 * eps)
    np.testing.assert_allclose(num, np.sum(dY * E), rtol=1e-6)


# ---------------------------------------------------------------- training
def _problem(seed=0, n=120):
    Xl, y = make_sequence_classification(n_samples=n, n_features=2, n_classes=2, random_state=seed)
    X, L = pad_sequences(Xl, dtype=np.float32)
    return X, L, y


def _train(net, X, L, y, epochs=15, inject=None, seed=0, **kw):
    tr = Trainer(net, optimizer="adam", learning_rate=0.02, **kw)
    rng = np.random.RandomState(seed)
    step = 0
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(y)), 6):
            def loss_fn(out, idx=idx, step=step):
                loss, d = softmax_cross_entropy(out, y[idx])
                if inject is not None and step in inject:
                    d = d.copy()
                    d[0, 0] = np.inf
                return loss, d
            tr.step(X[idx], L[idx], loss_fn)
            step += 1
    return tr


def accuracy(net, X, L, y):
    net.eval()
    out, _ = net.forward(X, L)
    net.train()
    return float(np.mean(out.argmax(1) == y))


def test_training_converges_and_is_reproducible(backend):
    X, L, y = _problem()
    nets = [SequenceNetwork(2, n_features=2, cell="gru", hidden_size=8, backend=backend,
                            random_state=3, recurrent_dropout=0.1) for _ in range(2)]
    for net in nets:
        _train(net, X, L, y)
    for k in nets[0].params:
        np.testing.assert_array_equal(nets[0].params[k], nets[1].params[k])
    assert accuracy(nets[0], X, L, y) > 0.9


def test_injected_inf_gradient_recovers_and_converges():
    X, L, y = _problem()
    net = SequenceNetwork(2, n_features=2, cell="lstm", hidden_size=8, random_state=0)
    with pytest.warns(NonFiniteWarning, match="rolled back"):
        tr = _train(net, X, L, y, inject={25, 26}, snapshot_every=5)
    assert tr.n_failures_ == 2
    assert np.isnan(tr.grad_norms_[25]) or np.isinf(tr.grad_norms_[25])
    assert tr.optimizer.lr < 0.02
    assert all(np.all(np.isfinite(v)) for v in net.params.values())
    assert accuracy(net, X, L, y) > 0.9


def test_recovery_restores_the_snapshot_exactly():
    X, L, y = _problem(n=20)
    net = SequenceNetwork(2, n_features=2, hidden_size=4, random_state=0)
    tr = Trainer(net, learning_rate=0.01, snapshot_every=1)
    tr.step(X, L, lambda out: softmax_cross_entropy(out, y))
    good = {k: v.copy() for k, v in net.params.items()}
    with pytest.warns(NonFiniteWarning):
        loss, _ = tr.step(X, L, lambda out: (np.nan, np.zeros_like(out)))
    assert np.isnan(loss)
    for k in good:
        np.testing.assert_array_equal(net.params[k], good[k])


def test_persistent_failures_stop_with_a_clear_error():
    X, L, y = _problem(n=20)
    net = SequenceNetwork(2, n_features=2, hidden_size=4, random_state=0)
    tr = Trainer(net, max_failures=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonFiniteWarning)
        with pytest.raises(FloatingPointError, match="consecutive steps.*lower learning_rate"):
            for _ in range(5):
                tr.step(X, L, lambda out: (np.inf, np.zeros_like(out)))


def test_clipping_records_pre_clip_norm():
    X, L, y = _problem(n=20)
    net = SequenceNetwork(2, n_features=2, hidden_size=4, random_state=0, dtype=np.float64)
    tr = Trainer(net, optimizer="sgd", learning_rate=0.0, clip_norm=1e-3)
    tr.step(X, L, lambda out: softmax_cross_entropy(out, y))
    from fastrnn.optim import global_norm
    assert tr.grad_norms_[0] > 1e-3
    np.testing.assert_allclose(global_norm(net.grads), 1e-3, rtol=1e-9)


def test_truncated_bptt_batches_cover_the_stream_with_shifted_targets():
    streams = np.arange(2 * 11).reshape(2, 11)
    chunks = list(truncated_bptt_batches(streams, 4))
    assert [c[0].shape[1] for c in chunks] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks], 1), streams[:, :-1])
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks], 1), streams[:, 1:])
    with pytest.raises(ValueError, match="bptt"):
        list(truncated_bptt_batches(streams, 0))


def test_truncated_bptt_carries_state_and_stops_gradient():
    """Carrying h_n into the next chunk equals running the whole stream forward; the gradient of a
    chunk does not depend on the previous chunk's parameters' path (it stops at the chunk start)."""
    net = SequenceNetwork(5, vocab_size=5, embedding_dim=3, hidden_size=4, pooling=None,
                          dtype=np.float64, random_state=0)
    streams = np.random.RandomState(0).randint(1, 5, size=(2, 9))
    whole, _ = net.forward(streams, np.full(2, 9))
    state, outs = None, []
    for inp, _ in truncated_bptt_batches(np.concatenate([streams, streams[:, :1]], 1), 3):
        out, state = net.forward(inp, np.full(2, inp.shape[1]), state)
        outs.append(out)
    np.testing.assert_allclose(np.concatenate(outs, 1), whole, rtol=1e-12)


def test_reset_streams_restarts_a_stream_from_zero_state():
    net = SequenceNetwork(5, vocab_size=5, embedding_dim=3, hidden_size=4, pooling=None,
                          dtype=np.float64, random_state=0)
    ids = np.random.RandomState(1).randint(1, 5, size=(2, 6))
    _, state = net.forward(ids[:, :3], np.full(2, 3))
    reset_streams(state, [1])
    out, _ = net.forward(ids[:, 3:], np.full(2, 3), state)
    fresh, _ = net.forward(ids[1:, 3:], np.full(1, 3))
    np.testing.assert_allclose(out[1], fresh[0], rtol=1e-12)
    assert not np.allclose(out[0], net.forward(ids[:1, 3:], np.full(1, 3))[0][0])


@pytest.mark.parametrize("make, exc, match", [
    (lambda sd: None, TypeError, r"state dict must be a mapping.*got NoneType"),
    (lambda sd: list(sd.items()), TypeError, r"got a list.*dict\(pairs\)"),
    (lambda sd: {**sd, "head.bias": "ab"}, ValueError, r"'head.bias' holds str values"),
    (lambda sd: {**sd, "head.bias": sd["head.bias"] * 1j}, ValueError,
     r"'head.bias' holds complex numbers"),
    (lambda sd: {**sd, "head.bias": np.full(2, np.nan)}, ValueError,
     r"'head.bias' holds non-finite values"),
])
def test_network_load_state_dict_refuses_what_is_not_real_arrays(make, exc, match):
    net = SequenceNetwork(2, n_features=3, hidden_size=4, random_state=0)
    before = net.state_dict()
    other = SequenceNetwork(2, n_features=3, hidden_size=4, random_state=1).state_dict()
    with pytest.raises(exc, match=match):
        net.load_state_dict(make(other))
    for k, v in net.params.items():
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("pooling", ["last", "mean", "max", None])
def test_infer_and_stream_equal_forward_and_use_the_learned_state(pooling, backend):
    net = SequenceNetwork(3, n_features=2, cell="gru", hidden_size=5, pooling=pooling,
                          learn_initial_state=True, dropout=0.3, dtype=np.float64,
                          backend=backend, random_state=0)
    net.params["h0"][...] = np.random.RandomState(2).randn(*net.params["h0"].shape)
    X = np.random.RandomState(1).randn(2, 6, 2)
    L = np.array([6, 6])
    out, _ = net.infer(X, L)
    ref, _ = net.eval().forward(X, L)
    np.testing.assert_array_equal(out, ref)
    net.params["h0"][...] = 0.0  # the learned state matters
    assert not np.allclose(net.infer(X, L)[0], out)
    net.params["h0"][...] = np.random.RandomState(2).randn(*net.params["h0"].shape)
    stream = net.init_stream(2)
    for t in range(6):
        step = net.step(X[:, t], stream).copy()
        prefix, _ = net.infer(X[:, :t + 1], np.full(2, t + 1))
        np.testing.assert_allclose(step, prefix if pooling else prefix[:, -1], rtol=1e-12,
                                   atol=1e-12)
    if pooling:
        pooled, _ = net.infer(X, L, output="pooled")
        assert pooled.shape == (2, 5)
    else:
        with pytest.raises(ValueError, match="pooling"):
            net.infer(X, L, output="pooled")


def test_network_gradient_check_several_ids_per_step(backend):
    """Token input with K ids per step (a word and its subword features): the step's vector is the
    sum of the K embeddings, and every id gets the step's gradient (padding ids none)."""
    rng = np.random.RandomState(3)
    ids, L = token_batch(2)
    extra = rng.randint(7, 12, size=ids.shape + (2,))
    extra[ids == 0] = 0
    extra[0, 1, 1] = 0  # a step with fewer features
    X = np.concatenate([ids[:, :, None], extra], axis=2)
    net = SequenceNetwork(3, vocab_size=12, embedding_dim=3, cell="gru", hidden_size=3,
                          bidirectional=True, pooling="mean", dtype=np.float64, backend=backend,
                          random_state=0)
    y = np.array([0, 2, 1, 1])
    check_network_gradients(net, X, L, lambda out: softmax_cross_entropy(out, y),
                            frozen={"embedding.weight": 0})
    W = net.embedding.params["weight"]
    np.testing.assert_allclose(net.embedding.forward(X)[1, 0], W[X[1, 0]].sum(axis=0))
    uni = SequenceNetwork(3, vocab_size=12, embedding_dim=3, hidden_size=3, pooling="max",
                          dtype=np.float64, backend=backend, random_state=0)
    stream = uni.init_stream(4, n_ids=3)
    for t in range(3):
        got = uni.step(X[:, t], stream).copy()
        np.testing.assert_allclose(got, uni.infer(X[:, :t + 1], np.full(4, t + 1))[0],
                                   rtol=1e-12)


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_network_gradient_check_bag_of_embeddings_with_dropout(pooling, backend):
    """The bag-of-embeddings path (the mean of the dropped-out token vectors next to the pooled
    outputs) has exact gradients, also for several ids per step and with the padding row frozen."""
    rng = np.random.RandomState(4)
    ids, L = token_batch(3)
    extra = rng.randint(7, 12, size=ids.shape + (1,))
    extra[ids == 0] = 0
    X = np.concatenate([ids[:, :, None], extra], axis=2)
    net = SequenceNetwork(3, vocab_size=12, embedding_dim=4, cell="lstm", hidden_size=3,
                          bidirectional=True, pooling=pooling, dropout=0.3,
                          bag_of_embeddings=True, dtype=np.float64, backend=backend,
                          random_state=0)
    assert net.head.params["weight"].shape == (3, 2 * 3 + 4)
    y = np.array([0, 2, 1, 1])

    def reseed():
        net.rng_ = np.random.RandomState(21)

    check_network_gradients(net, X, L, lambda out: softmax_cross_entropy(out, y), reseed,
                            frozen={"embedding.weight": 0})
    assert np.all(net.grads["embedding.weight"][0] == 0)


def test_bag_of_embeddings_is_the_scaled_sum_of_token_vectors_and_streams(backend):
    """Independent reference: the head's input ends with the real steps' token vectors summed
    and divided by the square root of the length; inference, a forward in evaluation mode and
    step-by-step reading agree."""
    ids, L = token_batch(5)
    net = SequenceNetwork(2, vocab_size=7, embedding_dim=3, cell="gru", hidden_size=4,
                          pooling="mean", bag_of_embeddings=True, dropout=0.2, dtype=np.float64,
                          backend=backend, random_state=0)
    W = net.embedding.params["weight"]
    pooled, _ = net.infer(ids, L, output="pooled")
    assert pooled.shape == (4, 4 + 3)
    ref = np.stack([W[ids[b, :L[b]]].sum(axis=0) / np.sqrt(L[b]) for b in range(4)])
    np.testing.assert_allclose(pooled[:, 4:], ref, rtol=1e-12)
    without = SequenceNetwork(2, vocab_size=7, embedding_dim=3, cell="gru", hidden_size=4,
                              pooling="mean", dtype=np.float64, backend=backend, random_state=0)
    np.testing.assert_allclose(pooled[:, :4], without.infer(ids, L, output="pooled")[0],
                               rtol=1e-12)
    out, _ = net.infer(ids, L)
    np.testing.assert_array_equal(out, net.eval().forward(ids, L)[0])
    full = np.full(4, 5)
    stream = net.init_stream(4)
    for t in range(5):
        got = net.step(ids[:, t], stream).copy()
        np.testing.assert_allclose(got, net.infer(ids[:, :t + 1], full - 5 + t + 1)[0],
                                   rtol=1e-12)
    stream.reset()
    np.testing.assert_allclose(net.step(ids[:, 0], stream), net.infer(ids[:, :1], full - 4)[0],
                               rtol=1e-12)


@pytest.mark.parametrize("kw", [dict(n_features=3, pooling="max"),
                                dict(vocab_size=7, embedding_dim=3, pooling=None)])
def test_bag_of_embeddings_needs_token_input_and_pooling(kw):
    with pytest.raises(ValueError, match="bag_of_embeddings adds .*needs token input"):
        SequenceNetwork(2, bag_of_embeddings=True, **kw)
