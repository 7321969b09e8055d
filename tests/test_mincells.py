"""minGRU, minLSTM and IndRNN: the naive reference, gradient checks, padding, the parallel scan
against the sequential recurrence, backend parity, streaming, and the backends without kernels."""

import numpy as np
import pytest

from fastrnn import _config
from fastrnn._backend import get_backend, route
from fastrnn.kernels import _mincells
from fastrnn.nn import LSTM, IndRNN, MinGRU, MinLSTM

from _reference import indrnn_sequence, network_sequence, unit_params
from conftest import CPU_BACKENDS, numerical_grad, tol
# the same checks as the other cells
from test_recurrent import (batch, check_gradients, check_padding, check_parity,
                            forward_from_random_state, rel_err, run)

#: the backends with kernels for these cells (cython when it is built)
BACKENDS = [b for b in CPU_BACKENDS if b in ("numpy", "numba", "cython")]
COMPILED = [b for b in BACKENDS if b != "numpy"]
CELLS = {
    "mingru": (MinGRU, {}),
    "mingru-g": (MinGRU, dict(candidate="g")),
    "minlstm": (MinLSTM, {}),
    "minlstm-g": (MinLSTM, dict(candidate="g")),
    "indrnn-relu": (IndRNN, {}),
    "indrnn-tanh": (IndRNN, dict(nonlinearity="tanh")),
}
SHAPES = {"single": dict(), "stacked-bidir": dict(num_layers=2, bidirectional=True)}


def make(name, backend="numpy", dtype=np.float64, seed=0, n_in=3, H=4, **kw):
    cls, extra = CELLS[name]
    layer = cls(n_in, H, dtype=dtype, backend=backend, random_state=seed, **extra, **kw)
    rng = np.random.RandomState(seed + 100)
    for k, v in layer.params.items():  # non-trivial biases, so every path is exercised
        if k.startswith("bias"):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


@pytest.fixture
def threads():
    """Set the number of threads for one test (restored after it)."""
    yield _config.set_num_threads
    _config.set_num_threads(None)


# ---------------------------------------------------------------- naive reference
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_naive_reference(name, shape, backend, dtype):
    layer = make(name, backend, dtype, **SHAPES[shape])
    X, L, h0, Y, hn = forward_from_random_state(layer)
    assert Y.dtype == np.dtype(dtype) and hn.dtype == np.dtype(dtype)
    t = max(tol(dtype) * 10, 1e-10)
    H = layer.hidden_size
    for b, n in enumerate(L):
        y, h, _ = network_sequence(layer, X[b, :n], h0[:, b])
        np.testing.assert_allclose(Y[b, :n], y, rtol=t, atol=t)
        assert np.all(Y[b, n:] == 0), "outputs past a sequence's length must be zero"
        np.testing.assert_allclose(hn[:, b], h, rtol=t, atol=t)
        if layer.bidirectional:
            np.testing.assert_allclose(hn[-1, b], Y[b, 0, H:], rtol=t, atol=t)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_check(name, shape, backend):
    check_gradients(make(name, backend, np.float64, **SHAPES[shape]))


