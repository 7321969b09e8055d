"""The fast float32 path of the Numba backend: vector activations, the SIMD matrix multiply, the
work splitting, the fused kernels against the numpy reference (several threads, uneven lengths, NaN
in the padding), and the eight shared Numba kernels, which float32 layers no longer reach."""

import numpy as np
import pytest

import fastrnn._config as cfg
from fastrnn.nn import GRU, LSTM, RNN

numba = pytest.importorskip("numba")

from fastrnn.kernels import _fastpath as fp  # noqa: E402
from fastrnn.kernels._gemm import (KC, KC_LONG, gemm, gemm_pack, long_kc,  # noqa: E402
                                   pack_b, pack_bt, packed_size)
from fastrnn._parallel import run_parts  # noqa: E402
from fastrnn.kernels._simd import vload_n, vstore_n  # noqa: E402
from fastrnn.kernels._vmath import vsigmoid, vtanh  # noqa: E402


def _ran_fast(layer):
    """Whether the layer's last forward ran on the Numba backend's fast driver."""
    name, _, ctx, _ = layer._cache
    return name == "numba" and ctx[0] == "fast"


def _ctx(layer):
    """The fast driver's record of the layer's last forward."""
    assert _ran_fast(layer)
    return layer._cache[2][1]


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else np.linalg.norm(a - b) / den


# ---------------------------------------------------------------- vector activations
@numba.njit
def _apply(x, out, which):
    for i in range(0, x.size, 16):
        m = min(16, x.size - i)
        v = vload_n(x, i, m)
        vstore_n(out, i, vtanh(v) if which == 0 else vsigmoid(v), m)


def test_vector_tanh_and_sigmoid_accuracy():
    x = np.concatenate([np.linspace(-20, 20, 200_001), np.logspace(-30, 1, 1000),
                        -np.logspace(-30, 1, 1000)]).astype(np.float32)
    out = np.empty_like(x)
    _apply(x, out, 0)
    ref = np.tanh(x.astype(np.float64))
    assert np.max(np.abs(out - ref) / np.maximum(np.abs(ref), 1e-30)) < 5e-7
    assert np.max(np.abs(out)) <= 1.0
    _apply(x, out, 1)
    ref = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    assert np.max(np.abs(out - ref)) < 3e-7
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_vector_activations_keep_nan_and_saturate_inf():
    # 7 lanes: a masked tail
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 3.0], np.float32)
    out = np.full_like(x, 7.0)
    _apply(x, out, 0)
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0
    assert out[3] == 0.0 and np.signbit(out[4])
    np.testing.assert_allclose(out[6], np.tanh(3.0), rtol=5e-7)
    _apply(x, out, 1)
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == 0.0 and out[3] == 0.5


# ---------------------------------------------------------------- matrix multiply
def _rows(n, stride):
    return np.arange(n, dtype=np.int64) * stride


@pytest.mark.parametrize("M, N, K", [(1, 1, 1), (7, 33, 5), (8, 32, KC), (13, 70, KC + 44),
                                     (40, 1024, 256), (3, 5, 3 * KC + 1), (9, 40, 2 * KC_LONG + 3)])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_matches_numpy(M, N, K, trans_a, accumulate):
    rng = np.random.default_rng(M * 1000 + N + K)
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    C0 = rng.standard_normal((M, N + 3)).astype(np.float32)  # a wider C: only N columns are written
    Bp = np.empty(packed_size(K, N), np.float32)
    pack_b(B.ravel(), _rows(K, N), 0, 1, K, N, KC, Bp)
    C = C0.copy()
    a_rows, a_cs = (_rows(M, 1), M) if trans_a else (_rows(M, K), 1)
    gemm(M, N, K, A.ravel(), a_rows, 0, a_cs, Bp, KC, C.ravel(), _rows(M, N + 3), 0, accumulate)
    ref = (A.T if trans_a else A).astype(np.float64) @ B + (C0[:, :N] if accumulate else 0)
    np.testing.assert_allclose(C[:, :N], ref, rtol=1e-4, atol=1e-4 * np.sqrt(K))
    np.testing.assert_array_equal(C[:, N:], C0[:, N:])
    # the same product with B packed block by block (blocks of long_kc(K))
    C2 = C0.copy()
    buf = np.empty(KC_LONG * (N + 32), np.float32)
    gemm_pack(M, N, K, A.ravel(), a_rows, 0, a_cs, B.ravel(), _rows(K, N), 0, 1, C2.ravel(),
              _rows(M, N + 3), 0, accumulate, buf)
    np.testing.assert_allclose(C2[:, :N], ref, rtol=1e-4, atol=1e-4 * np.sqrt(K))
    np.testing.assert_array_equal(C2[:, N:], C0[:, N:])
    if K <= KC:  # one block either way: the same sums
        np.testing.assert_array_equal(C2, C)
    # and B packed once in blocks of long_kc(K) (the input gradient's product): the same sums
    kc = long_kc(K)
    pack_b(B.ravel(), _rows(K, N), 0, 1, K, N, kc, Bp)
    C3 = C0.copy()
    gemm(M, N, K, A.ravel(), a_rows, 0, a_cs, Bp, kc, C3.ravel(), _rows(M, N + 3), 0, accumulate)
    np.testing.assert_array_equal(C3, C2)


