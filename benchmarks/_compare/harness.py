"""The measuring harness: thread settings, interleaved timing with medians, the matrix-product
rate, fresh worker processes and the description of the machine.

Nothing here knows what is measured; the workloads and implementations live in the sibling modules.
"""

import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

#: the environment variables that fix the thread count of the BLAS, OpenMP and Numba pools; a
#: worker process gets them before it imports anything
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# ====================================================================================== imports
def try_torch():
    """``(torch, None)`` or ``(None, reason)``."""
    try:
        import torch
        return torch, None
    except Exception as exc:  # noqa: BLE001 - reported as a skip reason
        return None, f"PyTorch not importable ({type(exc).__name__}: {exc})"


def try_ort():
    """``(onnxruntime, None)`` or ``(None, reason)``."""
    try:
        import onnxruntime
        return onnxruntime, None
    except Exception as exc:  # noqa: BLE001
        return None, f"onnxruntime not importable ({type(exc).__name__}: {exc})"


# ====================================================================================== timing
def interleaved(fns, repeats, warmup=1, min_time=0.01, settle=0.0, max_time=None,
                min_repeats=3, burst=0.02):
    """Time callables interleaved; return ``{name: {"median": s, "times": [...], "number": n}}``.

    Each is called ``warmup`` times (at least once) first; the duration of the last warm-up call
    picks how many calls make one sample (so a sample lasts at least ``min_time``). Then ``repeats``
    rounds run every callable once per round, the order rotating by one each round, with the
    garbage collector off during a sample (as :mod:`timeit` does). Times are per call, in seconds.

    ``settle`` (seconds, for runs with several threads): the worker threads of a library's pool
    (OpenBLAS, OpenMP, ONNX Runtime) busy-wait for a while after its last call (OpenBLAS about
    0.1 s) and then park. On a machine with as many cores as threads, the next library timed would
    share its cores with that spinning, and a pool that has parked pays for waking up. So before
    each sample the process sleeps ``settle`` seconds (the other pools go idle), then a callable
    whose fastest call so far is under ``5 * burst`` seconds runs untimed once and on for
    ``burst`` seconds (its own pool wakes up), as it would in a loop of real work. The sample size
    follows from the fastest warm-up call, so one slow first call cannot inflate it.

    ``max_time`` (seconds) ends the rounds early once it is spent and ``min_repeats`` rounds are
    done (a busy machine can make a run many times slower than planned).
    """
    names = list(fns)
    number, fastest = {}, {}
    for name in names:
        t_warm = time.perf_counter()
        k = 0
        # at least ``warmup`` calls, and short calls for at least ``burst`` seconds
        while k < max(1, warmup) or time.perf_counter() - t_warm < burst:
            t0 = time.perf_counter()
            fns[name]()
            dt = time.perf_counter() - t0
            fastest[name] = min(dt, fastest.get(name, dt))
            k += 1
        number[name] = max(1, int(np.ceil(min_time / max(fastest[name], 1e-7))))
    times = {name: [] for name in names}
    t_start = time.perf_counter()
    for r in range(repeats):
        if (max_time is not None and r >= min(min_repeats, repeats)
                and time.perf_counter() - t_start > max_time):
            break
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, n = fns[name], number[name]
            if settle:
                time.sleep(settle)
                if fastest[name] < 5 * burst:
                    t0 = time.perf_counter()
                    fn()
                    while time.perf_counter() - t0 < burst:
                        fn()
            gc_was = gc.isenabled()
            gc.disable()
            try:
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                dt = time.perf_counter() - t0
            finally:
                if gc_was:
                    gc.enable()
            times[name].append(dt / n)
            fastest[name] = min(fastest[name], dt / n)
    return {name: dict(median=float(np.median(times[name])), times=times[name], number=number[name])
            for name in names}


def matmul_peak(repeats=5, n=2048, torch=None, settle=0.0):
    """float32 matrix-product rate (FLOP/s, median) of numpy (and PyTorch) on ``n x n`` operands."""
    rng = np.random.RandomState(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty_like(a)
    fns = {"numpy": lambda: np.dot(a, b, out=c)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tc = torch.empty_like(ta)
        fns["torch"] = lambda: torch.mm(ta, tb, out=tc)
    res = interleaved(fns, repeats, warmup=1, min_time=0.0, settle=settle)
    return {k: 2.0 * n ** 3 / v["median"] for k, v in res.items()}


def default_settle(threads):
    """The pause before each sample when ``--settle`` is not given: 0.12 s at more than one
    thread (see :func:`interleaved`), else none."""
    return 0.12 if threads > 1 else 0.0


# ====================================================================================== workers
def thread_env(threads):
    """A copy of this process's environment with every variable of ``THREAD_ENV`` set to
    ``threads``."""
    env = dict(os.environ)
    for k in THREAD_ENV:
        env[k] = str(threads)
    return env


def run_script(script, extra, threads):
    """Run ``script`` with ``extra`` arguments in a fresh process with ``threads`` threads (the
    environment variables of ``THREAD_ENV``); its result comes back as JSON through a temporary
    file named by ``--json``. Its progress lines go to our standard error."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, str(script), *extra, "--json", str(out)]
        proc = subprocess.run(cmd, env=thread_env(threads), stdout=sys.stderr)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"benchmark worker failed (exit {proc.returncode}): "
                               f"{' '.join(cmd)[:300]}")
        return json.loads(out.read_text())


def set_threads(threads):
    """Apply the thread count to every library loaded in this process; return what is in force."""
    info = {k: os.environ.get(k) for k in THREAD_ENV}
    info["threads"] = threads
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(threads)
        info["threadpoolctl"] = [
            {k: d.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                   "architecture", "threading_layer", "prefix")}
            for d in threadpoolctl.threadpool_info()]
    except ImportError:
        info["threadpoolctl"] = "not installed"
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        info["numba_threads"] = numba.get_num_threads()
    except Exception as exc:  # noqa: BLE001
        info["numba_threads"] = f"unknown ({exc})"
    torch, _ = try_torch()
    if torch is not None:
        torch.set_num_threads(threads)
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
        if "threadpoolctl" in sys.modules:  # torch brings its own OpenMP: limit it too
            import threadpoolctl
            threadpoolctl.threadpool_limits(threads)
    ort, _ = try_ort()
    if ort is not None:
        info["ort_intra_op_threads"] = threads
        info["ort_inter_op_threads"] = 1
    return info


def json_default(o):
    """``default`` of :func:`json.dumps`: numpy scalars and arrays as Python numbers and lists."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


# ====================================================================================== metadata
def cpu_model():
    """The processor's model name as ``/proc/cpuinfo`` gives it, or ``None`` (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine_info():
    """The machine, the versions of the libraries and the git commit, for the results."""
    info = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(), python=platform.python_version(),
        cpu_count=os.cpu_count(), argv=sys.argv[1:],
        env={k: os.environ[k] for k in (*THREAD_ENV, "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                        "FASTRNN_BACKEND") if k in os.environ},
    )
    cpu = cpu_model()
    if cpu is not None:
        info["cpu"] = cpu
    try:
        with open("/proc/meminfo") as f:
            info["memory_GiB"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    versions = {}
    for mod in ("fastrnn", "numpy", "scipy", "numba", "torch", "onnx", "onnxruntime",
                "threadpoolctl"):
        try:
            from importlib.metadata import version
            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001 - not installed
            versions[mod] = None
    info["versions"] = versions
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True, timeout=10).stdout.strip()
        info["git"] = head + ("+dirty" if dirty else "")
    except Exception:  # noqa: BLE001
        info["git"] = None
    return info
