"""The Cython backend and its build.

* ``FASTRNN_REQUIRE_CYTHON=1`` (CI sets it) makes the backend's absence a failure.
* The kernels, called directly, match the numpy reference: float32 and float64, batch-1 steps (the
BLAS
  gemv path), finished rows, empty steps and the recurrent-dropout mask.
* The float32 activations are accurate element by element (tanh is evaluated from libc ``exp``), and
  NaN propagates through every forward kernel; the rational tanh of ``_cellmath.pxd`` has exactly the
  coefficients of the Numba fast path (``fastrnn.kernels._vmath``), read from the source.
* Bad arguments get errors that name the argument; the time loop releases the GIL.
* A failed build leaves an install without the backend and a reason for ``show_backends()``, unless
  ``FASTRNN_REQUIRE_CYTHON`` is set; and the compiled extensions are not older than their sources.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from fastrnn._backend import available_backends, get_backend

from conftest import tol

REQUIRE = os.environ.get("FASTRNN_REQUIRE_CYTHON", "").strip().lower() in ("1", "true", "yes", "on")
CY_OK, CY_WHY = available_backends()["cython"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CY_DIR = os.path.join(ROOT, "fastrnn", "_cy")

# Skipped only where the optional extension is legitimately absent; with FASTRNN_REQUIRE_CYTHON set
# these tests run, and fail, instead.
needs_cython = pytest.mark.skipif(not CY_OK and not REQUIRE,
                                  reason=f"the cython backend is not built here: {CY_WHY}")


def test_cython_backend_is_available_when_required():
    if REQUIRE:
        assert CY_OK, f"FASTRNN_REQUIRE_CYTHON=1 but the cython backend is not available: {CY_WHY}"
    elif not CY_OK:
        # Optional here, but its absence must be explained (fastrnn.show_backends() prints this).
        assert "Cython kernels are not compiled" in CY_WHY, CY_WHY


def _included_headers(path, found):
    """The headers next to the sources that ``path`` includes, directly or through others."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for name in re.findall(r'(?:extern from|#include)\s+"([^"]+\.h)"', text):
        header = os.path.join(CY_DIR, name)
        if os.path.exists(header) and header not in found:
            found.add(header)
            _included_headers(header, found)
    return found


@needs_cython
def test_extensions_are_not_older_than_their_sources():
    """A stale build would test old code: editing a .pyx, .pxd or .h needs a rebuild. Each
    extension is compared with its own .pyx, every .pxd, and the C headers it includes (found in
    the sources: ``cdef extern from "X.h"`` and ``#include "X.h"``), as an incremental build
    rebuilds only the extensions whose sources changed."""
    pxd = glob.glob(os.path.join(CY_DIR, "*.pxd"))
    built = glob.glob(os.path.join(CY_DIR, "_*.so")) + glob.glob(os.path.join(CY_DIR, "_*.pyd"))
    if not pxd or not built:
        pytest.skip("not running from a source tree with in-place extensions")
    for so in built:
        name = os.path.basename(so).split(".")[0]
        pyx = os.path.join(CY_DIR, name + ".pyx")
        sources = pxd + [pyx] + (sorted(_included_headers(pyx, set())) if os.path.exists(pyx)
                                 else [])
        newest = max((p for p in sources if os.path.exists(p)), key=os.path.getmtime)
        assert os.path.getmtime(so) >= os.path.getmtime(newest), (
            f"{os.path.basename(so)} is older than {os.path.basename(newest)}: rebuild with "
            "`pip install -e .` or `python setup.py build_ext --inplace`."
        )


# ---------------------------------------------------------------- direct kernel parity
G = {"rnn": 1, "lstm": 4, "gru": 3, "gru_v1": 3}
CASES = {
    "batch1": (1, [1, 1, 1, 1, 1]),              # every step a matrix-vector product
    "ragged": (4, [4, 4, 3, 1, 1]),              # finished rows; gemm, then gemv steps
    "empty-steps": (3, [3, 2, 0, 0]),            # steps with no running sequence
}


def _problem(cell, dtype, B, batch_sizes, use_mask, seed=0):
    """Random inputs of one kernel pair, shared by both backends (each gets its own copies)."""
    rng = np.random.RandomState(seed)
    T, H = len(batch_sizes), 5
    g = G[cell]

    def r(*shape, scale=1.0):
        return (scale * rng.randn(*shape)).astype(dtype)

    p = dict(T=T, B=B, H=H, bs=np.array(batch_sizes, np.int64), use_mask=use_mask,
             xp=r(T, B, g * H), w=r(g * H, H, scale=0.6), h0=r(B, H, scale=0.5),
             c0=r(B, H, scale=0.5), dy=r(T, B, H), dh=r(B, H), dc=r(B, H), bhh=r(g * H),
             peep=r(3, H, scale=0.5))
    keep = (rng.rand(B, H) < 0.7) / 0.7
    p["hmask"] = keep.astype(dtype) if use_mask else np.zeros((0, 0), dtype)
    return p


def _run(bk, cell, p, variant=None):
    """Forward then backward of ``cell`` on backend ``bk``; returns every output array."""
    k = get_backend(bk)
    T, B, H, dt = p["T"], p["B"], p["H"], p["xp"].dtype
    # Outputs and scratch start as NaN, so a row a kernel should write but skips shows up (and so
    # does scratch read before it is written). Only the gate caches start at zero: no backend
    # writes the rows of finished sequences there.
    e = lambda *shape: np.full(shape, np.nan, dt)  # noqa: E731
    z = lambda *shape: np.zeros(shape, dt)  # noqa: E731
    hs = e(T + 1, B, H)
    hs[0] = p["h0"]
    w, bs, m, use = p["w"], p["bs"], p["hmask"], p["use_mask"]
    out = dict(hs=hs)
    if cell == "rnn":
        relu = variant == "relu"
        k.rnn_forward(p["xp"], np.ascontiguousarray(w.T), bs, m, use, relu, hs, e(B, H), e(B, H))
        out.update(dgates=e(T, B, H), dh=p["dh"].copy())
        k.rnn_backward(p["dy"], hs, w, bs, m, use, relu, out["dgates"], out["dh"])
    elif cell == "lstm":
        gates_on = np.array({None: [1, 1, 1], "no-forget": [1, 0, 1]}[variant])
        cs = e(T + 1, B, H)
        cs[0] = p["c0"]
        out.update(cs=cs, acts=z(T, B, 4 * H))
        k.lstm_forward(p["xp"], np.ascontiguousarray(w.T), bs, m, use, p["peep"], gates_on, hs, cs,
                       out["acts"], e(B, H), e(B, 4 * H))
        out.update(dgates=e(T, B, 4 * H), dh=p["dh"].copy(), dc=p["dc"].copy(), dpeep=z(3, H))
        k.lstm_backward(p["dy"], cs, out["acts"], w, bs, m, use, p["peep"], gates_on,
                        out["dgates"], out["dh"], out["dc"], out["dpeep"])
    elif cell == "gru":
        out.update(acts=z(T, B, 4 * H))
        k.gru_forward(p["xp"], np.ascontiguousarray(w.T), p["bhh"], bs, m, use, hs, out["acts"],
                      e(B, H), e(B, 3 * H))
        out.update(dxp=e(T, B, 3 * H), dhp=e(T, B, 3 * H), dh=p["dh"].copy())
        k.gru_backward(p["dy"], hs, out["acts"], w, bs, m, use, out["dxp"], out["dhp"], out["dh"],
                       e(B, H))
    else:
        out.update(acts=z(T, B, 3 * H), rh=e(T, B, H))
        k.gru_v1_forward(p["xp"], np.ascontiguousarray(w[:2 * H].T),
                         np.ascontiguousarray(w[2 * H:].T), bs, m, use, hs, out["acts"], out["rh"],
                         e(B, H), e(B, 2 * H), e(B, H))
        out.update(dgates=e(T, B, 3 * H), dh=p["dh"].copy())
        k.gru_v1_backward(p["dy"], hs, out["acts"], np.ascontiguousarray(w[:2 * H]),
                          np.ascontiguousarray(w[2 * H:]), bs, m, use, out["dgates"], out["dh"],
                          e(B, H), e(B, 2 * H), e(B, H), e(B, H), e(B, H))
    return out


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else np.linalg.norm(a - b) / den


@needs_cython
@pytest.mark.parametrize("use_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("cell, variant", [("rnn", None), ("rnn", "relu"), ("lstm", None),
                                           ("lstm", "no-forget"), ("gru", None), ("gru_v1", None)])
def test_kernels_match_numpy_reference(cell, variant, case, use_mask, dtype):
    B, bs = CASES[case]
    p = _problem(cell, dtype, B, bs, use_mask)
    ref = _run("numpy", cell, p, variant)
    got = _run("cython", cell, p, variant)
    for name in ref:
        assert got[name].dtype == np.dtype(dtype), name
        assert _rel_err(got[name], ref[name]) < tol(dtype), name
    # Rows of finished sequences carry their state unchanged (here the last step has <= 1 row).
    n = bs[-1]
    np.testing.assert_array_equal(got["hs"][-1, n:], got["hs"][-2, n:])


# ---------------------------------------------------------------- element-wise accuracy, NaN
def _tanh32(values):
    """tanh of each value through the float32 RNN kernel (zero recurrent weights, one row each)."""
    k = get_backend("cython")
    n = values.size
    xp = values.astype(np.float32).reshape(1, n, 1)
    hs = np.zeros((2, n, 1), np.float32)
    k.rnn_forward(xp, np.zeros((1, 1), np.float32), np.array([n]), np.zeros((0, 0), np.float32),
                  False, False, hs, np.zeros((n, 1), np.float32), np.zeros((n, 1), np.float32))
    return hs[1, :, 0]


def _sigmoid32(values):
    """The input gate of each value through the float32 LSTM kernel (zero recurrent weights)."""
    k = get_backend("cython")
    n = values.size
    xp = np.zeros((1, n, 4), np.float32)
    xp[0, :, 0] = values
    hs = np.zeros((2, n, 1), np.float32)
    acts = np.zeros((1, n, 4), np.float32)
    k.lstm_forward(xp, np.zeros((1, 4), np.float32), np.array([n]), np.zeros((0, 0), np.float32),
                   False, np.zeros((3, 1), np.float32), np.array([1, 1, 1]), hs, np.zeros_like(hs),
                   acts, np.zeros((n, 1), np.float32), np.zeros((n, 4), np.float32))
    return acts[0, :, 0]


@needs_cython
def test_float32_tanh_matches_the_fast_path_accuracy():
    """float32 tanh is the rational function of the Numba fast path (fastrnn.kernels._vmath):
    relative error below 5e-7 over the whole range, never outside [-1, 1]."""
    mags = np.concatenate([np.logspace(-38, 1.5, 3000), np.linspace(0, 20, 4001), [9.0, 30, 1e30]])
    x = np.concatenate([mags, -mags]).astype(np.float32)
    got = _tanh32(x).astype(np.float64)
    want = np.tanh(x.astype(np.float64))
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    assert rel.max() < 5e-7, rel.max()
    assert np.abs(got).max() <= 1.0
    np.testing.assert_array_equal(_tanh32(-x[:100]), -_tanh32(x[:100]))  # odd
    np.testing.assert_array_equal(_tanh32(np.array([np.inf, -np.inf])), [1.0, -1.0])
    assert np.isnan(_tanh32(np.array([np.nan]))[0])


def _pxd_tanh32_literals():
    """The float literals of ``tanh32`` in ``_cellmath.pxd``: the clamp bounds and the coefficients
    of the numerator and denominator, each in the order of the Horner chain (highest power first)."""
    with open(os.path.join(CY_DIR, "_cellmath.pxd"), encoding="utf-8") as fh:
        text = fh.read()
    body = text.split("cdef inline float tanh32(", 1)[1].split("\ncdef ", 1)[0]
    number = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
    bounds = re.search(rf"\bhi = ({number}), lo = ({number})", body)
    chain = {}
    for var in ("p", "q"):
        lines = re.findall(rf"^\s*{var} = (.*)$", body, flags=re.M)
        chain[var] = [float(v) for line in lines for v in re.findall(rf"<float>\s*({number})", line)]
    return (float(bounds.group(1)), float(bounds.group(2))) if bounds else None, chain


def test_cython_tanh_has_the_coefficients_of_the_fast_path():
    """One rational tanh for the Numba fast path and the Cython kernels: the .pxd writes the
    coefficients out as C literals (a .pxd cannot import Python constants), so they are compared
    here, exactly, with those of :mod:`fastrnn.kernels._vmath`. Needs no build: it reads the
    source."""
    from fastrnn.kernels import _vmath as vm

    bounds, chain = _pxd_tanh32_literals()
    assert bounds == (vm._XMAX, -vm._XMAX)
    assert chain["p"] == [vm._P5, vm._P4, vm._P3, vm._P2, vm._P1, vm._P0]
    assert chain["q"] == [vm._Q3, vm._Q2, vm._Q1]


@needs_cython
def test_float32_sigmoid_is_accurate_and_saturates():
    x = np.concatenate([np.linspace(-80, 80, 8001), -np.logspace(-30, 1, 200),
                        np.logspace(-30, 1, 200)]).astype(np.float32)
    got = _sigmoid32(x).astype(np.float64)
    want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    assert np.max(np.abs(got - want)) < 3e-7
    assert got.min() >= 0.0 and got.max() <= 1.0
    np.testing.assert_array_equal(_sigmoid32(np.array([np.inf, -np.inf, 100.0, -100.0])),
                                  [1.0, 0.0, 1.0, 0.0])
    assert np.isnan(_sigmoid32(np.array([np.nan]))[0])


@needs_cython
@pytest.mark.parametrize("cell, variant", [("rnn", None), ("rnn", "relu"), ("lstm", None),
                                           ("gru", None), ("gru_v1", None)])
def test_nan_propagates_through_forward_kernels(cell, variant, dtype):
    """NaN is never squashed (no -ffast-math, no clamping that loses it): training relies on seeing
    it to detect divergence. Rows are independent, so the other sequence stays finite."""
    p = _problem(cell, dtype, 2, [2, 2, 2, 2], use_mask=False, seed=3)
    p["xp"][0, 0, :] = np.nan
    hs = _run("cython", cell, p, variant)["hs"]
    assert np.all(np.isnan(hs[1:, 0])), hs[:, 0]
    assert np.all(np.isfinite(hs[:, 1]))


# ---------------------------------------------------------------- argument errors
def _rnn_args(dtype=np.float32, T=3, B=4, H=8):
    return dict(xp=np.zeros((T, B, H), dtype), whh_t=np.zeros((H, H), dtype),
                batch_sizes=np.array([4, 2, 1], np.int64), hmask=np.zeros((0, 0), dtype),
                use_mask=False, relu=False, hs=np.zeros((T + 1, B, H), dtype),
                hin=np.zeros((B, H), dtype), a=np.zeros((B, H), dtype))


@needs_cython
@pytest.mark.parametrize("change, match", [
    (dict(whh_t=np.zeros((8, 8))),
     r"rnn_forward: whh_t must have the dtype of xp \(float32\), got a float64 array"),
    (dict(hs=np.zeros((4, 8, 4), np.float32).transpose(0, 2, 1)), "hs must be C-contiguous"),
    (dict(a=np.zeros((4, 7), np.float32)), r"a must have shape \(4, 8\), got \(4, 7\)"),
    (dict(hs=np.zeros((3, 4, 8), np.float32)), r"hs must have shape \(4, 4, 8\), got \(3, 4, 8\)"),
    (dict(batch_sizes=np.array([4, 9, 1])), r"batch_sizes\[1\] = 9 is outside \[0, 4\]"),
    (dict(batch_sizes=np.array([4, 2, 1], np.int32)), "batch_sizes must be a 1-D int64 array"),
    (dict(use_mask=True), r"hmask \(use_mask is true\) must have shape \(4, 8\), got \(0, 0\)"),
    (dict(xp=np.zeros((3, 4, 8), np.int32)), "xp must be a float32 or float64 numpy array"),
    (dict(hin=[[0.0] * 8] * 4), "hin must be a numpy array, got an object of type list"),
])
def test_bad_arguments_are_named(change, match):
    args = {**_rnn_args(), **change}
    with pytest.raises(ValueError, match=match):
        get_backend("cython").rnn_forward(**args)


@needs_cython
def test_read_only_output_and_bad_gate_switches():
    k = get_backend("cython")
    args = _rnn_args()
    args["hs"].flags.writeable = False
    with pytest.raises(ValueError, match="hs is written by the kernel but is read-only"):
        k.rnn_forward(**args)
    f = np.float32
    with pytest.raises(ValueError, match="gates_on must hold 3 switches"):
        k.lstm_forward(np.zeros((1, 1, 4), f), np.zeros((1, 4), f), np.array([1]),
                       np.zeros((0, 0), f), False, np.zeros((3, 1), f), [1, 1],
                       np.zeros((2, 1, 1), f), np.zeros((2, 1, 1), f), np.zeros((1, 1, 4), f),
                       np.zeros((1, 1), f), np.zeros((1, 4), f))


# ---------------------------------------------------------------- the GIL
@needs_cython
def test_time_loop_releases_the_gil():
    """A Python thread keeps running while a kernel is inside its time loop. Without the GIL
    released it could only run at the kernel's two ends (within one switch interval of its entry and
    exit), so any tick in the middle of the call proves it; a loaded machine gets a few tries."""
    k = get_backend("cython")
    rng = np.random.RandomState(0)
    B, H = 8, 128
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        for T in (200, 400, 800, 1600, 1600, 1600):
            xp = rng.randn(T, B, 4 * H).astype(np.float32)
            args = (xp, (0.1 * rng.randn(H, 4 * H)).astype(np.float32), np.full(T, B, np.int64),
                    np.zeros((0, 0), np.float32), False, np.zeros((3, H), np.float32),
                    np.array([1, 1, 1]), np.zeros((T + 1, B, H), np.float32),
                    np.zeros((T + 1, B, H), np.float32), np.empty((T, B, 4 * H), np.float32),
                    np.empty((B, H), np.float32), np.empty((B, 4 * H), np.float32))
            ticks, stop = [], threading.Event()

            def spin():
                while not stop.is_set():
                    ticks.append(time.perf_counter())

            th = threading.Thread(target=spin)
            th.start()
            try:
                time.sleep(0.005)
                t0 = time.perf_counter()
                k.lstm_forward(*args)
                t1 = time.perf_counter()
            finally:
                stop.set()
                th.join()
            if t1 - t0 < 0.01:
                continue  # too short to tell the middle from the ends; a longer run follows
            lo, hi = t0 + 0.3 * (t1 - t0), t1 - 0.3 * (t1 - t0)
            if any(lo < s < hi for s in ticks):
                return
    finally:
        sys.setswitchinterval(old_interval)
    pytest.fail("no Python thread ran while lstm_forward was in its time loop: the GIL is held")


# ---------------------------------------------------------------- the optional build
_BLOCK_CYTHON = textwrap.dedent("""
    import runpy, sys
    sys.modules["Cython"] = None  # as if Cython were not installed
    sys.argv = ["setup.py", "build_ext", "--inplace"]
    runpy.run_path("setup.py", run_name="__main__")
""")


def _build_tree(tmp_path):
    """A copy of what setup.py needs (generated C files included, so Cython need not run again)."""
    for name in ("setup.py", "pyproject.toml", "README.md"):
        if os.path.exists(os.path.join(ROOT, name)):
            shutil.copy2(os.path.join(ROOT, name), tmp_path / name)
    dst = tmp_path / "fastrnn" / "_cy"
    dst.mkdir(parents=True)
    (tmp_path / "fastrnn" / "__init__.py").write_text("")
    for pattern in ("*.py", "*.pyx", "*.pxd", "*.c"):
        for f in glob.glob(os.path.join(CY_DIR, pattern)):
            shutil.copy2(f, dst)
    return dst


@pytest.mark.skipif(os.name != "posix" or shutil.which("false") is None,
                    reason="CC=false simulates a broken compiler on POSIX systems only")
@pytest.mark.parametrize("broken", ["compiler", "cython"])
def test_failed_build_is_optional_unless_required(tmp_path, broken):
    dst = _build_tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "FASTRNN_REQUIRE_CYTHON"}
    if broken == "compiler":
        env["CC"] = "false"
        cmd = [sys.executable, "setup.py", "build_ext", "--inplace"]
    else:
        cmd = [sys.executable, "-c", _BLOCK_CYTHON]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "WARNING: the optional Cython backend of fastrnn was not built" in res.stderr
    status = (dst / "_build_status.txt").read_text()
    assert ("'false' exited with status" if broken == "compiler" else "Cython is not installed") \
        in status, status
    assert not glob.glob(str(dst / "_*.so")) and not glob.glob(str(dst / "_*.pyd"))
    # The backend loader then says why: the reason travels into the ImportError.
    probe = ("import sys; sys.path.insert(0, '.'); import fastrnn._cy._kernels")
    imp = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert imp.returncode != 0
    assert "the Cython kernels are not compiled (the build left them out: " in imp.stderr
    assert status.strip() in imp.stderr
    # With FASTRNN_REQUIRE_CYTHON=1 the same build is an error.
    res = subprocess.run(cmd, cwd=tmp_path, env={**env, "FASTRNN_REQUIRE_CYTHON": "1"},
                         capture_output=True, text=True, timeout=600)
    assert res.returncode != 0
    assert "FASTRNN_REQUIRE_CYTHON is set and the Cython backend was not built" in res.stderr