@pytest.mark.parametrize("K", [1, 2, 255, 1024, 1025, 2048, 2049, 3200, 10000])
def test_long_blocks_are_few_and_even(K):
    kc = long_kc(K)
    n = -(-K // kc)  # blocks
    assert kc <= KC_LONG and n == -(-K // KC_LONG)  # as few blocks as blocks of KC_LONG allow
    assert K - (n - 1) * kc > 0 and kc - (K - (n - 1) * kc) < n  # the last one is not much shorter


def test_gemm_row_tables_gather_and_scatter():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((50, 9)).astype(np.float32)
    B = rng.standard_normal((9, 40)).astype(np.float32)
    pick = np.array([4, 0, 49, 7, 7, 30, 12, 1, 2, 45, 3], np.int64)
    dest = np.array([10, 2, 5, 0, 1, 3, 4, 6, 7, 8, 9], np.int64)
    Bp = np.empty(packed_size(9, 40), np.float32)
    pack_b(B.ravel(), _rows(9, 40), 0, 1, 9, 40, KC, Bp)
    C = np.zeros((11, 40), np.float32)
    gemm(11, 40, 9, A.ravel(), pick * 9, 0, 1, Bp, KC, C.ravel(), dest * 40, 0, False)
    ref = np.zeros((11, 40))
    ref[dest] = A[pick].astype(np.float64) @ B
    np.testing.assert_allclose(C, ref, rtol=1e-5, atol=1e-5)


def test_pack_zero_rows_and_transposed_pack():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((37, 300)).astype(np.float32)  # (N, K): pack W^T
    a = np.empty(packed_size(300, 37), np.float32)
    b = np.empty_like(a)
    pack_bt(W.ravel(), 300, 300, 37, KC, a)
    pack_b(np.ascontiguousarray(W.T).ravel(), _rows(300, 37), 0, 1, 300, 37, KC, b)
    np.testing.assert_array_equal(a, b)
    pack_b(W.ravel(), _rows(300, 1), 0, 300, 300, 37, KC, b)  # column-strided source
    np.testing.assert_array_equal(a, b)
    # a negative row offset packs zeros, whatever the source holds (NaN in padded steps)
    src = np.full((3, 5), np.nan, np.float32)
    src[1] = 2.0
    p = np.empty(packed_size(3, 5), np.float32)
    pack_b(src.ravel(), np.array([-1, 5, -1], np.int64), 0, 1, 3, 5, KC, p)
    assert np.all(p.reshape(3, 32)[[0, 2]] == 0) and np.all(p.reshape(3, 32)[1, :5] == 2.0)
    assert np.all(p.reshape(3, 32)[:, 5:] == 0)


# ---------------------------------------------------------------- work splitting
def test_split_rows_and_ranges():
    assert fp.split_rows(np.full(32, 100), 2, 8) == [(0, 16), (16, 32)]
    assert fp.split_rows(np.full(12, 5), 2, 8) == [(0, 12)]
    for L in (np.sort(np.random.default_rng(0).integers(1, 50, 45))[::-1], np.full(3, 4)):
        for parts in (1, 2, 3, 5):
            sp = fp.split_rows(L, parts, 1)
            assert sp[0][0] == 0 and sp[-1][1] == len(L)
            assert all(a < b for a, b in sp)
            assert all(sp[i][1] == sp[i + 1][0] for i in range(len(sp) - 1))
    assert fp.split_range(1024, 2) == [(0, 512), (512, 1024)]
    assert fp.split_range(12, 4) == [(0, 0), (0, 8), (8, 8), (8, 12)]


def test_run_parts_runs_every_part_and_reraises():
    out = np.zeros(4)

    def part(i):
        out[i] = i + 1
        if i == 2:
            raise RuntimeError("part 2 failed")
        return i

    with pytest.raises(RuntimeError, match="part 2"):
        run_parts(part, [(i,) for i in range(4)])
    np.testing.assert_array_equal(out, [1, 2, 3, 4])
    assert run_parts(lambda i: i * i, [(i,) for i in range(3)]) == [0, 1, 4]


def test_num_threads_setting(monkeypatch):
    monkeypatch.setattr(cfg, "_num_threads", None)
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "3")
    assert cfg.num_threads() == 3
    cfg.set_num_threads(1)
    assert cfg.num_threads() == 1
    cfg.set_num_threads(None)
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "x")
    with pytest.raises(ValueError, match="FASTRNN_NUM_THREADS"):
        cfg.num_threads()
    with pytest.raises(ValueError, match="positive integer"):
        cfg.set_num_threads(0)


