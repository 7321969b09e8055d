"""Mixed-precision training (``precision="bf16"``): the C bf16 product of every kernel level
against a naive numpy twin, the RNN, LSTM and GRU layers against a numpy twin that rounds the same
operands (tight) and against the float32 layers (bf16's tolerance), the API, and the estimators.

The twins are written from the definition: an operand of the input projection, of the recurrent
products of every step (``W_hh h_{t-1}`` forward, ``W_hh^T dg_t`` backward), of the weight
gradients or of the input gradient is rounded from float32 to bfloat16 (to nearest, ties to
even), the rounded values are multiplied in float64; everything else is float64 arithmetic on the
float32 values.
"""

import os

import numpy as np
import pytest
from sklearn.base import clone

from fastrnn._backend import available_backends
from fastrnn.datasets import make_sequence_classification
from fastrnn.estimators import RNNClassifier, RNNRegressor
from fastrnn.nn import GRU, LSTM, RNN, IndRNN, MinGRU

CY_OK, CY_WHY = available_backends()["cython"]
REQUIRE = os.environ.get("FASTRNN_REQUIRE_CYTHON", "").strip().lower() in ("1", "true", "yes", "on")
pytestmark = pytest.mark.skipif(not CY_OK and not REQUIRE,
                                reason=f"the cython backend is not built here: {CY_WHY}")

if CY_OK:
    from fastrnn._cy import _bf16

    LEVELS = ["avx512", "generic"] if _bf16.supported() else ["generic"]
else:
    LEVELS = ["generic"]

#: the bf16 tolerance against float32: relative error of the whole array (Frobenius norms); bf16
#: keeps 8 significant bits (relative rounding error up to 2**-9 per operand). It holds for one
#: layer: the rounding errors of every step's recurrent product add up through time, and those of
#: stacked layers add up again (see :func:`bf16_rtol`)
BF16_RTOL = 1e-2


def bf16_rtol(num_layers):
    """The bf16 tolerance of a stack: independent errors of the layers add in quadrature.
    Measured on the problem of :func:`test_layer_is_float32_within_bf16_tolerance`: up to
    5.2e-3 with one layer, 8.9e-3 with two, 1.1e-2 with three (the tanh RNN; gated cells less)."""
    return BF16_RTOL * np.sqrt(num_layers)
#: against the twin, which rounds the same operands: float32 sums against float64 ones
TWIN_TOL = 2e-5


@pytest.fixture(params=LEVELS)
def level(request):
    before = _bf16.isa()
    assert _bf16.set_isa(request.param) == request.param
    yield request.param
    _bf16.set_isa(before)


# ------------------------------------------------------------------------------------ the twin
def bf(a):
    """float32 values of ``a`` rounded to bf16 (nearest, ties to even; NaN stays NaN), as
    float64."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    r = np.where((u & 0x7FFFFFFF) > 0x7F800000, (u >> 16) | 0x40, r)
    return (r.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def bf_bits(a):
    """The bf16 bit patterns of :func:`bf`."""
    return (bf(a).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)


def _product(A, B):
    return bf(A) @ bf(B)


# ------------------------------------------------------------------------------- the product
def _gemm(A, B, transposed_a=False, transposed_b=False, gaps=False, accumulate=None):
    """``A @ B`` through the kernel, with the operands stored as asked; returns C."""
    M, K = A.shape
    N = B.shape[1]
    if transposed_a:  # A stored as A^T (K x M): row i starts at i, columns M apart
        a_store, a_rows, a_cs = np.ascontiguousarray(A.T).ravel(), np.arange(M), M
    else:
        a_store, a_rows, a_cs = A.ravel(), np.arange(M) * K, 1
    if transposed_b:
        b_store, b_rows, b_cs = np.ascontiguousarray(B.T).ravel(), np.arange(K), K
    else:
        b_store, b_rows, b_cs = B.ravel(), np.arange(K) * N, 1
    width = N + (3 if gaps else 0)  # rows of C further apart than N
    C = np.full((M, width), 5.0, np.float32) if accumulate is None else accumulate.copy()
    Bp = _bf16.pack_b(b_store.astype(np.float32), b_rows.astype(np.int64), b_cs, N)
    _bf16.gemm(a_store.astype(np.float32), a_rows.astype(np.int64), a_cs, K, Bp, N, C.ravel(),
               np.arange(M, dtype=np.int64) * width, accumulate is not None)
    return C


def _bound(A, B):
    """Float32 summation error bound of the twin's products: K * eps * (|A| |B|)."""
    return A.shape[1] * 2.0 ** -23 * (np.abs(bf(A)) @ np.abs(bf(B))) + 1e-30


