"""Parameters and gradients in one buffer (fastrnn._flat), and the steps that use it.

The references are the array-by-array paths that ran before the buffer existed (plain dicts take
them still) and numpy formulas written here; a buffer must change nothing but the speed.
"""

import copy
import pickle

import numpy as np
import pytest

from fastrnn._flat import ALIGN, FlatArrays, flat_buffer
from fastrnn.estimators._inputs import SequenceData
from fastrnn.kernels._pcg64 import draw_raw, mad128, seeded_state, split_state
from fastrnn.nn import SequenceNetwork
from fastrnn.nn._dropout import dropout
from fastrnn.optim import SGD, AdaGrad, Adam, AdamW, clip_grad_norm, global_norm

SHAPES = {"a": (7, 5), "b": (5,), "c": (3, 4, 2), "d": (1,), "e": (33,)}

OPTIMIZERS = [
    (Adam, dict(lr=0.01)),
    (Adam, dict(lr=0.01, weight_decay=0.1)),
    (AdamW, dict(lr=0.02, weight_decay=0.05)),
    (AdamW, dict(lr=0.02, weight_decay=0.0)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, dict(lr=0.1)),
    (AdaGrad, dict(lr=0.1, weight_decay=0.01)),
]


def _arrays(rng, dtype):
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


# ---------------------------------------------------------------------------------- the container
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_views_share_one_aligned_buffer(dtype):
    arrays = _arrays(np.random.default_rng(0), dtype)
    flat = FlatArrays(arrays, dtype)
    assert list(flat) == list(arrays)
    buf = flat_buffer(flat)
    assert buf is flat.flat and buf.ndim == 1 and buf.dtype == dtype
    for (k, a), offset in zip(arrays.items(), flat.offsets):
        v = flat[k]
        assert v.shape == a.shape and v.dtype == dtype and v.flags.c_contiguous
        np.testing.assert_array_equal(v, a)
        assert v.ctypes.data % ALIGN == 0
        assert np.shares_memory(v, buf)
        np.testing.assert_array_equal(buf[offset:offset + a.size], a.ravel())
    # the gaps hold zeros: the buffer's sum of squares is that of the arrays
    total = sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays.values())
    assert np.isclose(float(np.sum(buf.astype(np.float64) ** 2)), total, rtol=1e-12)


def test_assignment_copies_into_the_buffer_and_checks_the_shape():
    flat = FlatArrays(_arrays(np.random.default_rng(1), np.float32), np.float32)
    view = flat["a"]
    new = np.arange(35, dtype=np.float64).reshape(7, 5)
    flat["a"] = new
    assert flat["a"] is view  # the array a layer holds is the one that changed
    np.testing.assert_array_equal(view, new.astype(np.float32))
    assert flat_buffer(flat) is not None
    with pytest.raises(ValueError, match=r"shape \(7, 5\).*shape \(5, 7\)"):
        flat["a"] = np.zeros((5, 7))
    flat.update({"b": np.ones(5)})
    np.testing.assert_array_equal(flat["b"], np.ones(5, np.float32))
    assert flat_buffer(flat) is not None


def test_copies_and_other_dicts_are_not_one_buffer():
    flat = FlatArrays(_arrays(np.random.default_rng(2), np.float32), np.float32)
    assert flat_buffer(dict(flat)) is None
    for other in (copy.deepcopy(flat), pickle.loads(pickle.dumps(flat))):
        assert flat_buffer(other) is None
        for k in flat:
            np.testing.assert_array_equal(other[k], flat[k])
    grown = FlatArrays(flat, np.float32)
    grown["new"] = np.zeros(3, np.float32)  # a new name: still a dict, no longer one buffer
    assert flat_buffer(grown) is None
    popped = FlatArrays(flat, np.float32)
    popped.pop("a")
    assert flat_buffer(popped) is None