@pytest.mark.parametrize("name", ["mingru", "indrnn-relu"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_check_with_dropout(name, backend):
    """Dropout between layers (and IndRNN's recurrent dropout) with the masks of one draw held
    fixed, so that the loss is a function of the parameters alone."""
    kw = dict(recurrent_dropout=0.3) if name.startswith("indrnn") else {}
    layer = make(name, backend, np.float64, num_layers=2, bidirectional=True, dropout=0.4, **kw)
    X, L = batch()
    from fastrnn.nn._plan import Plan

    masks = layer._draw_masks(Plan(np.asarray(L, np.int64), X.shape[1]))
    assert masks[1][0] is not None and (masks[0][0] is not None) == bool(kw)
    layer._draw_masks = lambda plan: masks
    _, _, _, dX, grads, _, R, S = run(layer, X, L)

    def f():
        return run(layer, X, L, None, R, S)[0]

    for k, p in layer.params.items():
        assert rel_err(numerical_grad(f, p), grads[k]) < 1e-6, k
    assert rel_err(numerical_grad(f, X), dX) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_indrnn_recurrent_dropout_multiplies_the_state_where_it_meets_u(backend):
    layer = make("indrnn-relu", backend, np.float64, recurrent_dropout=0.5)
    X, L = batch()
    from fastrnn.nn._plan import Plan

    plan = Plan(np.asarray(L, np.int64), X.shape[1])
    hmasks, drops = layer._draw_masks(plan)
    layer._draw_masks = lambda plan: (hmasks, drops)
    Y, _ = layer.forward(X, L)
    p = unit_params(layer.params, "_l0")
    for pos, b in enumerate(plan.order):  # masks are drawn for the sorted rows
        n = L[b]
        y, _ = indrnn_sequence(X[b, :n], np.zeros(4), p, mask=hmasks[0][pos])
        np.testing.assert_allclose(Y[b, :n], y, rtol=1e-12, atol=1e-12)
    layer.eval()
    assert not np.allclose(layer.forward(X, L)[0], Y)


# ---------------------------------------------------------------- padding
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_never_leaks(name, backend):
    check_padding(make(name, backend, np.float64, **SHAPES["stacked-bidir"]))


# ---------------------------------------------------------------- the scan
def _ragged_coefficients(T, B, H, lengths, seed):
    """Coefficients of a sorted ragged batch as the gate kernels make them: ``a = 1, b = 0`` past
    each length."""
    rng = np.random.RandomState(seed)
    a = rng.uniform(0.0, 1.2, (T, B, H))
    b = rng.randn(T, B, H)
    for r, n in enumerate(lengths):
        a[n:, r] = 1.0
        b[n:, r] = 0.0
    return a, b


def _sequential(a, b, h0):
    hs = [h0]
    for t in range(len(a)):
        hs.append(a[t] * hs[-1] + b[t])
    return np.array(hs)


@pytest.mark.parametrize("mode, parts", [("lanes", 1), ("lanes", 3), ("time", 2), ("time", 5),
                                         ("time", 64), ("time", 200)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_equals_the_sequential_recurrence(backend, mode, parts):
    T, B, H = 97, 3, 5
    lengths = [97, 40, 1]  # sorted, longest first
    a, b = _ragged_coefficients(T, B, H, lengths, seed=parts)
    h0 = np.random.RandomState(9).randn(B, H)
    want = _sequential(a, b, h0)
    hs = np.empty((T + 1, B * H))
    hs[0] = h0.reshape(-1)
    _mincells.scan(get_backend(backend), a.reshape(T, -1), b.reshape(T, -1), hs, B, mode, parts)
    np.testing.assert_allclose(hs.reshape(T + 1, B, H), want, rtol=1e-10, atol=1e-10)
    for r, n in enumerate(lengths):  # a finished sequence carries its last state
        got = hs.reshape(T + 1, B, H)[n:, r]
        np.testing.assert_allclose(got, np.broadcast_to(want[n, r], got.shape), rtol=1e-13,
                                   atol=1e-13)


@pytest.mark.parametrize("mode, parts", [("lanes", 2), ("time", 7)])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_scan_equals_the_sequential_backward(backend, mode, parts, monkeypatch):
    T, B, H = 50, 2, 3
    a, _ = _ragged_coefficients(T, B, H, [50, 17], seed=4)
    rng = np.random.RandomState(5)
    dy, dhn = rng.randn(T, B, H), rng.randn(B, H)
    dy[17:, 1] = 0.0
    # sequential: g_t = dy_t + a_{t+1} g_{t+1}, g_{T-1} = dy_{T-1} + dh_n; dh_0 = a_0 g_0
    want = np.empty_like(dy)
    g = dhn
    for t in range(T - 1, -1, -1):
        g = dy[t] + (a[t + 1] * g if t + 1 < T else g)
        want[t] = g
    real = _mincells.scan
    monkeypatch.setattr(_mincells, "scan",
                        lambda k, a_, b_, hs, B_: real(k, a_, b_, hs, B_, mode, parts))
    dh = dhn.copy()
    got = _mincells.grad_scan(get_backend(backend), a, dy, dh)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dh, a[0] * want[0], rtol=1e-10, atol=1e-10)


def test_scan_plan_splits_time_for_few_long_sequences():
    assert _mincells.scan_plan(10000, 1, 64, threads=4) == ("time", 4)
    assert _mincells.scan_plan(10000, 16, 1024, threads=4) == ("lanes", 4)
    assert _mincells.scan_plan(10, 1, 8, threads=4) == ("lanes", 1)
    assert _mincells.scan_plan(10000, 1, 64, threads=1) == ("lanes", 1)


@pytest.mark.parametrize("name", ["mingru", "minlstm", "indrnn-relu"])
def test_threaded_layer_matches_reference_and_numpy(name, threads, dtype):
    """A long sequence on several threads (blocks of time for the minimal cells, rows of the
    batch for IndRNN) against the naive reference and the numpy backend."""
    threads(4)
    B, T = (2, 1200) if name != "indrnn-relu" else (64, 60)
    L = np.full(B, T)
    L[1] = T // 3 + 1
    X = np.random.RandomState(2).randn(B, T, 3)
    mode = _mincells.scan_plan(T, B, B * 16)
    assert mode == (("time", 4) if name != "indrnn-relu" else ("lanes", 4))
    runs = {bk: run(make(name, bk, dtype, H=16, bidirectional=True), X, L) for bk in BACKENDS}
    ref = runs["numpy"]
    for got in (runs[bk] for bk in COMPILED):
        for a, b in ([(got[1], ref[1]), (got[3], ref[3])]
                     + [(got[4][k], ref[4][k]) for k in ref[4]]):
            assert rel_err(a, b) < tol(dtype)
    layer = make(name, "numba", np.float64, H=16, bidirectional=True)
    Y, _ = layer.forward(X, L)
    for b in range(2):
        y, _, _ = network_sequence(layer, X[b, :L[b]])
        np.testing.assert_allclose(Y[b, :L[b]], y, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- the fused kernels
def test_vector_exp_is_accurate_to_a_few_units_in_the_last_place():
    """``vexp`` (minLSTM's float32 gates) against numpy's float64 exp: relative error below 3
    float32 units (2**-24 each) over its range, clamped outside it, NaN kept."""
    numba = pytest.importorskip("numba")
    from fastrnn.kernels._simd import vload_n, vstore_n
    from fastrnn.kernels._vmath import vexp

    @numba.njit
    def apply(x, out):
        for i in range(0, x.size, 16):
            m = min(16, x.size - i)
            vstore_n(out, i, vexp(vload_n(x, i, m)), m)

    x = np.concatenate([np.linspace(-87, 88, 350_001), np.logspace(-30, 0, 1000),
                        -np.logspace(-30, 0, 1000)]).astype(np.float32)
    out = np.empty_like(x)
    apply(x, out)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - ref) / ref) < 3 * 2.0 ** -24
    x = np.array([np.nan, -np.inf, np.inf, -1000.0, 1000.0, 0.0, -0.0], np.float32)
    out = np.empty_like(x)
    apply(x, out)
    assert np.isnan(out[0]) and out[5] == 1.0 and out[6] == 1.0
    np.testing.assert_allclose(out[[1, 3]], np.exp(-87.0), rtol=3e-7)
    np.testing.assert_allclose(out[[2, 4]], np.exp(88.0), rtol=3e-7)


def _fused_reference(cell, xp, bs, cand, h0, dy, dhn):
    """States, ``dh_0`` and pre-activation gradients of the numpy reference kernels in float64:
    coefficients, the sequential recurrence, the sequential gradient recurrence, gradients."""
    from fastrnn.kernels import numpy_ref as nr

    T, B, H = dy.shape
    a, b = np.empty((T, B, H)), np.empty((T, B, H))
    getattr(nr, cell + "_gates")(xp, bs, cand, a, b, 0, T)
    hs = _sequential(a, b, h0)
    g, carry = np.empty((T, B, H)), dhn.copy()
    for t in range(T - 1, -1, -1):
        g[t] = dy[t] + carry
        carry = a[t] * g[t]
    dxp = np.empty_like(xp)
    getattr(nr, cell + "_grads")(xp, hs, g, bs, cand, dxp, 0, T)
    return hs, carry, dxp


@pytest.mark.parametrize("cand", [False, True], ids=["identity", "g"])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_fused_kernels_match_the_reference_passes(cell, cand, dtype):
    """The Numba backend's fused forward and backward, on parts of the rows, against the numpy
    reference's three passes: 37 units (two full vectors of 16 and a partial one), a ragged batch,
    and pre-activations that saturate the gates (both of minLSTM's gates far below zero)."""
    from fastrnn.kernels import minimal

    T, B, H = 60, 5, 37
    G = 2 if cell == "mingru" else 3
    rng = np.random.RandomState(11)
    xp = rng.randn(T, B, G * H) * 3.0
    xp[4, 0] = -2000.0
    xp[5, 1, :H] = 300.0
    xp[6, 2, H:2 * H] = -300.0
    bs = np.array([5] * 20 + [4] * 15 + [2] * 24 + [1], np.int64)
    h0, dy, dhn = rng.randn(B, H), rng.randn(T, B, H), rng.randn(B, H)
    for r in range(B):  # the driver's dy is zero past each length
        dy[bs <= r, r] = 0.0
    want = _fused_reference(cell, xp, bs, cand, h0, dy, dhn)
    cast = (lambda v: np.ascontiguousarray(v, dtype))
    hs = np.zeros((T + 1, B, H), dtype)
    hs[0] = h0
    dh, dxp = cast(dhn), np.full((T, B, G * H), np.nan, dtype)
    bias = rng.uniform(-1.0, 1.0, G * H)  # the kernels add it to the projections
    xw = cast(xp - bias)
    for lo, hi in ((0, 2), (2, 5)):
        getattr(minimal, cell + "_forward")(xw, cast(bias), bs, cand, hs, lo, hi)
        getattr(minimal, cell + "_backward")(xw, cast(bias), hs, cast(dy), bs, cand, dh, dxp, lo,
                                             hi)
    t = 1e-10 if np.dtype(dtype) == np.float64 else 1e-5
    for got, ref in zip((hs, dh, dxp), want):
        np.testing.assert_allclose(got, ref, rtol=t, atol=t * np.abs(ref).max())
    for r in range(B):  # a finished row carries its state
        n = int(np.sum(bs > r))
        assert np.all(hs[n + 1:, r] == hs[n, r]) and np.all(dxp[n:, r] == 0.0)


@pytest.mark.parametrize("name", ["mingru", "mingru-g", "minlstm", "minlstm-g"])
def test_threaded_fused_layer_matches_numpy(name, threads):
    """A float32 layer on two threads (rows of the batch for the fused kernels, ranges of the
    rows of the products) against the float64 numpy backend, both directions, ragged."""
    threads(2)
    B, T, H = 6, 150, 40
    assert _mincells.scan_plan(T, B, B * H) == ("lanes", 2)
    X = np.random.RandomState(4).randn(B, T, 3)
    L = np.array([150, 150, 149, 100, 37, 1])
    got = run(make(name, "numba", np.float32, H=H, bidirectional=True), X, L)
    ref = run(make(name, "numpy", np.float64, H=H, bidirectional=True), X, L)
    for a, b in [(got[1], ref[1]), (got[2], ref[2]), (got[3], ref[3]), (got[5], ref[5])] + [
            (got[4][k], ref[4][k]) for k in ref[4]]:
        assert rel_err(a, b) < 1e-5


# ---------------------------------------------------------------- backend parity
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("backend", COMPILED)
def test_compiled_backend_matches_numpy(name, shape, backend, dtype):
    check_parity(make(name, "numpy", dtype, **SHAPES[shape]),
                 make(name, backend, dtype, **SHAPES[shape]), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_minlstm_is_finite_where_both_gates_underflow(backend):
    layer = make("minlstm", backend, np.float64, n_in=1, H=1)
    layer.params["weight_ih_l0"][...] = [[1.0], [1.0], [0.0]]
    layer.params["bias_ih_l0"][...] = [0.0, 0.0, 2.0]
    X = np.full((1, 3, 1), -2000.0)  # sigmoid underflows to 0 for both gates
    Y, _ = layer.forward(X, h0=np.full((1, 1, 1), 4.0))
    # f / (f + i) = 1/2 exactly (equal pre-activations)
    np.testing.assert_allclose(Y[0, :, 0], [3.0, 2.5, 2.25])
    layer.backward(np.ones_like(Y))
    assert all(np.all(np.isfinite(g)) for g in layer.grads.values())


# ---------------------------------------------------------------- streaming
@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_streaming_step_equals_forward(name, backend, dtype):
    layer = make(name, backend, dtype, num_layers=2).eval()
    X = np.random.RandomState(3).randn(3, 7, 3)
    Y, hn = layer.forward(X)
    state = layer.init_state(3)
    assert state.backend in BACKENDS
    for t in range(7):
        y, _ = layer.step(X[:, t], state)
        np.testing.assert_allclose(y, Y[:, t], rtol=tol(dtype) * 10, atol=tol(dtype) * 10)
    np.testing.assert_allclose(state.h, hn, rtol=tol(dtype) * 10, atol=tol(dtype) * 10)
    with pytest.raises(ValueError, match="non-finite"):
        layer.step(np.full((3, 3), np.nan), state)


# ---------------------------------------------------------------- backends without kernels
def _without_cuda_kernels(monkeypatch):
    """Every backend has kernels for these cells: list the others only, as for a backend
    without them."""
    import fastrnn._backend as bk

    for kind in ("mingru", "minlstm", "indrnn"):
        monkeypatch.setitem(bk.CELL_BACKENDS, kind, ("numba", "cython", "numpy"))


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM, IndRNN])
def test_every_backend_takes_these_cells(cls):
    assert cls(3, 4, backend="cuda").backend == "cuda"


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM, IndRNN])
def test_a_backend_without_kernels_is_named_with_those_that_work(cls, monkeypatch):
    _without_cuda_kernels(monkeypatch)
    kind = cls.__name__.lower()
    with pytest.raises(ValueError, match=rf"backend 'cuda' has no kernels for the '{kind}' "
                                         r"cell.*'numba' or 'cython' or 'numpy'"):
        cls(3, 4, backend="cuda")


