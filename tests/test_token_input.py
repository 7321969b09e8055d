"""A recurrent layer told that its input is a lookup in a token table (``tokens=(ids, table)``):
the same outputs and parameter gradients as the plain input, the gradient of the table as the
scatter-add of ``dX`` over the ids, on every cell, direction, depth and thread count, with padded
steps; the fallbacks (a table too large, another backend, skip connections) return the same; the
networks with an embedding use it and train the same."""

import numpy as np
import pytest

import fastrnn._config as cfg
from fastrnn.nn import GRU, LSTM, RNN, SequenceNetwork

pytest.importorskip("numba")


def _gru_v1(*args, **kwargs):
    return GRU(*args, reset_after=False, **kwargs)


def _relu_rnn(*args, **kwargs):
    return RNN(*args, nonlinearity="relu", **kwargs)


CELLS = [LSTM, GRU, _gru_v1, RNN, _relu_rnn]


def _problem(seed, V=7, B=6, T=11, E=5):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(B, T))
    table = rng.normal(size=(V, E)).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=B)
    lengths[0] = T
    return rng, ids, table, lengths


def _scatter(ids, dX, lengths, V):
    """The table's gradient from ``dX`` (B, T, E): the sum over the real steps of each id."""
    out = np.zeros((V, dX.shape[2]), np.float64)
    for b, n in enumerate(lengths):
        np.add.at(out, ids[b, :n], dX[b, :n])
    return out


def _took_tokens(layer):
    """Whether the layer's last forward, given tokens, projected through their table (it keeps
    nothing to scatter ``dX`` with)."""
    return layer._cache[3] is None


def _pair(cls, E, **options):
    plain = cls(E, 8, random_state=3, **options)
    token = cls(E, 8, random_state=3, **options)
    return plain, token


def _run_both(plain, token, ids, table, lengths, rng):
    X = table[ids]
    Y, hn = plain.forward(X, lengths)
    Yt, hnt = token.forward(X, lengths, tokens=(ids, table))
    dY = rng.normal(size=Y.shape).astype(np.float32)
    dX = plain.backward(dY)
    dtable = token.backward(dY)
    return (Y, hn, dX), (Yt, hnt, dtable)


def _assert_same(plain, token, got, want, ids, lengths, V, tol=2e-6):
    (Y, hn, dX), (Yt, hnt, dtable) = want, got
    np.testing.assert_allclose(Yt, Y, rtol=tol, atol=tol)
    for a, b in zip(np.atleast_1d(hnt) if not isinstance(hnt, tuple) else hnt,
                    np.atleast_1d(hn) if not isinstance(hn, tuple) else hn):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert dtable.shape == (V, ids.shape[0] and dX.shape[2])
    np.testing.assert_allclose(dtable, _scatter(ids, dX, lengths, V), rtol=1e-5, atol=1e-5)
    for k in plain.grads:
        np.testing.assert_allclose(token.grads[k], plain.grads[k], rtol=1e-5, atol=1e-5,
                                   err_msg=k)


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request):
    cfg.set_num_threads(request.param)
    yield request.param
    cfg.set_num_threads(None)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("options", [dict(), dict(num_layers=2, bidirectional=True),
                                     dict(recurrent_dropout=0.3, dropout=0.2, num_layers=2)])
def test_projection_through_the_table_matches_the_plain_input(cls, options, threads):
    rng, ids, table, lengths = _problem(1, B=16, T=12)
    plain, token = _pair(cls, table.shape[1], **options)
    got_want = _run_both(plain, token, ids, table, lengths, rng)
    assert _took_tokens(token)
    _assert_same(plain, token, got_want[1], got_want[0], ids, lengths, len(table))


@pytest.mark.parametrize("cls", [LSTM, _gru_v1])
def test_a_large_table_or_another_path_still_returns_the_table_gradient(cls):
    """A table with more rows than half the real steps is not projected (the steps' products are
    cheaper); the numpy backend and skip connections do not project either. Each returns the
    scatter of dX all the same."""
    rng, ids, table, lengths = _problem(2, V=40, B=4, T=9)
    plain, token = _pair(cls, table.shape[1])
    got_want = _run_both(plain, token, ids, table, lengths, rng)
    assert not _took_tokens(token)
    _assert_same(plain, token, got_want[1], got_want[0], ids, lengths, len(table))
    for options in (dict(backend="numpy"), dict(num_layers=2, skip="residual")):
        rng, ids, table, lengths = _problem(3, B=12)
        plain, token = _pair(cls, table.shape[1], **options)
        got_want = _run_both(plain, token, ids, table, lengths, rng)
        assert not _took_tokens(token)
        _assert_same(plain, token, got_want[1], got_want[0], ids, lengths, len(table))


