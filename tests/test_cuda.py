"""CUDA backend (numba-cuda): kernel parity with the numpy reference, layer parity (stacked,
bidirectional, dropout), host-device transfers per layer call, a gradient check, the tiled product,
argument errors and the availability messages.

Without a GPU these tests run on numba-cuda's simulator: ``NUMBA_ENABLE_CUDASIM=1`` is set below,
before anything imports ``numba.cuda`` (it decides simulator or hardware once, at import), unless
the variable is already set. On a GPU machine run them on the hardware with
``NUMBA_ENABLE_CUDASIM=0``. The simulator runs every GPU thread as a Python thread, so the sizes
here are tiny (B <= 3, T <= 4, H <= 4). The variable is restored right after the import so that
nothing else in the test session (subprocesses included) sees it; the CPU kernels never read it.
"""

import os
import sys

# Switch the simulator on only if nobody chose (the variable is unset) and numba.cuda is not loaded
# yet; on a GPU machine tests/conftest.py has already loaded it for the hardware, which then runs
# these tests.
_SET_CUDASIM = "NUMBA_ENABLE_CUDASIM" not in os.environ and "numba.cuda" not in sys.modules
if _SET_CUDASIM:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install fastrnn[cuda]); "
                                         "the CUDA backend cannot be tested")
import numba.core.config  # noqa: E402

if _SET_CUDASIM:
    # numba-cuda reads its settings from numba's config, which numba read when it was first
    # imported (tests/conftest.py loads the CPU kernels): re-read the environment.
    numba.core.config.reload_config()
numba_cuda = pytest.importorskip("numba.cuda",
                                 reason="numba.cuda (from numba-cuda) does not import")
if _SET_CUDASIM:
    del os.environ["NUMBA_ENABLE_CUDASIM"]
    numba.core.config.reload_config()

import fastrnn  # noqa: E402
from fastrnn._backend import KERNEL_NAMES, get_backend, resolve_name  # noqa: E402
from fastrnn.kernels import numpy_ref as REF  # noqa: E402
from fastrnn.nn import GRU, LSTM, RNN, IndRNN, MinGRU, MinLSTM  # noqa: E402

from conftest import tol  # noqa: E402  (float64 1e-10, float32 1e-5 relative)

# Import errors here (no GPU and the simulator switched on too late) fail the module with the
# backend's own explanation; they are not skipped.
CUDA = get_backend("cuda")
import fastrnn.kernels.cuda as cuda_pkg  # noqa: E402

T, B, H = 3, 3, 3  # H = 3 leaves idle threads in every block: the bounds checks are exercised