# ---------------------------------------------------------------------------------- the optimisers
def _train(opt, params, grads, rng, steps, clip=None, reload_at=None, make=None):
    for step in range(steps):
        for k, s in SHAPES.items():
            grads[k][...] = rng.standard_normal(s) * 3
        if clip is not None:
            clip_grad_norm(grads, clip)
        opt.step(params, grads)
        if step == reload_at:  # continue from a state_dict, in a new optimiser
            state = opt.state_dict()
            opt = make()
            opt.load_state_dict(state)
    return opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,hp", OPTIMIZERS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_a_step_over_the_buffer_equals_the_steps_array_by_array(cls, hp, dtype):
    start = _arrays(np.random.default_rng(3), dtype)
    plain = {k: v.copy() for k, v in start.items()}
    plain_g = {k: np.zeros(s, dtype) for k, s in SHAPES.items()}
    flat, flat_g = FlatArrays(start, dtype), FlatArrays(plain_g, dtype)
    a = _train(cls(**hp), plain, plain_g, np.random.default_rng(4), 25)
    b = _train(cls(**hp), flat, flat_g, np.random.default_rng(4), 25, reload_at=9,
               make=lambda: cls(**hp))
    assert b._flat_st is not None  # the buffer path ran
    for k in SHAPES:
        np.testing.assert_array_equal(flat[k], plain[k], err_msg=k)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["step_count"] == sb["step_count"] == 25
    for k in SHAPES:
        assert sa["state"][k].keys() == sb["state"][k].keys()
        for key, v in sa["state"][k].items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(sb["state"][k][key], v)
                assert b.state[k][key].base is b._flat_st[key]  # views into the state buffer
            else:
                assert sb["state"][k][key] == v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipping_over_the_buffer_matches_array_by_array(dtype):
    rng = np.random.default_rng(5)
    grads = {k: (rng.standard_normal(s) * 10).astype(dtype) for k, s in SHAPES.items()}
    big = {"big": (rng.standard_normal(5000) * 0.3).astype(dtype), **grads}
    for arrays in (grads, big):
        flat = FlatArrays(arrays, dtype)
        want = float(np.sqrt(sum(np.sum(a.astype(np.float64) ** 2) for a in arrays.values())))
        assert global_norm(flat) == pytest.approx(want, rel=1e-12)
        plain = {k: v.copy() for k, v in arrays.items()}
        n_flat, n_plain = clip_grad_norm(flat, 1.0), clip_grad_norm(plain, 1.0)
        assert n_flat == pytest.approx(n_plain, rel=1e-12)
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        for k in arrays:
            np.testing.assert_allclose(flat[k], plain[k], rtol=rtol, atol=0)
        assert global_norm(flat) == pytest.approx(1.0, rel=rtol)


def test_non_finite_gradients_in_the_buffer_are_reported_and_left_alone():
    flat = FlatArrays({"a": np.ones(5000, np.float32), "b": np.ones(3, np.float32)}, np.float32)
    flat["b"][1] = np.inf
    assert clip_grad_norm(flat, 1.0) == np.inf
    assert np.isinf(flat["b"][1]) and flat["a"][0] == 1.0
    flat["b"][2] = np.nan
    assert np.isnan(global_norm(flat))


def test_a_state_of_another_model_is_refused_on_the_buffer_path():
    dtype = np.float32
    params = FlatArrays(_arrays(np.random.default_rng(6), dtype), dtype)
    grads = FlatArrays({k: np.ones(s, dtype) for k, s in SHAPES.items()}, dtype)
    opt = Adam(lr=0.01)
    opt.step(params, grads)
    state = opt.state_dict()
    state["state"]["a"]["exp_avg"] = np.zeros((5, 7))
    fresh = Adam(lr=0.01)
    fresh.load_state_dict(state)
    with pytest.raises(ValueError, match="exp_avg.*shape \\(5, 7\\).*shape \\(7, 5\\)"):
        fresh.step(params, grads)


def test_a_float64_state_loaded_into_a_float32_buffer_is_converted():
    params64 = {k: v.astype(np.float64) for k, v in _arrays(np.random.default_rng(7),
                                                              np.float32).items()}
    grads64 = {k: np.full(s, 0.5) for k, s in SHAPES.items()}
    opt64 = Adam(lr=0.01)
    opt64.step(params64, grads64)
    params = FlatArrays(params64, np.float32)
    grads = FlatArrays(grads64, np.float32)
    opt = Adam(lr=0.01)
    opt.load_state_dict(opt64.state_dict())
    opt.step(params, grads)
    assert opt.state["a"]["exp_avg"].dtype == np.float32
    ref = {k: v.astype(np.float32) for k, v in params64.items()}
    ref_opt = Adam(lr=0.01)
    ref_opt.load_state_dict(opt64.state_dict())
    ref_opt.step(ref, {k: v.astype(np.float32) for k, v in grads64.items()})
    for k in SHAPES:
        np.testing.assert_array_equal(params[k], ref[k])


# ---------------------------------------------------------------------------------- the network
def test_a_network_holds_its_parameters_and_gradients_in_one_buffer_each():
    net = SequenceNetwork(3, n_features=4, hidden_size=6, bidirectional=True,
                          learn_initial_state=True, random_state=0)
    for d in (net.params, net.grads):
        assert flat_buffer(d) is not None
    for k, v in net.rnn.params.items():
        assert net.params[f"rnn.{k}"] is v
        assert net.grads[f"rnn.{k}"] is net.rnn.grads[k]
    assert net.params["head.weight"] is net.head.params["weight"]
    assert net.params["h0"] is net._state_params["h0"]
    # load_state_dict and assignment copy into the buffer
    state = {k: np.full(v.shape, 0.25, v.dtype) for k, v in net.params.items()}
    net.load_state_dict(state)
    assert flat_buffer(net.params) is not None
    np.testing.assert_array_equal(net.rnn.params["weight_hh_l0"], 0.25)
    net.params["head.bias"] = np.arange(3)
    np.testing.assert_array_equal(net.head.params["bias"], [0, 1, 2])