@pytest.mark.parametrize("cls", [LSTM, GRU, RNN])
def test_bf16_layer_projects_the_table_in_float32(cls):
    """With ``precision="bf16"`` the token projection is the float32 table's lookup: the layer is
    its float32 twin within the bf16 tolerance of the recurrent products."""
    rng, ids, table, lengths = _problem(4, B=16, T=12)
    ref = cls(table.shape[1], 8, random_state=3, bidirectional=True)
    low = cls(table.shape[1], 8, random_state=3, bidirectional=True, precision="bf16")
    (Y, _, dX), (Yb, _, dtable) = _run_both(ref, low, ids, table, lengths, rng)
    assert _took_tokens(low)

    def rel(a, b):
        return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)

    want = _scatter(ids, dX, lengths, len(table))
    assert 0 < rel(Yb, Y) < 1e-2 and rel(dtable, want) < 1e-2
    for k in ref.grads:
        assert rel(low.grads[k], ref.grads[k]) < 1e-2, k


def test_inference_with_tokens_matches():
    rng, ids, table, lengths = _problem(5, B=16)
    layer = LSTM(table.shape[1], 8, random_state=0, bidirectional=True).eval()
    Y, (h, c) = layer.infer(table[ids], lengths)
    Yt, (ht, ct) = layer.infer(table[ids], lengths, tokens=(ids, table))
    np.testing.assert_allclose(Yt, Y, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(ct, c, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("tokens, message", [
    ("ids", "must be a pair"),
    ((np.zeros((2, 3), int), np.zeros((4, 5), np.float32)), "integers of shape"),
    ((np.zeros((6, 11)), np.zeros((4, 5), np.float32)), "integers of shape"),
    ((np.zeros((6, 11), int), np.zeros((4, 6), np.float32)), "must have shape"),
    ((np.full((6, 11), 4), np.zeros((4, 5), np.float32)), r"lie in \[0, 4\)"),
])
def test_bad_tokens_are_named(tokens, message):
    _, ids, table, lengths = _problem(6)
    with pytest.raises(ValueError, match=message):
        LSTM(5, 8).forward(table[ids], lengths, tokens=tokens)


@pytest.mark.parametrize("dropout, used", [(0.0, True), (0.3, False)])
def test_network_with_an_embedding_projects_through_it(monkeypatch, dropout, used):
    """A token network hands its embedding to the layer when nothing (no dropout mask) comes
    between them; its gradients, the embedding's included, are those of the plain path."""
    rng = np.random.default_rng(7)
    V, B, T = 9, 16, 10
    ids = rng.integers(1, V, size=(B, T))
    lengths = rng.integers(2, T + 1, size=B)

    def make():
        net = SequenceNetwork(V, vocab_size=V, embedding_dim=6, hidden_size=8, pooling=None,
                              head="softmax", dropout=dropout, random_state=0)
        return net.train()

    fused, plain = make(), make()
    monkeypatch.setattr(plain, "_tokens", lambda ids, mask: None)
    dY = rng.normal(size=(B, T, 8)).astype(np.float32)
    for net in (fused, plain):
        net.forward(ids, lengths)
        net.backward(dY)
    assert fused._cache["tokens"] == used and not plain._cache["tokens"]
    assert _took_tokens(fused.rnn)  # given tokens, it projected them; else it was given none
    for k in plain.grads:
        np.testing.assert_allclose(fused.grads[k], plain.grads[k], rtol=1e-5, atol=1e-6,
                                   err_msg=k)
    assert np.abs(fused.grads["embedding.weight"]).max() > 0
    assert np.all(fused.grads["embedding.weight"][0] == 0)  # the padding id
    fused.eval().forward(ids, lengths)  # inference keeps the plain path
    assert not fused._cache["tokens"]