SHAPES = [(1, 1, 1), (1, 1, 2), (3, 5, 1), (8, 32, 2), (7, 33, 3), (9, 31, 17), (16, 64, 255),
          (17, 65, 513), (130, 40, 257), (5, 100, 1000), (10, 40, 2049), (3, 33, 4100)]


@pytest.mark.parametrize("M, N, K", SHAPES)
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_product_matches_the_twin(level, M, N, K, ta, tb):
    rng = np.random.default_rng(M * 1000 + N + K)
    A = rng.normal(size=(M, K)).astype(np.float32)
    B = rng.normal(size=(K, N)).astype(np.float32)
    C = _gemm(A, B, ta, tb, gaps=True)
    assert np.all(np.abs(C[:, :N] - _product(A, B)) <= _bound(A, B))
    assert np.all(C[:, N:] == 5.0)  # nothing written past N


@pytest.mark.parametrize("M, N, K", [(3, 5, 1), (9, 31, 17), (17, 65, 513)])
def test_product_accumulates(level, M, N, K):
    rng = np.random.default_rng(1)
    A = rng.normal(size=(M, K)).astype(np.float32)
    B = rng.normal(size=(K, N)).astype(np.float32)
    C0 = rng.normal(size=(M, N)).astype(np.float32)
    C = _gemm(A, B, accumulate=C0)
    assert np.all(np.abs(C - (C0 + _product(A, B))) <= _bound(A, B) + 1e-6 * np.abs(C0))


def test_levels_agree_up_to_summation_order():
    if len(LEVELS) < 2:
        pytest.skip("this CPU has no AVX-512 BF16: only the portable kernel runs")
    rng = np.random.default_rng(2)
    A = rng.normal(size=(37, 300)).astype(np.float32)
    B = rng.normal(size=(300, 70)).astype(np.float32)
    before = _bf16.isa()
    try:
        out = {}
        for name in LEVELS:
            _bf16.set_isa(name)
            out[name] = _gemm(A, B)
    finally:
        _bf16.set_isa(before)
    assert np.all(np.abs(out["avx512"] - out["generic"]) <= _bound(A, B))


def test_gathered_rows_and_missing_rows(level):
    """Row tables: rows of A and B read from anywhere, ``-1`` a row of zeros (A, B) or a row of C
    left alone."""
    rng = np.random.default_rng(3)
    a_store = rng.normal(size=(20, 7)).astype(np.float32)  # rows of K = 7
    b_store = rng.normal(size=(30, 6)).astype(np.float32)  # rows of N = 6
    a_rows = np.array([18, -1, 0, 7, 7, 3, -1, 11, 2], np.int64)
    b_rows = np.array([5, -1, 29, 1, 19, 12, -1], np.int64)
    A = np.where(a_rows[:, None] >= 0, a_store[np.maximum(a_rows, 0)], 0.0).astype(np.float32)
    Bm = np.where(b_rows[:, None] >= 0, b_store[np.maximum(b_rows, 0)], 0.0).astype(np.float32)
    Bp = _bf16.pack_b(b_store.ravel(), np.where(b_rows >= 0, b_rows * 6, -1), 1, 6)
    c_rows = np.array([0, 6, -1, 18, 24, 30, 36, -1, 48], np.int64)
    C = np.full(60, 9.0, np.float32)
    _bf16.gemm(a_store.ravel(), np.where(a_rows >= 0, a_rows * 7, -1), 1, 7, Bp, 6, C, c_rows,
               False)
    want = _product(A, Bm)
    bound = _bound(A, Bm)
    written = np.zeros(60, bool)
    for i, r in enumerate(c_rows):
        if r >= 0:
            assert np.all(np.abs(C[r:r + 6] - want[i]) <= bound[i])
            written[r:r + 6] = True
    assert np.all(C[~written] == 9.0)