def test_tied_weights_stay_tied_in_the_buffer():
    net = SequenceNetwork(10, vocab_size=10, embedding_dim=6, hidden_size=6, pooling=None,
                          tie_weights=True, random_state=0)
    assert net.head.params["weight"] is net.embedding.params["weight"]
    assert net.head.params["weight"] is net.params["embedding.weight"]
    assert "head.weight" not in net.params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_a_network_in_one_buffer_equals_training_its_copy_array_by_array(dtype):
    """A copy whose dicts are plain (the same arrays, not one buffer) trains array by array: the
    two runs must agree (bit for bit in float32, where the clipping scale rounds to the same
    float; to 1e-12 in float64, where the norm is summed in another order)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((6, 9, 3)).astype(dtype)
    lengths = np.array([9, 7, 5, 9, 3, 8])
    y = rng.integers(0, 2, 6)
    nets = [SequenceNetwork(2, n_features=3, hidden_size=5, dropout=0.2, dtype=dtype,
                            random_state=1)]
    nets.append(pickle.loads(pickle.dumps(nets[0])))
    nets[1].params, nets[1].grads = dict(nets[1].params), dict(nets[1].grads)
    assert flat_buffer(nets[0].params) is not None and flat_buffer(nets[1].params) is None
    from fastrnn.losses import softmax_cross_entropy

    for net in nets:
        opt = Adam(lr=0.05, weight_decay=0.01)
        for _ in range(15):
            out, _ = net.forward(X, lengths)
            _, dout = softmax_cross_entropy(out, y)
            net.backward(dout)
            clip_grad_norm(net.grads, 0.5)
            opt.step(net.params, net.grads)
    for k in nets[0].params:
        if dtype == np.float32:
            np.testing.assert_array_equal(nets[0].params[k], nets[1].params[k], err_msg=k)
        else:
            np.testing.assert_allclose(nets[0].params[k], nets[1].params[k], rtol=1e-12,
                                       atol=1e-12, err_msg=k)


@pytest.mark.parametrize("copier", [lambda o: pickle.loads(pickle.dumps(o)), copy.deepcopy],
                         ids=["pickle", "deepcopy"])
def test_a_copied_network_is_one_buffer_again_and_trains_on_as_the_original(copier):
    """A network and its optimiser copied together in the middle of training: the copy's
    parameters and gradients are one buffer each again, every block sees their views, and the
    next steps of both give the same parameters bit for bit (Adam's moments carried over)."""
    from fastrnn.losses import softmax_cross_entropy

    rng = np.random.default_rng(9)
    X = rng.standard_normal((6, 9, 3)).astype(np.float32)
    lengths = np.array([9, 7, 5, 9, 3, 8])
    y = rng.integers(0, 2, 6)
    net = SequenceNetwork(2, n_features=3, hidden_size=5, dropout=0.2, bidirectional=True,
                          learn_initial_state=True, random_state=1)
    opt = Adam(lr=0.05, weight_decay=0.01)

    def steps(net, opt, n):
        for _ in range(n):
            out, _ = net.forward(X, lengths)
            net.backward(softmax_cross_entropy(out, y)[1])
            clip_grad_norm(net.grads, 0.5)
            opt.step(net.params, net.grads)

    steps(net, opt, 3)
    copy_net, copy_opt = copier((net, opt))
    for d, orig in ((copy_net.params, net.params), (copy_net.grads, net.grads)):
        assert flat_buffer(d) is not None and flat_buffer(d) is not flat_buffer(orig)
    for k, v in copy_net.rnn.params.items():
        assert copy_net.params[f"rnn.{k}"] is v
        assert copy_net.grads[f"rnn.{k}"] is copy_net.rnn.grads[k]
    assert copy_net.params["h0"] is copy_net._state_params["h0"]
    steps(net, opt, 3)
    steps(copy_net, copy_opt, 3)
    for k in net.params:
        np.testing.assert_array_equal(copy_net.params[k], net.params[k], err_msg=k)


# ------------------------------------------------------------------------------- dropout, batches
def test_mad128_is_the_product_and_sum_of_python_integers():
    import numba

    call = numba.njit(lambda *a: mad128(*a))
    rng = np.random.default_rng(3)
    m = (1 << 64) - 1
    for _ in range(200):
        a, b, c = (int(v) for v in rng.integers(0, 1 << 63, 3, dtype=np.uint64) * 2 + 1)
        a, b, c = a << 64 | (a * 7919 & m), b << 64 | (b * 31 & m), c << 64 | (c * 131 & m)
        halves = [np.uint64(v >> 64) for v in (a, b, c)], [np.uint64(v & m) for v in (a, b, c)]
        hi, lo = call(halves[0][0], halves[1][0], halves[0][1], halves[1][1], halves[0][2],
                      halves[1][2])
        want = (a * b + c) % (1 << 128)
        assert (int(hi), int(lo)) == (want >> 64, want & m)


@pytest.mark.parametrize("seed", [0, 1, 1234, 2**31 - 2])
def test_the_compiled_pcg64_draws_numpys_raw_values(seed):
    for n in (0, 1, 5, 1000):
        raw = np.empty(n, np.uint64)
        draw_raw(split_state(np.random.PCG64(seed)), raw)
        np.testing.assert_array_equal(raw, np.random.PCG64(seed).random_raw(n))


def test_the_compiled_seeding_gives_numpys_pcg64_state():
    seeds = [0, 1, 2, 1234, 2**31 - 2, 2**32 - 1, *np.random.default_rng(0).integers(0, 2**32, 500)]
    for seed in seeds:
        np.testing.assert_array_equal(seeded_state(int(seed)),
                                      split_state(np.random.PCG64(int(seed))), err_msg=str(seed))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.1, 0.2, 1 / 3, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(4, 11, 7), (3, 5), (1,), (0, 3), (2, 9, 1001)])