def test_forced_backend_without_kernels_names_the_variable(monkeypatch):
    _without_cuda_kernels(monkeypatch)
    layer = MinGRU(3, 4)
    monkeypatch.setenv("FASTRNN_BACKEND", "cuda")
    with pytest.raises(ValueError, match=r"'cuda' has no kernels for the 'mingru' cell "
                                         r"\(FASTRNN_BACKEND='cuda'.*unset FASTRNN_BACKEND"):
        layer.forward(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="FASTRNN_BACKEND"):
        layer.init_state(1)


def test_auto_never_routes_these_cells_to_a_backend_without_kernels(monkeypatch):
    import fastrnn._backend as bk

    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    monkeypatch.setattr(bk, "has_backend", lambda name: True)  # as if every backend were built
    for call in ("step", "infer1"):
        for kind in ("lstm", "mingru", "minlstm", "indrnn"):
            assert route("auto", call, kind) == bk.AUTO_ROUTES[call]
    # a routed backend without kernels for the cell is passed over
    monkeypatch.setitem(bk.CELL_BACKENDS, "mingru", ("numba", "numpy"))
    for call in ("step", "infer1"):
        assert route("auto", call, "mingru") == bk.DEFAULT
        assert route("auto", call, "minlstm") == bk.AUTO_ROUTES[call]