@pytest.mark.parametrize("omp, expected", [("1", 1), ("1,4", 1), ("64", 2), ("0", 2), ("", 2),
                                           ("many", 2)])
def test_num_threads_follows_omp_num_threads_below_numba_threads(monkeypatch, omp, expected):
    # conftest runs the suite with NUMBA_NUM_THREADS=2; a pool's OMP_NUM_THREADS may only lower it
    monkeypatch.setattr(cfg, "_num_threads", None)
    monkeypatch.delenv("FASTRNN_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert cfg.num_threads() == expected
    monkeypatch.setenv("FASTRNN_NUM_THREADS", "2")  # an explicit setting wins
    assert cfg.num_threads() == 2


# ---------------------------------------------------------------- fused kernels, layer level
CASES = {
    "rnn-tanh": (RNN, {}),
    "rnn-relu": (RNN, dict(nonlinearity="relu")),
    "lstm": (LSTM, {}),
    "lstm-peephole": (LSTM, dict(peephole=True)),
    "lstm-no-forget": (LSTM, dict(forget_gate=False)),
    "lstm-no-input-output": (LSTM, dict(input_gate=False, output_gate=False, peephole=True)),
    "gru": (GRU, {}),
    "gru-v1": (GRU, dict(reset_after=False)),
}
SHAPES = {
    "single": {},
    "stacked-bidir": dict(num_layers=2, bidirectional=True),
    "dropouts": dict(num_layers=2, dropout=0.3, recurrent_dropout=0.4),
}


@pytest.fixture
def two_parts(monkeypatch):
    """Split even small batches over two threads, so the multi-part code runs."""
    monkeypatch.setattr(cfg, "MIN_ROWS_PER_THREAD", 2)
    monkeypatch.setattr(cfg, "_num_threads", 2)


def _make(name, backend, seed=0, F=5, H=21, **kw):
    cls, extra = CASES[name]
    layer = cls(F, H, dtype=np.float32, backend=backend, random_state=seed, **extra, **kw)
    rng = np.random.RandomState(seed + 1)
    for k, v in layer.params.items():
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


def _run(layer, X, L, h0, R, S):
    Y, hn = layer.forward(X, L, h0)
    dX = layer.backward(R, S)
    return Y, hn, dX, {k: v.copy() for k, v in layer.grads.items()}, layer.grad_h0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CASES)
def test_fast_path_matches_numpy_reference(name, shape, two_parts):
    rng = np.random.RandomState(11)
    B, T, I, H = 19, 9, 5, 21
    L = rng.randint(1, T + 1, B)
    L[3] = T
    X = rng.randn(B, T, I).astype(np.float32)
    for b in range(B):  # padding may hold anything
        X[b, L[b]:] = np.nan if b % 2 else 1e30
    fast = _make(name, "numba", **SHAPES[shape])
    ref = _make(name, "numpy", **SHAPES[shape])
    n = fast.num_layers * fast.num_directions
    h0 = 0.5 * rng.randn(n, B, H)
    S = rng.randn(n, B, H)
    if fast.has_cell:
        h0, S = (h0, 0.5 * rng.randn(n, B, H)), (S, rng.randn(n, B, H))
    R = rng.randn(B, T, fast.num_directions * H)
    got = _run(fast, X, L, h0, R, S)
    want = _run(ref, X, L, h0, R, S)
    assert _ran_fast(fast) and len(_ctx(fast)["parts"]) == 2
    assert not _ran_fast(ref)
    Y = got[0]
    assert Y.dtype == np.float32 and got[2].dtype == np.float32
    for b in range(B):
        assert np.all(Y[b, L[b]:] == 0) and np.all(got[2][b, L[b]:] == 0)
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(got[2]))
    pairs = [(got[0], want[0]), (got[2], want[2])]
    for i in (1, 4):  # final states and initial-state gradients (pairs for an LSTM)
        pairs += list(zip(*((r[i],) if not fast.has_cell else r[i] for r in (got, want))))
    pairs += [(got[3][k], want[3][k]) for k in want[3]]
    for a, b in pairs:
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn-tanh"])
def test_fast_path_split_does_not_change_results(name, monkeypatch):
    """One thread or three: every row is computed by the same code in the same order."""
    rng = np.random.RandomState(2)
    X = rng.randn(40, 7, 5).astype(np.float32)
    L = rng.randint(1, 8, 40)
    R = rng.randn(40, 7, 42)
    outs = []
    for threads in (1, 3):
        monkeypatch.setattr(cfg, "_num_threads", threads)
        layer = _make(name, "numba", bidirectional=True)
        Y, _ = layer.forward(X, L)
        dX = layer.backward(R)
        outs.append((Y, dX, layer.grads["weight_hh_l0"].copy(), len(_ctx(layer)["parts"])))
    assert outs[0][3] == 1 and outs[1][3] == 3
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_allclose(outs[0][2], outs[1][2], rtol=1e-6, atol=1e-6)


