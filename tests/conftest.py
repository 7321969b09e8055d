import os
import signal
import tracemalloc

# Float32 results of the threaded kernels depend, in their last bits, on how the work is split
# over threads; the compatibility fixture (tests/data/compat) was made with two. The suite runs
# with two whatever the machine's CPU count or the caller's environment (set before Numba loads).
# FASTRNN_NUM_THREADS too, because OMP_NUM_THREADS would otherwise lower the count (see
# fastrnn.num_threads), and benchmark scripts that tests import set it for their own runs.
os.environ["NUMBA_NUM_THREADS"] = "2"
os.environ["FASTRNN_NUM_THREADS"] = "2"

import numpy as np
import pytest

from fastrnn._backend import available_backends

_avail = available_backends()
_wanted = os.environ.get("FASTRNN_TEST_BACKENDS")
if _wanted:
    CPU_BACKENDS = [b.strip() for b in _wanted.split(",") if b.strip()]
    for b in CPU_BACKENDS:
        if not _avail.get(b, (False, "unknown backend"))[0]:
            raise RuntimeError(f"FASTRNN_TEST_BACKENDS asks for {b!r}, which is not available: "
                               f"{_avail.get(b)}")
else:
    CPU_BACKENDS = [b for b in ("numpy", "numba", "cython") if _avail[b][0]]

COMPILED_BACKENDS = [b for b in CPU_BACKENDS if b != "numpy"]

#: ``make soak`` (FASTRNN_SOAK=1): the fault and fuzz tests run ten times longer
SOAK = 10 if os.environ.get("FASTRNN_SOAK", "").strip() == "1" else 1


@pytest.fixture(params=CPU_BACKENDS)
def backend(request):
    """Every available CPU backend, so every test runs on each (a compiled extension being optional never means untested)."""
    return request.param


@pytest.fixture(params=COMPILED_BACKENDS)
def compiled_backend(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def learning_rates(monkeypatch):
    """The learning rate of every training step the test runs, in order (``Trainer.step`` records
    its optimizer's rate before it steps)."""
    from fastrnn.train import Trainer

    seen = []
    real_step = Trainer.step

    def step(self, *args, **kwargs):
        seen.append(self.optimizer.lr)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "step", step)
    return seen


@pytest.fixture
def ctrl_c_at_step(monkeypatch):
    """``ctrl_c_at_step(call, inside)`` makes the ``call``-th training step a Ctrl-C: after the
    step (a first Ctrl-C, which stops the run cleanly) or inside it (a second Ctrl-C, which cuts
    the update short)."""
    from fastrnn.train import Trainer

    def arm(call, inside):
        real_step = Trainer.step
        calls = {"n": 0}

        def step(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == call and inside:
                raise KeyboardInterrupt
            out = real_step(self, *args, **kwargs)
            if calls["n"] == call:
                os.kill(os.getpid(), signal.SIGINT)
            return out

        monkeypatch.setattr(Trainer, "step", step)

    return arm


def central_difference(f, arr, index, eps=1e-6):
    """The derivative of the scalar ``f()`` with respect to ``arr[index]`` by central differences;
    ``arr`` is changed in place for the two calls and restored."""
    old = arr[index]
    arr[index] = old + eps
    up = f()
    arr[index] = old - eps
    down = f()
    arr[index] = old
    return (up - down) / (2 * eps)


def numerical_grad(f, arr, eps=1e-6):
    """The gradient of the scalar ``f()`` with respect to every entry of ``arr`` (float64), by
    :func:`central_difference`."""
    g = np.zeros(arr.shape)
    for index in np.ndindex(arr.shape):
        g[index] = central_difference(f, arr, index, eps)
    return g


def bytes_grown(call, n_calls=200):
    """The bytes that ``n_calls`` calls of ``call()`` leave allocated (traced by
    :mod:`tracemalloc`, summed over the source lines whose allocations grew)."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(n_calls):
            call()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "lineno") if s.size_diff > 0)


def tol(dtype):
    """Relative tolerance of backend parity per dtype (float64 1e-10, float32 1e-5)."""
    return 1e-10 if np.dtype(dtype) == np.float64 else 1e-5