def test_the_compiled_dropout_draws_and_applies_the_numpy_mask(p, dtype, shape):
    dtype = np.dtype(dtype)
    X = np.random.default_rng(9).standard_normal(shape).astype(dtype)
    keep = 1.0 - p
    for seed in (1234, 7, 2**40 + 3):  # a seed past 32 bits: numpy's seeding
        u = np.random.Generator(np.random.PCG64(seed)).random(X.shape, dtype=np.float32)
        mask = np.where(u < np.float32(keep), dtype.type(1.0 / keep), dtype.type(0.0)).astype(dtype)
        out, got = dropout(X, p, seed, dtype)
        assert got.dtype == out.dtype == dtype and got.shape == out.shape == shape
        np.testing.assert_array_equal(got, mask)
        np.testing.assert_array_equal(out, X * mask)
        out64, _ = dropout(X.astype(np.float64), p, seed, np.dtype(np.float32))  # another dtype
        np.testing.assert_array_equal(out64, X.astype(np.float64) * mask.astype(np.float32))
    if X.size > 1000:  # the share kept is keep's (the draws are uniform)
        assert abs((got != 0).mean() - keep) < 0.02


def test_batches_cut_from_the_padded_array_equal_the_copied_ones():
    rng = np.random.default_rng(10)
    seqs = [rng.standard_normal((int(n), 3)).astype(np.float32) for n in rng.integers(3, 9, 20)]
    data = SequenceData(seqs, [len(s) for s in seqs], tokens=False)
    padded = data.padded()
    assert padded.array is not None and data.array is None
    for idx in (np.array([0, 5, 7]), np.array([19]), np.arange(20)):
        (Xa, La), (Xb, Lb) = data.batch(idx), padded.batch(idx)
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(La, Lb)
        assert Xa.dtype == Xb.dtype and Xb.flags.c_contiguous
    ragged = [np.ones((2, 3), np.float32)] * 9 + [np.ones((100, 3), np.float32)]
    data = SequenceData(ragged, [len(s) for s in ragged], tokens=False)
    assert data.padded() is data  # padding to 100 steps would take far more than the data


def test_the_norm_of_a_large_buffer_is_one_compiled_pass(monkeypatch):
    from fastrnn import _backend

    calls = []
    real = _backend.training_kernel("sum_squares")
    monkeypatch.setitem(_backend._training, "sum_squares",
                        lambda x: calls.append(x.size) or real(x))
    rng = np.random.default_rng(11)
    arrays = {"w": rng.standard_normal((100, 60)), "b": rng.standard_normal(60)}
    flat = FlatArrays(arrays, np.float64)
    want = float(np.sqrt(sum(np.sum(a ** 2) for a in arrays.values())))
    assert clip_grad_norm(flat, 1e9) == pytest.approx(want, rel=1e-12)
    assert global_norm(flat) == pytest.approx(want, rel=1e-12)
    assert calls == [flat.flat.size] * 2
    assert global_norm(arrays) == pytest.approx(want, rel=1e-12) and len(calls) == 2