def test_transposed_operand_with_gathered_rows(level):
    """Rows of a transposed A that are not consecutive (packed element by element) and rows that
    are (packed with vectors at the AVX-512 level) in one product."""
    rng = np.random.default_rng(9)
    K, W, N = 37, 29, 45
    store = rng.normal(size=(K, W)).astype(np.float32)  # A^T: row i of A is column i of store
    a_rows = np.array([3, 4, 5, 6, 7, 8, 9, 10, 20, 2, 28, 0, 1, 17, 16, 15, 14, 13, 12], np.int64)
    A = store[:, a_rows].T.copy()
    Bm = rng.normal(size=(K, N)).astype(np.float32)
    Bp = _bf16.pack_b(Bm.ravel(), np.arange(K, dtype=np.int64) * N, 1, N)
    C = np.zeros((len(a_rows), N), np.float32)
    _bf16.gemm(store.ravel(), a_rows, W, K, Bp, N, C.ravel(),
               np.arange(len(a_rows), dtype=np.int64) * N, False)
    assert np.all(np.abs(C - _product(A, Bm)) <= _bound(A, Bm))


def test_rounding_is_to_nearest_even():
    x = np.array([1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 1.0 + 2 ** -8 + 2 ** -20, -2.5, 0.0, -0.0,
                  np.inf, -np.inf, np.nan, 3.4e38, 1e-40, -1e-45, 65504.0], np.float32)
    got = _bf16.round_bf16(x)
    want = bf_bits(x)
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(got[finite], want[finite])
    # ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes to the even one (1);
    # 1 + 3 * 2^-8 goes up to 1 + 2^-6
    assert got[1] == 0x3F80 and got[2] == 0x3F82 and got[3] == 0x3F81
    assert got[10] == 0x7F80  # 3.4e38 rounds past the largest bf16: infinity
    nan = got[9]
    assert (nan & 0x7F80) == 0x7F80 and (nan & 0x7F) != 0  # still a NaN


def test_nan_propagates(level):
    A = np.ones((3, 4), np.float32)
    A[1, 2] = np.nan
    C = _gemm(A, np.ones((4, 5), np.float32))
    assert np.isnan(C[1, :5]).all() and np.isfinite(C[[0, 2], :5]).all()


def test_bad_arguments_are_named():
    Bp = _bf16.pack_b(np.ones(12, np.float32), np.arange(3, dtype=np.int64) * 4, 1, 4)
    A, C = np.ones(6, np.float32), np.zeros(8, np.float32)
    rows = np.arange(2, dtype=np.int64)
    with pytest.raises(ValueError, match="packed 2 x 4"):
        _bf16.gemm(A, rows * 3, 1, 2, Bp, 4, C, rows * 4, False)
    with pytest.raises(ValueError, match="gemm \\(A\\).*past the end"):
        _bf16.gemm(A, rows * 4, 1, 3, Bp, 4, C, rows * 4, False)
    with pytest.raises(ValueError, match="gemm \\(C\\).*past the end"):
        _bf16.gemm(A, rows * 3, 1, 3, Bp, 4, C, rows * 5, False)
    with pytest.raises(ValueError, match="same length"):
        _bf16.gemm(A, rows * 3, 1, 3, Bp, 4, C, rows[:1], False)
    with pytest.raises(ValueError, match="pack_b.*past the end"):
        _bf16.pack_b(np.ones(12, np.float32), np.arange(3, dtype=np.int64) * 5, 1, 4)
    with pytest.raises(ValueError, match="ISA must be one of"):
        _bf16.set_isa("sse")


# ------------------------------------------------------------ the sweeps' step product
def _step_product(A, B, bf16, a_off=3, gap=2, accumulate=None):
    """``A @ B`` through :func:`fastrnn.kernels._bf16step.step_gemm` as a sweep calls it: the rows
    of ``A`` gathered from a larger array (reversed, after ``a_off`` values), those of ``C``
    ``gap`` values apart; ``B`` packed in bf16 (uint16) or float32."""
    import numba

    from fastrnn.kernels._bf16 import kernels
    from fastrnn.kernels._bf16step import step_gemm
    from fastrnn.kernels._gemm import KC, pack_b, packed_size

    kernels()  # registers the C product for the compiled callers

    @numba.njit
    def run(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, acc):
        step_gemm(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, acc)

    M, K = A.shape
    N = B.shape[1]
    store = np.full(a_off + M * K, 7.0, np.float32)
    a_rows = (np.arange(M, dtype=np.int64)[::-1] * K).copy()
    store[a_off:] = A[::-1].ravel()
    brows = np.arange(K, dtype=np.int64) * N
    if bf16:
        Bp = _bf16.pack_b(B.ravel(), brows, 1, N)
    else:
        Bp = np.empty(packed_size(K, N), np.float32)
        pack_b(B.ravel(), brows, 0, 1, K, N, KC, Bp)
    C = np.full((M, N + gap), 5.0, np.float32)
    if accumulate is not None:
        C[:, :N] = accumulate
    run(M, N, K, store, a_rows, a_off, Bp, C.ravel(), np.arange(M, dtype=np.int64) * (N + gap),
        0, accumulate is not None)
    assert np.all(C[:, N:] == 5.0)  # nothing written past N
    return C[:, :N]