@pytest.fixture(autouse=True, scope="module")
def _fast_thread_switching():
    """The simulator runs each GPU thread as a Python thread and polls them at every
    syncthreads(); a shorter thread switch interval makes it several times faster. Restored after
    this module, so other tests run as usual."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, 0.001))
    yield
    sys.setswitchinterval(old)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else np.linalg.norm(a - b) / den


def assert_close(got, ref, dtype, what):
    assert got.shape == ref.shape, what
    assert np.all(np.isfinite(got)), f"{what}: non-finite values (an element was not written?)"
    err = rel_err(got, ref)
    assert err < tol(dtype), f"{what}: relative error {err:.3g} >= {tol(dtype):g}"


# ---------------------------------------------------------------------------- the backend
def test_namespace_has_exactly_the_eight_kernels():
    assert sorted(cuda_pkg.__all__) == sorted(KERNEL_NAMES)
    for name in KERNEL_NAMES:
        assert getattr(CUDA, name) is getattr(cuda_pkg, name)
    public = {k for k in vars(cuda_pkg) if not k.startswith("_")}
    assert public - set(KERNEL_NAMES) <= {"rnn", "lstm", "gru"}  # the submodules only


def test_auto_never_picks_cuda(monkeypatch):
    monkeypatch.delenv("FASTRNN_BACKEND", raising=False)
    assert resolve_name("auto") != "cuda"
    import io
    buf = io.StringIO()
    fastrnn.show_backends(file=buf)
    line = [ln for ln in buf.getvalue().splitlines() if ln.startswith("cuda")][0]
    assert "yes" in line and "auto" not in line


# ---------------------------------------------------------------------------- the tiled product
@pytest.mark.parametrize("tile", [4, 16])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gemm_several_tiles_prologue_and_epilogue(dtype, tile):
    """The shared dimension spans two tiles, the rows and columns two blocks for tile 4 (16 is
    the GPU tile, 4 the simulator's); rows >= n must stay untouched."""
    from fastrnn.kernels.cuda._matmul import TILE, gemm
    assert TILE in (4, 16)
    rng = np.random.RandomState(0)
    Bm, K, N, n = 6, tile + 4, 5, 5
    a, am = rng.randn(Bm, K).astype(dtype), rng.rand(Bm, K).astype(dtype)
    w = rng.randn(K, N).astype(dtype)
    cm, add = rng.rand(Bm, N).astype(dtype), rng.randn(Bm, N).astype(dtype)
    c0 = np.full((Bm, N), 7.0, dtype)
    d = {k: numba_cuda.to_device(v) for k, v in dict(a=a, am=am, w=w, cm=cm, add=add, c=c0).items()}
    gemm(n, d["a"], d["w"], d["c"], amask=d["am"], cmask=d["cm"], add=d["add"], tile=tile)
    got = d["c"].copy_to_host()
    ref = ((a[:n] * am[:n]) @ w) * cm[:n] + add[:n]
    assert_close(got[:n], ref, dtype, "gemm rows < n")
    assert np.all(got[n:] == 7.0), "rows >= n must not be written"
    d["c"] = numba_cuda.to_device(c0)
    gemm(n, d["a"], d["w"], d["c"], tile=tile)  # no prologue nor epilogue
    assert_close(d["c"].copy_to_host()[:n], a[:n] @ w, dtype, "plain gemm")


@pytest.mark.parametrize("trans_a, trans_b, tile", [
    (True, False, 4), (False, True, 4), (True, True, 4), (True, True, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gemm_transposed_operands_and_biases(dtype, trans_a, trans_b, tile):
    """``op(a) @ op(b) + bias1 + bias2`` with either operand read transposed (the weights in the
    PyTorch layout, the gate gradients of the weight gradients), the mask in ``a``'s stored
    layout; non-contiguous views as operands and output, as the layers pass them."""
    from fastrnn.kernels.cuda._matmul import gemm
    rng = np.random.RandomState(1)
    M, K, N, n = 7, 6, 5, 6
    a = rng.randn(*((K, M) if trans_a else (M, K))).astype(dtype)
    am = rng.rand(*a.shape).astype(dtype)
    b_wide = rng.randn(N, K + 2).astype(dtype) if trans_b else rng.randn(K, N + 2).astype(dtype)
    b = b_wide[:, 1:K + 1] if trans_b else b_wide[:, 1:N + 1]  # a strided view
    b1, b2 = rng.randn(N).astype(dtype), rng.randn(N).astype(dtype)
    c0 = np.full((M, N + 1), 7.0, dtype)
    d = {k: numba_cuda.to_device(v) for k, v in dict(a=a, am=am, b=b_wide, b1=b1, b2=b2,
                                                     c=c0).items()}
    db = d["b"][:, 1:K + 1] if trans_b else d["b"][:, 1:N + 1]
    gemm(n, d["a"], db, d["c"][:, :N], amask=d["am"], bias1=d["b1"], bias2=d["b2"],
         trans_a=trans_a, trans_b=trans_b, tile=tile)
    got = d["c"].copy_to_host()
    op_a = (a * am).T if trans_a else a * am
    op_b = b.T if trans_b else b
    assert_close(got[:n, :N], (op_a @ op_b)[:n] + b1 + b2, dtype, "transposed gemm")
    assert np.all(got[n:] == 7.0) and np.all(got[:, N] == 7.0), "only c[:n] may be written"


def test_gemm_rejects_mismatched_shapes():
    from fastrnn.kernels.cuda._matmul import gemm
    d = numba_cuda.to_device(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"gemm: shapes do not match.*trans_b=False"):
        gemm(3, d, d, numba_cuda.to_device(np.zeros((3, 3))), trans_b=False)
    with pytest.raises(ValueError, match=r"gemm: shapes do not match"):
        gemm(3, d, d, numba_cuda.to_device(np.zeros((3, 3))), trans_a=True, trans_b=True)


# ---------------------------------------------------------------------------- kernel parity
CASES = {
    # ragged lengths, recurrent-dropout mask; LSTM without forget gate; RNN tanh
    "ragged-mask": dict(lengths=(3, 2, 1), use_mask=True, gates=(1, 0, 1), relu=False),
    # one sequence ends a step early, no mask; LSTM with the forget gate only; RNN relu
    "nomask": dict(lengths=(3, 3, 2), use_mask=False, gates=(0, 1, 0), relu=True),
}


class Case:
    """Random inputs of one kernel-parity case, in ``dtype``."""

    def __init__(self, case, dtype, G, seed=0):
        c = CASES[case]
        rng = np.random.RandomState(seed)
        self.dt = dt = np.dtype(dtype)
        self.relu, self.use_mask = c["relu"], c["use_mask"]
        self.gates = np.array(c["gates"], np.int64)
        L = np.array(c["lengths"])
        self.bs = (L[None, :] > np.arange(T)[:, None]).sum(axis=1).astype(np.int64)
        self.xp = rng.randn(T, B, G * H).astype(dt)
        self.w = (0.6 * rng.randn(G * H, H)).astype(dt)  # PyTorch layout (G*H, H)
        self.bhh = (0.3 * rng.randn(G * H)).astype(dt)
        self.peep = (0.5 * rng.randn(3, H)).astype(dt)
        self.hmask = (((rng.rand(B, H) < 0.7) / 0.7).astype(dt) if self.use_mask
                      else np.zeros((0, 0), dt))
        self.h0 = (0.5 * rng.randn(B, H)).astype(dt)
        self.c0 = (0.5 * rng.randn(B, H)).astype(dt)
        self.dy = rng.randn(T, B, H).astype(dt)
        for t in range(T):  # past each length the gradient is never read: NaN proves it
            self.dy[t, self.bs[t]:] = np.nan
        self.dh = rng.randn(B, H).astype(dt)
        self.dc = rng.randn(B, H).astype(dt)

    def states(self, h0):
        hs = np.full((T + 1, B, H), np.nan, self.dt)
        hs[0] = h0
        return hs

    def nan(self, *shape):
        return np.full(shape, np.nan, self.dt)

    def real_rows(self, arr):
        """``arr`` (T, B, ...) with the rows of finished sequences set to 0."""
        out = arr.copy()
        for t in range(T):
            out[t, self.bs[t]:] = 0
        return out


def call_both(name, args):
    """Run kernel ``name`` of the reference and of the CUDA backend on copies of ``args``."""
    out = []
    for mod in (REF, CUDA):
        a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
        getattr(mod, name)(*a)
        out.append(a)
    return out


def check_carry(hs, bs):
    """A finished sequence's state is carried unchanged, exactly."""
    for t in range(T):
        np.testing.assert_array_equal(hs[t + 1, bs[t]:], hs[t, bs[t]:])


def check_acts(ref, got, c, what):
    assert_close(got, c.real_rows(ref), c.dt, what)  # zero in finished rows on the device


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_rnn_kernels_match_numpy(case, dtype):
    c = Case(case, dtype, 1)
    args = [c.xp, np.ascontiguousarray(c.w.T), c.bs, c.hmask, c.use_mask, c.relu, c.states(c.h0),
            c.nan(B, H), c.nan(B, H)]
    ref, got = call_both("rnn_forward", args)
    assert_close(got[6], ref[6], dtype, "hs")
    check_carry(got[6], c.bs)
    hs = ref[6]
    ref, got = call_both("rnn_backward", [c.dy, hs, c.w, c.bs, c.hmask, c.use_mask, c.relu,
                                          c.nan(T, B, H), c.dh])
    assert_close(got[7], ref[7], dtype, "dgates")
    assert_close(got[8], ref[8], dtype, "dh")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_lstm_kernels_match_numpy(case, dtype):
    c = Case(case, dtype, 4)
    args = [c.xp, np.ascontiguousarray(c.w.T), c.bs, c.hmask, c.use_mask, c.peep, c.gates,
            c.states(c.h0), c.states(c.c0), c.nan(T, B, 4 * H), c.nan(B, H), c.nan(B, 4 * H)]
    ref, got = call_both("lstm_forward", args)
    assert_close(got[7], ref[7], dtype, "hs")
    assert_close(got[8], ref[8], dtype, "cs")
    check_acts(ref[9], got[9], c, "acts")
    check_carry(got[7], c.bs)
    check_carry(got[8], c.bs)
    cs, acts = ref[8], ref[9]  # acts keeps NaN in finished rows: the backward must not read them
    dpeep0 = (0.1 * np.arange(3 * H)).reshape(3, H).astype(dtype)  # accumulated into
    ref, got = call_both("lstm_backward", [c.dy, cs, acts, c.w, c.bs, c.hmask, c.use_mask, c.peep,
                                           c.gates, c.nan(T, B, 4 * H), c.dh, c.dc, dpeep0])
    for k, what in zip(range(9, 13), ("dgates", "dh", "dc", "dpeep")):
        assert_close(got[k], ref[k], dtype, what)
    for k in range(3):  # an ablated gate gets no gradient
        if not c.gates[k]:
            col = (0, 1, 3)[k] * H
            assert np.all(got[9][:, :, col:col + H] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_gru_kernels_match_numpy(case, dtype):
    c = Case(case, dtype, 3)
    args = [c.xp, np.ascontiguousarray(c.w.T), c.bhh, c.bs, c.hmask, c.use_mask, c.states(c.h0),
            c.nan(T, B, 4 * H), c.nan(B, H), c.nan(B, 3 * H)]
    ref, got = call_both("gru_forward", args)
    assert_close(got[6], ref[6], dtype, "hs")
    check_acts(ref[7], got[7], c, "acts")
    check_carry(got[6], c.bs)
    hs, acts = ref[6], ref[7]
    ref, got = call_both("gru_backward", [c.dy, hs, acts, c.w, c.bs, c.hmask, c.use_mask,
                                          c.nan(T, B, 3 * H), c.nan(T, B, 3 * H), c.dh,
                                          c.nan(B, H)])
    for k, what in zip(range(7, 10), ("dxp", "dhp", "dh")):
        assert_close(got[k], ref[k], dtype, what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES)
def test_gru_v1_kernels_match_numpy(case, dtype):
    c = Case(case, dtype, 3)
    w_rz, w_n = np.ascontiguousarray(c.w[:2 * H]), np.ascontiguousarray(c.w[2 * H:])
    args = [c.xp, np.ascontiguousarray(w_rz.T), np.ascontiguousarray(w_n.T), c.bs, c.hmask,
            c.use_mask, c.states(c.h0), c.nan(T, B, 3 * H), c.nan(T, B, H), c.nan(B, H),
            c.nan(B, 2 * H), c.nan(B, H)]
    ref, got = call_both("gru_v1_forward", args)
    assert_close(got[6], ref[6], dtype, "hs")
    check_acts(ref[7], got[7], c, "acts")
    assert_close(got[8], ref[8], dtype, "rh")
    check_carry(got[6], c.bs)
    hs, acts = ref[6], ref[7]
    scratch = [c.nan(B, k * H) for k in (1, 2, 1, 1, 1)]
    ref, got = call_both("gru_v1_backward", [c.dy, hs, acts, w_rz, w_n, c.bs, c.hmask, c.use_mask,
                                             c.nan(T, B, 3 * H), c.dh, *scratch])
    assert_close(got[8], ref[8], dtype, "dgates")
    assert_close(got[9], ref[9], dtype, "dh")


# ---------------------------------------------------------------------------- layers
LAYERS = {
    "lstm-peephole-bidir": (LSTM, dict(peephole=True, bidirectional=True, recurrent_dropout=0.3)),
    "gru": (GRU, dict(recurrent_dropout=0.3)),
    "gru-v1": (GRU, dict(reset_after=False, recurrent_dropout=0.3)),
    "rnn-relu-stacked": (RNN, dict(nonlinearity="relu", num_layers=2, dropout=0.2)),
    # two layers of two directions: the device-resident stack
    "lstm-2x-bidir": (LSTM, dict(num_layers=2, bidirectional=True, dropout=0.3,
                                 recurrent_dropout=0.3)),
    "gru-2x-bidir": (GRU, dict(num_layers=2, bidirectional=True, dropout=0.3,
                               recurrent_dropout=0.3)),
    "gru-v1-2x-bidir": (GRU, dict(reset_after=False, num_layers=2, bidirectional=True,
                                  dropout=0.3)),
    "rnn-2x-bidir": (RNN, dict(num_layers=2, bidirectional=True, dropout=0.3)),
    # the cells with an element-wise recurrence (fastrnn.kernels.cuda._minimal)
    "mingru-2x-bidir": (MinGRU, dict(num_layers=2, bidirectional=True, dropout=0.3)),
    "minlstm-g": (MinLSTM, dict(candidate="g")),
    "minlstm-2x-bidir": (MinLSTM, dict(num_layers=2, bidirectional=True)),
    "indrnn-2x-bidir": (IndRNN, dict(num_layers=2, bidirectional=True, dropout=0.3,
                                     recurrent_dropout=0.3)),
    "indrnn-tanh": (IndRNN, dict(nonlinearity="tanh")),
}
STACKED = [k for k in LAYERS if "2x-bidir" in k]


def make_layer(name, backend, dtype=np.float64, n_in=2, n_hidden=3, seed=0):
    cls, kw = LAYERS[name]
    layer = cls(n_in, n_hidden, dtype=dtype, backend=backend, random_state=seed, **kw)
    rng = np.random.RandomState(seed + 100)
    for k, v in layer.params.items():  # non-trivial biases and peepholes, so every path runs
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


def layer_run(layer, X, L, h0, R, S):
    """Forward, the loss ``sum(Y * R) + sum(h_n * S)`` (and c_n), backward."""
    Y, hn = layer.forward(X, L, h0)
    hs = hn if layer.has_cell else (hn,)
    loss = float(np.sum(Y * R) + sum(np.sum(h * s) for h, s in zip(hs, S)))
    dX = layer.backward(R, dh_n=tuple(S) if layer.has_cell else S[0])
    return loss, Y, hs, dX, {k: v.copy() for k, v in layer.grads.items()}, layer.grad_h0


def layer_inputs(layer, seed=1):
    rng = np.random.RandomState(seed)
    X = rng.randn(B, T, layer.input_size)
    X[1, 1:] = np.nan  # past its length: never read
    L = np.array([3, 1, 2])  # unsorted: the layer sorts the batch
    shape = (layer.num_layers * layer.num_directions, B, layer.hidden_size)
    n_states = 2 if layer.has_cell else 1
    h0 = tuple(0.5 * rng.randn(*shape) for _ in range(n_states))
    R = rng.randn(B, T, layer.num_directions * layer.hidden_size)
    S = [rng.randn(*shape) for _ in range(n_states)]
    return X, L, (h0 if layer.has_cell else h0[0]), R, S


def count_device_calls(monkeypatch):
    """Record the calls of the device driver and of the backend's eight kernels (a layer call
    must go through the driver, once each way, and never through the per-kernel host functions,
    which copy per kernel)."""
    from fastrnn.kernels.cuda import _stack

    ns = get_backend("cuda")  # what the layers call
    calls = []
    for owner, names in ((ns, KERNEL_NAMES), (_stack, ("stack_forward", "stack_backward"))):
        for k in names:
            def wrapper(*args, _k=k, _f=getattr(owner, k), **kwargs):
                calls.append(_k)
                return _f(*args, **kwargs)
            monkeypatch.setattr(owner, k, wrapper)
    return calls


def check_layer_parity(got, ref, L, dtype):
    """Outputs, final states and every gradient of two :func:`layer_run` results."""
    assert_close(got[1], ref[1], dtype, "Y")
    for b, n in enumerate(L):
        assert np.all(got[1][b, n:] == 0) and np.all(got[3][b, n:] == 0), "padding must stay zero"
    for a, r in zip(got[2], ref[2]):
        assert_close(a, r, dtype, "h_n / c_n")
    assert_close(got[3], ref[3], dtype, "dX")
    assert sorted(got[4]) == sorted(ref[4])
    for k in ref[4]:
        assert got[4][k].dtype == np.dtype(dtype), k
        assert_close(got[4][k], ref[4][k], dtype, f"grad {k}")
    gh, rh = (got[5], ref[5]) if isinstance(ref[5], tuple) else ((got[5],), (ref[5],))
    for a, r in zip(gh, rh):
        assert_close(a, r, dtype, "grad_h0")


LAYER_CASES = [(name, "train") for name in LAYERS] + [(name, "eval") for name in STACKED]


@pytest.mark.parametrize("name, mode", LAYER_CASES, ids=[f"{n}-{m}" for n, m in LAYER_CASES])
def test_layer_matches_numpy_backend(name, mode, monkeypatch):
    """Same outputs, final states and gradients (parameters, input, initial states) as the numpy
    backend: ragged lengths, both directions, dropout between the layers and recurrent dropout in
    training mode (the same seed draws the same masks on both backends), none in eval mode."""
    ref_layer, cuda_layer = make_layer(name, "numpy"), make_layer(name, "cuda")
    if mode == "eval":
        ref_layer.eval()
        cuda_layer.eval()
    X, L, h0, R, S = layer_inputs(ref_layer)
    ref = layer_run(ref_layer, X, L, h0, R, S)
    calls = count_device_calls(monkeypatch)
    got = layer_run(cuda_layer, X, L, h0, R, S)
    assert calls == ["stack_forward", "stack_backward"], calls
    check_layer_parity(got, ref, L, np.float64)


@pytest.mark.parametrize("name", ["gru", "lstm-2x-bidir", "minlstm-2x-bidir", "indrnn-2x-bidir"])
def test_layer_float32_matches_numpy_backend(name):
    ref_layer = make_layer(name, "numpy", np.float32)
    cuda_layer = make_layer(name, "cuda", np.float32)
    X, L, h0, R, S = layer_inputs(ref_layer)
    ref = layer_run(ref_layer, X, L, h0, R, S)
    got = layer_run(cuda_layer, X, L, h0, R, S)
    assert got[1].dtype == np.float32 and got[3].dtype == np.float32
    check_layer_parity(got, ref, L, np.float32)


class TransferCounter:
    """Counts host-device copies by wrapping numba-cuda itself, not the code under test:
    ``numba.cuda.to_device``, the device array's ``copy_to_host`` and ``copy_to_device`` (from a
    host array), and, on the simulator, numpy arrays passed straight to a kernel (numba copies
    those both ways implicitly on a GPU)."""

    def __init__(self, monkeypatch):
        self.h2d = self.d2h = self.implicit = 0
        real_to_device = numba_cuda.to_device

        def to_device(ary, *args, **kwargs):
            self.h2d += 1
            return real_to_device(ary, *args, **kwargs)

        monkeypatch.setattr(numba_cuda, "to_device", to_device)
        cls = type(numba_cuda.device_array(1))
        real_to_host, real_from_host = cls.copy_to_host, cls.copy_to_device

        def copy_to_host(arr, *args, **kwargs):
            self.d2h += 1
            return real_to_host(arr, *args, **kwargs)

        def copy_to_device(arr, src, *args, **kwargs):
            if not getattr(src, "__cuda_ndarray__", False):
                self.h2d += 1
            return real_from_host(arr, src, *args, **kwargs)

        monkeypatch.setattr(cls, "copy_to_host", copy_to_host)
        monkeypatch.setattr(cls, "copy_to_device", copy_to_device)
        from fastrnn.kernels.cuda import _stack
        kernel_cls = type(_stack._copy2)
        if "simulator" in kernel_cls.__module__:
            real_call = kernel_cls.__call__

            def call(kernel, *args):
                self.implicit += sum(isinstance(a, np.ndarray) and a.ndim > 0 for a in args)
                return real_call(kernel, *args)

            monkeypatch.setattr(kernel_cls, "__call__", call)

    def take(self):
        """``(host to device, device to host, implicit)`` since the last call; resets."""
        out = (self.h2d, self.d2h, self.implicit)
        self.h2d = self.d2h = self.implicit = 0
        return out


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_layer_call_copies_once_each_way_whatever_the_depth(cls, monkeypatch):
    """Arrays stay on the device across steps and layers of one call. A forward copies
    to the device one packed buffer (input, initial states, every parameter, every dropout mask)
    and the lengths, and copies back one packed buffer (outputs, h_n, c_n); a backward copies the
    output gradients in and all gradients out, once each: the counts are the same for one and
    for two bidirectional layers."""
    counter = TransferCounter(monkeypatch)
    counts = {}
    for num_layers in (1, 2):
        layer = cls(2, 2, num_layers=num_layers, bidirectional=True, dropout=0.3,
                    recurrent_dropout=0.3, dtype=np.float64, backend="cuda", random_state=0)
        X = np.random.RandomState(0).randn(2, 3, 2)
        counter.take()
        Y, _ = layer.forward(X, lengths=[2, 3])
        fwd = counter.take()
        layer.backward(np.ones_like(Y))
        counts[num_layers] = (fwd, counter.take())
    assert counts[1] == counts[2]
    (h2d, d2h, implicit), (bh2d, bd2h, bimplicit) = counts[2]
    assert (h2d, d2h, implicit) == (2, 1, 0), counts
    assert (bh2d, bd2h, bimplicit) == (1, 1, 0), counts


def test_lstm_gradient_check_central_differences():
    """float64 central differences of the loss along one random direction per array (every
    parameter, the input and both initial states): each array's gradient is checked on its own,
    at two forwards per array, which keeps the simulator run short."""
    cls = LSTM
    layer = cls(2, 2, peephole=True, dtype=np.float64, backend="cuda", random_state=0)
    rng = np.random.RandomState(5)
    for k, v in layer.params.items():
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    X = rng.randn(2, 3, 2)
    L = np.array([3, 2])
    h0 = (0.5 * rng.randn(1, 2, 2), 0.5 * rng.randn(1, 2, 2))
    R = rng.randn(2, 3, 2)
    S = [rng.randn(1, 2, 2), rng.randn(1, 2, 2)]
    _, _, _, dX, grads, gh0 = layer_run(layer, X, L, h0, R, S)

    def loss():
        Y, (hn, cn) = layer.forward(X, L, h0)
        return float(np.sum(Y * R) + np.sum(hn * S[0]) + np.sum(cn * S[1]))

    targets = [(k, layer.params[k], grads[k]) for k in layer.params]
    targets += [("X", X, dX), ("h0", h0[0], gh0[0]), ("c0", h0[1], gh0[1])]
    eps = 1e-6
    for name, arr, grad in targets:
        v = rng.randn(*arr.shape)
        if name == "X":
            v[1, 2:] = 0  # the padded step has no gradient by construction (checked below)
        v /= np.linalg.norm(v)
        old = arr.copy()
        arr[...] = old + eps * v
        fp = loss()
        arr[...] = old - eps * v
        fm = loss()
        arr[...] = old
        numeric = (fp - fm) / (2 * eps)
        analytic = float(np.sum(grad * v))
        assert abs(numeric - analytic) <= 1e-6 * max(abs(numeric), abs(analytic), 1e-3), (
            f"{name}: directional derivative {analytic:.10g}, central difference {numeric:.10g}")
    assert np.all(dX[1, 2:] == 0)


# ---------------------------------------------------------------------------- errors
def _rnn_args(**over):
    dt = np.float64
    a = dict(xp=np.zeros((2, 2, 3), dt), whh_t=np.zeros((3, 3), dt),
             batch_sizes=np.array([2, 1]), hmask=np.zeros((0, 0), dt), use_mask=False, relu=False,
             hs=np.zeros((3, 2, 3), dt), hin=np.zeros((2, 3), dt), a=np.zeros((2, 3), dt))
    a.update(over)
    return a


@pytest.mark.parametrize("over, exc, match", [
    (dict(hs=np.zeros((3, 2, 3), np.float32)), ValueError, "hs has dtype float32 but the inputs"),
    (dict(hs=np.zeros((2, 2, 3))), ValueError, r"hs must have shape \(3, 2, 3\), got \(2, 2, 3\)"),
    (dict(hs=[[0.0]]), TypeError, "hs must be a numpy array"),
    (dict(batch_sizes=np.array([3, 1])), ValueError, r"batch_sizes must lie in \[0, B=2\]"),
    (dict(batch_sizes=np.array([2])), ValueError,
     r"batch_sizes must be an integer array of shape \(2,\)"),
    (dict(xp=np.zeros((2, 2, 3), np.int32)), ValueError,
     "xp must be float32 or float64, got dtype int32"),
    (dict(use_mask=True), ValueError, r"hmask must have shape \(2, 3\), got \(0, 0\)"),
    (dict(whh_t=np.zeros((3, 4))), ValueError, r"whh_t must have shape \(3, 3\)"),
])
def test_bad_arguments_are_named(over, exc, match):
    with pytest.raises(exc, match=match):
        CUDA.rnn_forward(**_rnn_args(**over))


def test_lstm_bad_gate_switches():
    dt = np.float64
    with pytest.raises(ValueError, match=r"gates_on must have shape \(3,\)"):
        CUDA.lstm_forward(np.zeros((1, 1, 8), dt), np.zeros((2, 8), dt), np.array([1]),
                          np.zeros((0, 0), dt), False, np.zeros((3, 2), dt), np.ones(2, np.int64),
                          np.zeros((2, 1, 2), dt), np.zeros((2, 1, 2), dt), np.zeros((1, 1, 8), dt),
                          None, None)


# ---------------------------------------------------------------------------- availability
def test_missing_numba_cuda_is_explained(monkeypatch):
    real = cuda_pkg._importlib_util.find_spec
    monkeypatch.setattr(cuda_pkg._importlib_util, "find_spec",
                        lambda name, *a: None if name == "numba_cuda" else real(name, *a))
    with pytest.raises(ImportError,
                       match=r"numba-cuda package, which is not installed.*fastrnn\[cuda\]"):
        cuda_pkg._check_available()


def test_no_driver_is_explained_without_importing_numba_cuda(monkeypatch):
    monkeypatch.delitem(sys.modules, "numba.cuda")
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    monkeypatch.setattr(cuda_pkg, "_driver_loadable", lambda: False)
    with pytest.raises(ImportError, match="no CUDA driver found.*NUMBA_ENABLE_CUDASIM=1"):
        cuda_pkg._check_available()
    assert "numba.cuda" not in sys.modules


def test_no_usable_gpu_is_explained(monkeypatch):
    monkeypatch.setattr(numba_cuda, "is_available", lambda: False)
    monkeypatch.setattr(numba_cuda, "cuda_error", lambda: "CUDA_ERROR_NO_DEVICE")
    with pytest.raises(ImportError, match="no usable GPU.*CUDA_ERROR_NO_DEVICE"):
        cuda_pkg._check_available()


# ---------------------------------------------------------------------------- element-wise cells
@pytest.mark.parametrize("name", ["mingru-2x-bidir", "indrnn-tanh"])
def test_elementwise_cells_stream_as_they_run_on_the_device(name):
    """A streaming step of minGRU, minLSTM and IndRNN on the cuda backend gives the outputs of the
    device forward."""
    cls, kw = LAYERS[name]
    kw = {k: v for k, v in kw.items() if k not in ("bidirectional", "dropout")}
    layer = cls(2, 3, dtype=np.float64, backend="cuda", random_state=0, **kw).eval()
    X = np.random.RandomState(2).randn(2, T, 2)
    Y, _ = layer.forward(X)
    state = layer.init_state(2)
    for t in range(T):
        y, _ = layer.step(X[:, t], state)
        assert_close(y.copy(), Y[:, t], np.float64, f"step {t}")


def test_connections_between_layers_run_on_the_device():
    """A stack with connections runs each layer through the device driver (one call each way per
    layer) and matches the numpy backend."""
    ref_layer = MinGRU(2, 3, 2, skip="highway", dtype=np.float64, backend="numpy", random_state=0)
    cuda_layer = MinGRU(2, 3, 2, skip="highway", dtype=np.float64, backend="cuda", random_state=0)
    X, L, h0, R, S = layer_inputs(ref_layer)
    ref = layer_run(ref_layer, X, L, h0, R, S)
    got = layer_run(cuda_layer, X, L, h0, R, S)
    check_layer_parity(got, ref, L, np.float64)