def test_fast_path_can_be_switched_off(monkeypatch):
    layer = _make("lstm", "numba")
    X = np.ones((3, 4, 5), np.float32)
    layer.forward(X)
    assert _ran_fast(layer)
    monkeypatch.setenv("FASTRNN_FAST_PATH", "0")
    Y, _ = layer.forward(X)
    assert not _ran_fast(layer)
    layer64 = LSTM(5, 21, dtype=np.float64, backend="numba")
    monkeypatch.delenv("FASTRNN_FAST_PATH")
    layer64.forward(X)
    assert not _ran_fast(layer64)


def test_fast_path_propagates_nan_from_weights():
    """Divergence must stay visible: a NaN weight gives NaN outputs and gradients."""
    layer = _make("lstm", "numba")
    layer.params["weight_hh_l0"][0, 0] = np.nan
    Y, _ = layer.forward(np.ones((2, 3, 5), np.float32))
    assert np.isnan(Y).any()
    layer.backward(np.ones_like(Y))
    assert np.isnan(layer.grads["weight_hh_l0"]).any()


# ---------------------------------------------------------------- the shared Numba kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", CASES)
def test_shared_numba_kernels_match_numpy(name, dtype, monkeypatch):
    """With the fast path off, float32 layers run the eight shared kernels; check them too."""
    monkeypatch.setenv("FASTRNN_FAST_PATH", "0")
    rng = np.random.RandomState(5)
    X = rng.randn(6, 5, 4)
    L = np.array([5, 2, 5, 1, 3, 4])
    R = rng.randn(6, 5, 2 * 3)
    res = []
    for backend in ("numba", "numpy"):
        cls, extra = CASES[name]
        layer = cls(4, 3, dtype=dtype, backend=backend, random_state=1, bidirectional=True,
                    recurrent_dropout=0.3, **extra)
        Y, _ = layer.forward(X, L)
        dX = layer.backward(R)
        assert not _ran_fast(layer)
        res.append((Y, dX, {k: v.copy() for k, v in layer.grads.items()}))
    t = 1e-5 if dtype == np.float32 else 1e-10
    assert rel_err(res[0][0], res[1][0]) < t and rel_err(res[0][1], res[1][1]) < t
    for k in res[1][2]:
        assert rel_err(res[0][2][k], res[1][2][k]) < t, k


@pytest.mark.parametrize("name", ["lstm", "gru-v1", "rnn-relu"])
def test_fast_path_extra_padded_steps_and_input_reuse(name, two_parts):
    """Steps past the longest sequence change nothing; overwriting X between forward and backward
    does not change the gradients (the layer keeps its own copy)."""
    rng = np.random.RandomState(8)
    X = rng.randn(10, 6, 5).astype(np.float32)
    L = rng.randint(1, 7, 10)
    R = rng.randn(10, 6, 21)
    layer = _make(name, "numba", bidirectional=True)
    Y, _ = layer.forward(X, L)
    dX = layer.backward(np.concatenate([R, R], axis=2))
    g = layer.grads["weight_ih_l0"].copy()
    Xe = np.concatenate([X, np.full((10, 3, 5), np.nan, np.float32)], axis=1)
    Re = np.concatenate([R, R], axis=2)
    Re = np.concatenate([Re, np.ones((10, 3, 42))], axis=1)
    Ye, _ = layer.forward(Xe, L)
    Xe[:] = 7.0  # the caller reuses its buffer before the backward
    dXe = layer.backward(Re)
    np.testing.assert_array_equal(Ye[:, :6], Y)
    assert np.all(Ye[:, 6:] == 0) and np.all(dXe[:, 6:] == 0)
    np.testing.assert_array_equal(dXe[:, :6], dX)
    np.testing.assert_array_equal(layer.grads["weight_ih_l0"], g)