@pytest.mark.parametrize("M, N, K", [(1, 1, 1), (5, 20, 7), (16, 96, 24), (33, 130, 300),
                                     (70, 40, 1031)])
def test_step_product_matches_the_twin(level, M, N, K):
    rng = np.random.default_rng(M + N + K)
    A = rng.normal(size=(M, K)).astype(np.float32)
    B = rng.normal(size=(K, N)).astype(np.float32)
    C0 = rng.normal(size=(M, N)).astype(np.float32)
    assert np.all(np.abs(_step_product(A, B, True) - _product(A, B)) <= _bound(A, B))
    got = _step_product(A, B, True, accumulate=C0)
    assert np.all(np.abs(got - (C0 + _product(A, B))) <= _bound(A, B) + 1e-6 * np.abs(C0))


def test_step_product_in_float32_is_the_float32_product():
    """float32 packed weights: the sweeps' float32 product, not rounded."""
    rng = np.random.default_rng(12)
    A = rng.normal(size=(13, 40)).astype(np.float32)
    B = rng.normal(size=(40, 50)).astype(np.float32)
    want = A.astype(np.float64) @ B
    got = _step_product(A, B, False)
    assert np.abs(got - want).max() <= 40 * 2.0 ** -23 * (np.abs(A) @ np.abs(B)).max()
    assert np.abs(got - _product(A, B)).max() > 1e-3  # far from the bf16 product


def test_step_product_follows_the_level():
    """The sweeps' product is the kernel :func:`set_isa` chose: vdpbf16ps flushes a denormal
    operand to zero, the portable kernel multiplies it."""
    if len(LEVELS) < 2:
        pytest.skip("this CPU has no AVX-512 BF16: only the portable kernel runs")
    A = np.full((3, 2), 2.0 ** -130, np.float32)  # a denormal, exact in bf16
    B = np.ones((2, 4), np.float32)
    before = _bf16.isa()
    try:
        _bf16.set_isa("generic")
        np.testing.assert_array_equal(_step_product(A, B, True), 2.0 ** -129)
        _bf16.set_isa("avx512")
        np.testing.assert_array_equal(_step_product(A, B, True), 0.0)
    finally:
        _bf16.set_isa(before)


