import os

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


def tol(dtype):
    """Relative tolerance of backend parity per dtype (float64 1e-10, float32 1e-5)."""
    return 1e-10 if np.dtype(dtype) == np.float64 else 1e-5