# ---------------------------------------------------------------- parameters and arguments
def test_param_names_shapes_and_state_dict():
    g = MinGRU(5, 7, num_layers=2, bidirectional=True, random_state=0)
    assert sorted(g.params) == sorted(f"{w}_l{k}{d}" for w in ("weight_ih", "bias_ih")
                                      for k in range(2) for d in ("", "_reverse"))
    assert g.params["weight_ih_l0"].shape == (14, 5)
    assert g.params["weight_ih_l1_reverse"].shape == (14, 14)
    assert MinLSTM(5, 7, random_state=0).params["bias_ih_l0"].shape == (21,)
    ind = IndRNN(5, 7, random_state=0, dtype=np.float64)
    assert list(ind.params) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert [v.shape for v in ind.params.values()] == [(7, 5), (7,), (7,), (7,)]
    assert np.all((ind.params["weight_hh_l0"] >= 0) & (ind.params["weight_hh_l0"] < 1))
    other = IndRNN(5, 7, random_state=1, dtype=np.float64)
    other.load_state_dict(ind.state_dict())
    X = np.random.RandomState(0).randn(2, 4, 5)
    np.testing.assert_array_equal(other.forward(X)[0], ind.forward(X)[0])


def test_indrnn_keeps_u_inside_recurrent_max_after_every_update():
    from fastrnn.nn import SequenceNetwork
    from fastrnn.nn.seq2seq import Seq2SeqNetwork
    from fastrnn.train import Trainer

    ind = IndRNN(3, 5, num_layers=2, bidirectional=True, recurrent_max=0.5, dtype=np.float64,
                 random_state=0)
    bounds = ind.constraints()
    assert sorted(bounds) == sorted(f"weight_hh_l{k}{d}" for k in range(2)
                                    for d in ("", "_reverse"))
    assert set(bounds.values()) == {0.5}
    ind.params["weight_hh_l1"][:] = [-2.0, -0.5, 0.1, 0.5, 3.0]
    before = {k: v.copy() for k, v in ind.params.items()}
    ind.constrain()
    np.testing.assert_array_equal(ind.params["weight_hh_l1"], [-0.5, -0.5, 0.1, 0.5, 0.5])
    for k, v in before.items():  # only the bounded parameters move, and only past the bound
        if k != "weight_hh_l1":
            np.testing.assert_array_equal(ind.params[k], np.clip(v, -0.5, 0.5)
                                          if k.startswith("weight_hh") else v)
    assert IndRNN(3, 5, recurrent_max=None).constraints() == {}
    assert LSTM(3, 5).constraints() == {} and MinGRU(3, 5).constraints() == {}
    # the trainer clips after its update: a large learning rate pushes u past the bound
    net = SequenceNetwork(2, n_features=3, cell="indrnn", hidden_size=5, dtype=np.float64,
                          cell_options=dict(recurrent_max=0.7), random_state=0)
    assert net.constraints() == {"rnn.weight_hh_l0": 0.7}
    trainer = Trainer(net, optimizer="sgd", learning_rate=50.0, clip_norm=None,
                      divergence_factor=None)
    X = np.random.RandomState(0).randn(4, 6, 3)

    def loss_fn(out):  # pushes every output, so every u, up
        return float(-out.sum()), -np.ones_like(out)
    trainer.step(X, [6] * 4, loss_fn)
    u = net.params["rnn.weight_hh_l0"]
    assert np.all(np.abs(u) <= 0.7) and np.any(u == 0.7)
    s2s = Seq2SeqNetwork(n_features=2, n_outputs=4, cell="indrnn", hidden_size=3,
                         random_state=0)
    assert sorted(s2s.constraints()) == ["decoder.weight_hh_l0", "encoder.weight_hh_l0"]