def test_isa_from_the_environment():
    """``FASTRNN_ISA=generic`` selects the portable kernel at import, for the sweeps too: a layer
    trains to the values of ``set_isa("generic")`` in this process."""
    import subprocess
    import sys

    code = ("import numpy as np; from fastrnn._cy import _bf16; from fastrnn.nn import GRU; "
            "print(_bf16.isa()); rng = np.random.default_rng(0); "
            "X = rng.normal(size=(6, 5, 4)).astype(np.float32); "
            "g = GRU(4, 8, precision='bf16', random_state=0); Y = g.forward(X)[0]; "
            "g.backward(np.ones_like(Y)); np.save('out.npy', np.concatenate("
            "[Y.ravel(), g.grads['weight_hh_l0'].ravel()]))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, FASTRNN_ISA="generic",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[-1] == "generic"
        got = np.load(os.path.join(tmp, "out.npy"))
    before = _bf16.isa()
    try:
        _bf16.set_isa("generic")
        rng = np.random.default_rng(0)
        X = rng.normal(size=(6, 5, 4)).astype(np.float32)
        g = GRU(4, 8, precision="bf16", random_state=0)
        Y = g.forward(X)[0]
        g.backward(np.ones_like(Y))
    finally:
        _bf16.set_isa(before)
    np.testing.assert_array_equal(got, np.concatenate([Y.ravel(), g.grads["weight_hh_l0"].ravel()]))


# -------------------------------------------------------------------------- the layers' twin
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _twin_unit(kind, p, sfx, x, dy):
    """Forward and backward of one direction over one sequence ``x`` (L, I) with output gradient
    ``dy`` (L, H), zero initial state and no gradient of the final state. Returns ``(y, dx,
    grads)`` with the gradients of weight_ih, weight_hh and the biases."""
    if kind == "gru":
        return _twin_gru(p, sfx, x, dy)
    if kind == "gru_v1":
        return _twin_gru_v1(p, sfx, x, dy)
    wih, whh = p["weight_ih" + sfx], p["weight_hh" + sfx]
    bias = p["bias_ih" + sfx].astype(np.float64) + p["bias_hh" + sfx]
    whb = bf(whh)  # the recurrent products' operands: bf16 values
    L, H = x.shape[0], whh.shape[1]
    P = _product(x, wih.T) + bias
    h, c = np.zeros(H), np.zeros(H)
    hs, cs, acts = [], [], []
    for t in range(L):
        hs.append(h)
        cs.append(c)
        a = P[t] + whb @ bf(h)
        if kind == "lstm":
            i, f, g, o = _sig(a[:H]), _sig(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), _sig(a[3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            acts.append((i, f, g, o, c))
        else:
            h = np.tanh(a)
            acts.append(h)
    y = np.empty((L, H))
    dgs = np.empty((L, whh.shape[0]))
    dh, dc = np.zeros(H), np.zeros(H)
    for t in range(L - 1, -1, -1):
        if kind == "lstm":
            i, f, g, o, ct = acts[t]
            y[t] = o * np.tanh(ct)
            dht = dy[t] + dh
            tc = np.tanh(ct)
            do = dht * tc * o * (1 - o)
            dct = dc + dht * o * (1 - tc * tc)
            di, df, dg = dct * g * i * (1 - i), dct * cs[t] * f * (1 - f), dct * i * (1 - g * g)
            dc = dct * f
            dgs[t] = np.concatenate([di, df, dg, do])
        else:
            y[t] = acts[t]
            dgs[t] = (dy[t] + dh) * (1 - acts[t] ** 2)
        dh = whb.T @ bf(dgs[t])
    grads = dict(weight_ih=_product(dgs.T, x), weight_hh=_product(dgs.T, np.array(hs)),
                 bias_ih=dgs.sum(axis=0), bias_hh=dgs.sum(axis=0))
    return y, _product(dgs, wih), grads


def _twin_gru(p, sfx, x, dy):
    """:func:`_twin_unit` of the GRU with the reset gate after the recurrent product."""
    wih, whb = p["weight_ih" + sfx], bf(p["weight_hh" + sfx])
    bi, bh = p["bias_ih" + sfx].astype(np.float64), p["bias_hh" + sfx].astype(np.float64)
    L, H = x.shape[0], whb.shape[1]
    P = _product(x, wih.T) + bi
    h = np.zeros(H)
    hs, cache, y = [], [], np.empty((L, H))
    for t in range(L):
        hs.append(h)
        R = whb @ bf(h) + bh
        r, z = _sig(P[t, :H] + R[:H]), _sig(P[t, H:2 * H] + R[H:2 * H])
        n = np.tanh(P[t, 2 * H:] + r * R[2 * H:])
        h = (1 - z) * n + z * h
        y[t] = h
        cache.append((r, z, n, R[2 * H:]))
    dxp, dhp = np.empty((L, 3 * H)), np.empty((L, 3 * H))
    dh = np.zeros(H)
    for t in range(L - 1, -1, -1):
        r, z, n, rn = cache[t]
        d = dy[t] + dh
        dan = d * (1 - z) * (1 - n * n)
        dar = dan * rn * r * (1 - r)
        daz = d * (hs[t] - n) * z * (1 - z)
        dxp[t] = np.concatenate([dar, daz, dan])
        dhp[t] = np.concatenate([dar, daz, dan * r])
        dh = d * z + whb.T @ bf(dhp[t])
    grads = dict(weight_ih=_product(dxp.T, x), weight_hh=_product(dhp.T, np.array(hs)),
                 bias_ih=dxp.sum(axis=0), bias_hh=dhp.sum(axis=0))
    return y, _product(dxp, wih), grads


def _twin_gru_v1(p, sfx, x, dy):
    """:func:`_twin_unit` of the GRU with the reset gate before the recurrent product:
    ``n = tanh(W_in x + W_hn (r * h) + b_in + b_hn)``."""
    wih, whb = p["weight_ih" + sfx], bf(p["weight_hh" + sfx])
    bias = p["bias_ih" + sfx].astype(np.float64) + p["bias_hh" + sfx]
    L, H = x.shape[0], whb.shape[1]
    P = _product(x, wih.T) + bias
    h = np.zeros(H)
    hs, rhs, cache, y = [], [], [], np.empty((L, H))
    for t in range(L):
        hs.append(h)
        a = P[t, :2 * H] + whb[:2 * H] @ bf(h)
        r, z = _sig(a[:H]), _sig(a[H:])
        rhs.append(r * h)
        n = np.tanh(P[t, 2 * H:] + whb[2 * H:] @ bf(r * h))
        h = (1 - z) * n + z * h
        y[t] = h
        cache.append((r, z, n))
    dgs = np.empty((L, 3 * H))
    dh = np.zeros(H)
    for t in range(L - 1, -1, -1):
        r, z, n = cache[t]
        d = dy[t] + dh
        dan = d * (1 - z) * (1 - n * n)
        daz = d * (hs[t] - n) * z * (1 - z)
        drh = whb[2 * H:].T @ bf(dan)
        dar = drh * hs[t] * r * (1 - r)
        dgs[t] = np.concatenate([dar, daz, dan])
        dh = d * z + drh * r + whb[:2 * H].T @ bf(dgs[t, :2 * H])
    whh_grad = np.vstack([_product(dgs[:, :2 * H].T, np.array(hs)),
                          _product(dgs[:, 2 * H:].T, np.array(rhs))])
    grads = dict(weight_ih=_product(dgs.T, x), weight_hh=whh_grad, bias_ih=dgs.sum(axis=0),
                 bias_hh=dgs.sum(axis=0))
    return y, _product(dgs, wih), grads


def _twin_layer(layer, X, lengths, dY):
    """The one-layer (one or two directions) twin over a padded batch."""
    B, T, _ = X.shape
    H, D = layer.hidden_size, layer.num_directions
    kind = type(layer).__name__.lower()
    if kind == "gru" and not layer.reset_after:
        kind = "gru_v1"
    Y = np.zeros((B, T, D * H))
    dX = np.zeros(X.shape)
    grads = {k: np.zeros(v.shape) for k, v in layer.params.items()}
    for d, sfx in enumerate(("_l0", "_l0_reverse")[:D]):
        for b in range(B):
            L = lengths[b]
            steps = np.arange(L)[::-1] if d else np.arange(L)
            y, dx, g = _twin_unit(kind, layer.params, sfx, X[b, steps],
                                  dY[b, steps, d * H:(d + 1) * H].astype(np.float64))
            Y[b, steps, d * H:(d + 1) * H] = y
            dX[b, steps] += dx
            grads["weight_ih" + sfx] += g["weight_ih"]
            grads["weight_hh" + sfx] += g["weight_hh"]
            grads["bias_ih" + sfx] += g["bias_ih"]
            grads["bias_hh" + sfx] += g["bias_hh"]
    return Y, dX, grads


def _close(got, want, tol):
    scale = max(np.abs(want).max(), 1e-30)
    assert np.abs(got - want).max() <= tol * scale, np.abs(got - want).max() / scale


def _rel(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


def _problem(seed, B=4, T=7, I=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, T, I)).astype(np.float32)
    lengths = np.array(([T, 3, T - 1, 1] * B)[:B])
    return rng, X, lengths


def _gru_v1(*args, **kwargs):
    return GRU(*args, reset_after=False, **kwargs)


@pytest.mark.parametrize("cls", [LSTM, RNN, GRU, _gru_v1])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("I", [6, 32])  # 32: dW_ih and dW_hh in one product
def test_layer_matches_the_twin(level, cls, bidirectional, I):
    rng, X, lengths = _problem(4, I=I)
    layer = cls(I, 5, bidirectional=bidirectional, precision="bf16", init="pytorch",
                random_state=1)
    Y, _ = layer.forward(X, lengths)
    dY = rng.normal(size=Y.shape).astype(np.float32)
    dX = layer.backward(dY)
    tY, tdX, tgrads = _twin_layer(layer, X, lengths, dY)
    _close(Y, tY, TWIN_TOL)
    _close(dX, tdX, TWIN_TOL)
    for k, g in tgrads.items():
        _close(layer.grads[k], g, TWIN_TOL)


@pytest.mark.parametrize("cls", [LSTM, _gru_v1])
def test_layer_matches_the_twin_past_a_block(cls):
    """Products larger than one block of the C product: more rows than ``MC = 64`` in one part
    of the batch, inner dimensions past the step products' ``FRB_KC_STEP = 512`` (``H`` forward,
    ``G H`` backward) and past ``FRB_KC = 2048`` in the input gradient (``G``)."""
    from fastrnn import _config as cfg

    rng, X, lengths = _problem(13, B=136, T=3, I=6)
    try:
        cfg.set_num_threads(1)
        layer = cls(6, 700, precision="bf16", init="pytorch", random_state=7)
        Y, _ = layer.forward(X, lengths)
        dY = rng.normal(size=Y.shape).astype(np.float32)
        dX = layer.backward(dY)
    finally:
        cfg.set_num_threads(None)
    tY, tdX, tgrads = _twin_layer(layer, X, lengths, dY)
    for got, want in [(Y, tY), (dX, tdX)] + [(layer.grads[k], g) for k, g in tgrads.items()]:
        _close_up_to_flips(got, want)


def _close_up_to_flips(got, want, share=0.02, flip_tol=2e-3):
    """:func:`_close` for many operands: an operand that the kernel computes in float32 and the
    twin in float64 can round to the neighbouring bf16 value when it lies within float32 error
    of a rounding boundary, and among some 10^5 operands a few do. All but ``share`` of the
    values within ``TWIN_TOL`` (relative to the largest), the others within a bf16 step's worth
    (``flip_tol``). A product in float32 instead of bf16 puts most values past ``TWIN_TOL``."""
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want) / scale
    assert np.mean(err > TWIN_TOL) <= share, np.mean(err > TWIN_TOL)
    assert err.max() <= flip_tol, err.max()


@pytest.mark.parametrize("cls", [LSTM, RNN, GRU, _gru_v1])
@pytest.mark.parametrize("options", [dict(), dict(num_layers=2, bidirectional=True),
                                     dict(num_layers=2, skip="residual", recurrent_dropout=0.3),
                                     dict(num_layers=3, dropout=0.2)])
def test_layer_is_float32_within_bf16_tolerance(cls, options):
    rng, X, lengths = _problem(5, B=9, T=12, I=16)
    ref = cls(16, 24, random_state=2, **options)
    low = cls(16, 24, random_state=2, precision="bf16", **options)
    Y = ref.forward(X, lengths)[0]
    Yb = low.forward(X, lengths)[0]
    assert low.last_backend_ == "numba"
    dY = rng.normal(size=Y.shape).astype(np.float32)
    dX, dXb = ref.backward(dY), low.backward(dY)
    tol = bf16_rtol(options.get("num_layers", 1))
    assert 0 < _rel(Yb, Y) < tol  # > 0: the bf16 products did run
    assert 0 < _rel(dXb, dX) < tol
    for k in ref.grads:
        assert _rel(low.grads[k], ref.grads[k]) < tol, k


def test_portable_kernel_trains_the_same():
    """On a CPU without AVX-512 BF16 the portable kernel runs: same values, up to the order of
    float32 additions."""
    if len(LEVELS) < 2:
        pytest.skip("this CPU has no AVX-512 BF16: only the portable kernel runs")
    rng, X, lengths = _problem(6, B=5, T=9, I=8)
    out = {}
    before = _bf16.isa()
    try:
        for name in LEVELS:
            _bf16.set_isa(name)
            layer = LSTM(8, 12, bidirectional=True, precision="bf16", random_state=3)
            Y = layer.forward(X, lengths)[0]
            dX = layer.backward(np.ones_like(Y))
            out[name] = (Y, dX, layer.grads["weight_ih_l0"], layer.grads["weight_hh_l0_reverse"])
    finally:
        _bf16.set_isa(before)
    for a, b in zip(out["avx512"], out["generic"]):
        _close(a, b, 1e-5)


def test_inference_is_float32():
    _, X, lengths = _problem(7)
    ref = LSTM(6, 5, random_state=4)
    low = LSTM(6, 5, random_state=4, precision="bf16")
    np.testing.assert_array_equal(low.infer(X, lengths)[0], ref.infer(X, lengths)[0])
    np.testing.assert_array_equal(low.eval().forward(X, lengths)[0],
                                  ref.eval().forward(X, lengths)[0])
    low.train()
    assert not np.array_equal(low.forward(X, lengths)[0], ref.train().forward(X, lengths)[0])


def test_float32_layer_is_unchanged_by_the_option():
    _, X, lengths = _problem(8)
    a = LSTM(6, 5, random_state=5)
    b = LSTM(6, 5, random_state=5, precision="float32")
    np.testing.assert_array_equal(a.forward(X, lengths)[0], b.forward(X, lengths)[0])
    assert "precision" not in repr(a) and "precision='bf16'" in repr(LSTM(2, 3, precision="bf16"))


@pytest.mark.parametrize("make, match", [
    (lambda: LSTM(3, 4, precision="bf16", dtype=np.float64), "dtype=float64.*dtype=np.float32"),
    (lambda: LSTM(3, 4, precision="fp16"), "'float32' or 'bf16', got 'fp16'"),
    (lambda: LSTM(3, 4, precision="bf16", backend="cython"), "numba backend.*'cython'"),
    (lambda: MinGRU(3, 4, precision="bf16"), "LSTM, GRU and RNN layers, not MinGRU"),
    (lambda: IndRNN(3, 4, precision="bf16"), "LSTM, GRU and RNN layers, not IndRNN"),
])
def test_layer_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ------------------------------------------------------------------------------ the estimators
@pytest.mark.parametrize("cls", [RNNClassifier, RNNRegressor])
def test_estimator_parameter(cls):
    est = cls(precision="bf16", hidden_size=8)
    assert est.get_params()["precision"] == "bf16"
    assert clone(est).precision == "bf16"
    assert est.set_params(precision="float32").precision == "float32"
    assert cls().precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        cls(precision="half", max_iter=1).fit(np.zeros((4, 3, 2)), [0, 1, 0, 1])


def test_classifier_trains_to_the_same_accuracy_band():
    X, y = make_sequence_classification(n_samples=80, random_state=0)
    scores = {}
    for precision in ("float32", "bf16"):
        clf = RNNClassifier(hidden_size=16, learning_rate=0.01, max_iter=15, random_state=0,
                            precision=precision)
        clf.fit(X, y)
        rnn = clf.network_.rnn
        assert rnn.precision == precision
        scores[precision] = clf.score(X, y)
    assert scores["float32"] > 0.9 and scores["bf16"] > 0.9
    assert abs(scores["float32"] - scores["bf16"]) <= 0.1


def test_estimator_bf16_needs_a_cell_that_has_it():
    X, y = make_sequence_classification(n_samples=20, random_state=0)
    with pytest.raises(ValueError, match="not MinLSTM"):
        RNNClassifier(cell="minlstm", precision="bf16", max_iter=1).fit(X, y)


@pytest.mark.parametrize("cls", [LSTM, RNN, GRU, _gru_v1])
def test_threads_give_the_same_values(cls):
    """The rows of each bf16 product, and the rows of the batch in the sweeps, split over
    threads: the same values as on one thread (each row's sums do not depend on the split)."""
    from fastrnn import _config as cfg

    rng, X, lengths = _problem(10, B=40, T=9, I=8)
    out = []
    try:
        for n in (1, 3):
            cfg.set_num_threads(n)
            layer = cls(8, 16, bidirectional=True, precision="bf16", random_state=6,
                        recurrent_dropout=0.2)
            Y = layer.forward(X, lengths)[0]
            dX = layer.backward(np.ones_like(Y))
            out.append((Y, dX, layer.grads["weight_ih_l0"], layer.grads["weight_hh_l0_reverse"]))
    finally:
        cfg.set_num_threads(None)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_packed_matrices_side_by_side():
    """What the fused weight gradients rely on: with whole panels, packed matrices side by side
    are the packed matrix of the two side by side."""
    rng = np.random.default_rng(11)
    K, N1, N2 = 9, 2 * _bf16.NR, 13
    B1 = rng.normal(size=(K, N1)).astype(np.float32)
    B2 = rng.normal(size=(K, N2)).astype(np.float32)
    rows = np.arange(K, dtype=np.int64)
    both = np.concatenate([_bf16.pack_b(B1.ravel(), rows * N1, 1, N1),
                           _bf16.pack_b(B2.ravel(), rows * N2, 1, N2)])
    whole = np.hstack([B1, B2])
    np.testing.assert_array_equal(both, _bf16.pack_b(whole.ravel(), rows * (N1 + N2), 1, N1 + N2))


def test_language_model_trains_in_bf16():
    from fastrnn.estimators import RNNLanguageModel

    texts = ["the cat sat on the mat.\n", "a dog sat on a log.\n",
             "the cat and the dog.\n", "on the mat sat a cat.\n"] * 3
    bits = {}
    for precision in ("float32", "bf16"):
        lm = RNNLanguageModel(hidden_size=16, embedding_dim=8, bptt=8, batch_size=4, max_iter=6,
                              learning_rate=1e-2, random_state=0, precision=precision)
        assert clone(lm).get_params()["precision"] == precision
        lm.fit(texts)
        assert lm.network_.rnn.precision == precision
        bits[precision] = lm.bits_per_token(texts)
    assert bits["bf16"] < 0.8 * np.log2(len(set("".join(texts))))  # it learned something
    assert abs(bits["bf16"] - bits["float32"]) <= 0.05 * bits["float32"]
