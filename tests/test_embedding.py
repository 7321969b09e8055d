"""The token embedding's kernels (gather-sum forward, scatter-add backward) against their naive
twins, on every backend: one or several ids per step, padding ids, both dtypes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastrnn._backend import has_backend
from fastrnn.kernels import embedding as numba_kernels
from fastrnn.kernels import numpy_ref
from fastrnn.nn import Embedding

from _reference import embedding_bag, embedding_bag_grad

V = 11
#: ids shapes: (B, T) and (B, T, K) with K = 1 and K > 1
SHAPES = {"2d": (3, 7), "k1": (3, 7, 1), "k4": (3, 7, 4)}


def random_ids(shape, seed=0):
    """Ids in [0, V) with many padding ids (0), a padded tail, and repeated ids inside steps."""
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, V, size=shape)
    ids[rng.rand(*shape) < 0.3] = 0
    ids[0, 5:] = 0  # a padded tail
    if len(shape) == 3 and shape[2] > 1:
        ids[1, 2, :] = 3  # one id several times in a step: its gradient counts every time
    return ids


def tolerance(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


def kernel_table(ids):
    return np.ascontiguousarray(ids.reshape(-1, ids.shape[2] if ids.ndim == 3 else 1), np.intp)


@pytest.mark.parametrize("kernels", [numba_kernels, numpy_ref], ids=["numba", "numpy"])
@pytest.mark.parametrize("padding_idx", [0, 4, None])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("E", [5, 19])
def test_kernels_match_naive_twin(kernels, padding_idx, shape, E, dtype):
    rng = np.random.RandomState(1)
    ids = random_ids(shape)
    table = kernel_table(ids)
    W = rng.normal(size=(V, E)).astype(dtype)
    dY = rng.normal(size=shape[:2] + (E,)).astype(dtype)
    tol = tolerance(dtype)

    out = np.full((table.shape[0], E), np.nan, dtype)
    kernels.embedding_forward(W, table, out)
    np.testing.assert_allclose(out.reshape(dY.shape), embedding_bag(W, ids), rtol=tol, atol=tol)

    g = np.full((V, E), np.nan, dtype)  # overwritten, whatever it held
    kernels.embedding_backward(table, dY.reshape(-1, E), -1 if padding_idx is None else padding_idx,
                               g)
    want = embedding_bag_grad(ids, dY, V, padding_idx)
    np.testing.assert_allclose(g, want, rtol=tol, atol=tol)
    if padding_idx is not None:
        assert np.all(g[padding_idx] == 0)


@pytest.mark.parametrize("padding_idx", [0, -1, None])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_layer_matches_naive_twin(backend, padding_idx, shape, dtype):
    E = 6
    emb = Embedding(V, E, padding_idx=padding_idx, dtype=dtype, backend=backend, random_state=0)
    ids = random_ids(shape, seed=2)
    if padding_idx == -1:
        ids[ids == 0] = V - 1
        ids[0, 0] = 0
    W = emb.params["weight"]
    tol = tolerance(dtype)
    want = embedding_bag(W, ids)
    for out in (emb.forward(ids), emb.lookup(ids), emb.lookup(ids[:1])):
        assert out.dtype == dtype and out.shape == (len(out),) + ids.shape[1:2] + (E,)
        np.testing.assert_allclose(out, want[:len(out)], rtol=tol, atol=tol)
    dY = np.random.RandomState(3).normal(size=want.shape)  # float64: cast to the layer's dtype
    emb.backward(dY)
    g = emb.grads["weight"]
    np.testing.assert_allclose(g, embedding_bag_grad(ids, dY.astype(dtype), V, padding_idx),
                               rtol=tol, atol=tol)
    if padding_idx is not None:
        assert np.all(g[padding_idx] == 0) and np.all(W[padding_idx] == 0)


def test_backward_is_deterministic_and_matches_reference():
    """A larger batch of K = 8 ids per step: the Numba kernel gives the same bits on every call
    and agrees with the numpy reference backend."""
    rng = np.random.RandomState(4)
    ids = rng.randint(0, 300, size=(8, 120, 8))
    ids[:, 90:] = 0
    dY = rng.normal(size=(8, 120, 32)).astype(np.float32)
    fast = Embedding(300, 32, backend="numba", random_state=0)
    ref = Embedding(300, 32, backend="numpy", random_state=0)
    np.testing.assert_allclose(fast.forward(ids), ref.forward(ids), rtol=1e-5, atol=1e-5)
    ref.backward(dY)
    runs = []
    for _ in range(3):
        fast.forward(ids)
        fast.backward(dY)
        runs.append(fast.grads["weight"].copy())
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    np.testing.assert_allclose(runs[0], ref.grads["weight"], rtol=1e-5, atol=1e-5)


def test_backward_errors():
    emb = Embedding(V, 4, backend="numpy")
    with pytest.raises(ValueError, match="call forward first"):
        emb.backward(np.zeros((2, 3, 4)))
    emb.forward(random_ids((2, 3)))
    with pytest.raises(ValueError, match=r"one vector of 4 values per step.*6 steps.*\(2, 3, 5\)"):
        emb.backward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=r"6 steps.*\(2, 4, 4\)"):
        emb.backward(np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="out of range"):
        emb.forward(np.array([[1, V]]))


@pytest.mark.skipif(not has_backend("cython"), reason="the Cython extension is not built")
def test_cython_inference_loads_no_numba():
    """On the Cython backend (where ``backend="auto"`` sends inference on one sequence), looking
    up ids loads no Numba code; its backward runs Numba's kernel."""
    code = (
        "import sys, numpy as np\n"
        "from fastrnn.nn import Embedding\n"
        "emb = Embedding(11, 4, backend='cython', random_state=0)\n"
        "emb.lookup(np.array([[1, 2, 3]]))\n"
        "out = emb.forward(np.array([[[1, 2], [3, 0]]]))\n"
        "print('numba' in sys.modules)\n"
        "emb.backward(np.ones_like(out))\n"
        "print('numba' in sys.modules, emb.grads['weight'][[1, 2, 3]].sum(), "
        "emb.grads['weight'][0].sum())\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "True", "12.0", "0.0"]