@pytest.mark.parametrize("call, match", [
    (lambda: MinGRU(3, 4, recurrent_dropout=0.2), "no recurrent weight.*recurrent_dropout=0.2"),
    (lambda: MinLSTM(3, 4, init="irnn"), "init='irnn'.*MinLSTM has none"),
    (lambda: MinGRU(3, 4, candidate="log"), "candidate must be 'identity' or 'g', got 'log'"),
    (lambda: IndRNN(3, 4, nonlinearity="sigmoid"), "nonlinearity must be 'relu' or 'tanh'"),
    (lambda: IndRNN(3, 4, recurrent_max=0), "recurrent_max must be a positive number.*got 0"),
    (lambda: IndRNN(3, 4, recurrent_max=np.inf), "recurrent_max must be a positive.*got inf"),
    (lambda: IndRNN(3, 4, recurrent_max="1"), "recurrent_max must be a positive.*got '1'"),
    (lambda: MinGRU(3, 4).forward(np.zeros((2, 3, 3)), h0=np.zeros((1, 3, 4))),
     "h0 must have shape"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_lstm_unchanged_by_the_new_routes():
    assert route("numpy", None, "lstm") == "numpy"
    assert LSTM(3, 4, backend="numpy")._spec.cand is False


@pytest.mark.parametrize("shape", [dict(), dict(num_layers=2, bidirectional=True, dropout=0.3)],
                         ids=["single", "stacked-bidir-dropout"])
@pytest.mark.parametrize("B, T", [(1, 1), (3, 4), (2, 1100)])
@pytest.mark.parametrize("name", ["mingru", "minlstm", "indrnn-relu"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_unpadded_call_matches_the_padded_path_bit_for_bit(name, B, T, shape, backend, dtype):
    """A call without lengths (no sorting, no masks) against the padded path: one more step
    holding NaN, every length T."""
    X = np.random.RandomState(2).randn(B, T, 3).astype(dtype)
    got = run(make(name, backend, dtype, **shape), X, None)
    Xp = np.concatenate([X, np.full((B, 1, 3), np.nan, dtype)], axis=1)
    R = np.concatenate([got[6], np.zeros((B, 1, got[6].shape[2]))], axis=1)
    ref = run(make(name, backend, dtype, **shape), Xp, np.full(B, T), R=R, S=got[7])
    np.testing.assert_array_equal(got[1], ref[1][:, :T])
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_array_equal(got[3], ref[3][:, :T])
    np.testing.assert_array_equal(got[5], ref[5])
    for k in ref[4]:
        np.testing.assert_array_equal(got[4][k], ref[4][k])


@pytest.mark.parametrize("call, match", [
    (lambda k, a, hs: k.scan_range(a, a, hs[:-1], 0, 3, 0, 4),
     r"scan_range: hs must have shape \(4, 4\), got \(3, 4\)"),
    (lambda k, a, hs: k.scan_range(a, a, hs.astype(np.float32), 0, 3, 0, 4),
     r"scan_range: hs must have the dtype of a \(float64\)"),
    (lambda k, a, hs: k.scan_range(a, a, hs, 0, 5, 0, 4),
     r"scan_range: \(t0, t1\) = \(0, 5\) must satisfy 0 <= start <= stop <= 3"),
    (lambda k, a, hs: k.scan_local(a, a, hs, np.zeros(4), 2, 2),
     r"scan_local: \(t0, t1\) = \(2, 2\) must satisfy 0 <= start < stop"),
    (lambda k, a, hs: k.mingru_gates(np.zeros((3, 1, 4)), np.full(3, 1), False,
                                     a.reshape(3, 1, 4), a.reshape(3, 1, 4), 0, 3),
     r"mingru_gates: xp must have shape \(3, 1, 8\)"),
    (lambda k, a, hs: k.indrnn_forward(np.zeros((3, 2, 2)), np.zeros((2, 2)),
                                       np.array([2, 3, 1]), True, np.zeros((4, 2, 2)), 0, 2),
     r"indrnn_forward: batch_sizes\[1\] = 3 is outside \[0, 2\]"),
])
def test_cython_kernels_name_a_bad_argument(call, match):
    if "cython" not in BACKENDS:
        pytest.skip("the Cython extension is not built (make test builds it)")
    with pytest.raises(ValueError, match=match):
        call(get_backend("cython"), np.zeros((3, 4)), np.zeros((4, 4)))


def test_cython_inference_and_steps_of_the_new_cells_load_no_numba():
    """Where backend='auto' sends inference on one sequence and streaming steps (the Cython
    backend, when built), these cells run without importing Numba, as the others do."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    if "cython" not in BACKENDS:
        pytest.skip("the Cython extension is not built (make test builds it)")
    code = (
        "import sys, numpy as np\n"
        "from fastrnn.nn import MinGRU, MinLSTM, IndRNN\n"
        "for cls in (MinGRU, MinLSTM, IndRNN):\n"
        "    layer = cls(3, 4, num_layers=2, random_state=0).eval()\n"
        "    layer.forward(np.ones((1, 5, 3)))\n"
        "    state = layer.init_state(1)\n"
        "    layer.step(np.ones((1, 3)), state)\n"
        "    print(layer.last_backend_, state.backend, 'numba' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "FASTRNN_BACKEND": ""})
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["cython", "cython", "False"] * 3
