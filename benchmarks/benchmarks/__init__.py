"""The asv benchmark suite of fastrnn (``cd benchmarks && asv run --quick --python=same``).

Threads are set deliberately: ``FASTRNN_BENCH_THREADS`` (default 1) goes into ``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` here, before numpy or numba
is imported, and every ``setup`` applies it again at run time through :func:`limit_threads`
(``threadpoolctl`` and ``numba.set_num_threads``). Benchmarks parametrised by ``threads`` pass their
own count to :func:`limit_threads`.

The suite benchmarks the checkout it lives in (the repository root goes first on ``sys.path``), so a
fresh clone measures its own sources with the current interpreter (asv's "existing" environment).
Workload sizes come from ``benchmarks/compare.py`` (configs B, C, D and the char language model),
so the two tools always measure the same shapes.
"""

import importlib.util
import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
ROOT = BENCH_DIR.parent

THREADS = int(os.environ.get("FASTRNN_BENCH_THREADS", "1"))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, str(max(THREADS, 2) if _var == "NUMBA_NUM_THREADS" else THREADS))

if (ROOT / "fastrnn" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _load_script(name, filename):
    """Import a script of ``benchmarks/`` (not a package) as module ``name``, once."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / filename)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


#: ``benchmarks/compare.py``, for its workload shapes and same-weights model builders
compare = _load_script("fastrnn_bench_compare", "compare.py")

#: ``benchmarks/cold_start.py``, for the saved model its fresh processes load
cold_start = _load_script("fastrnn_bench_cold_start", "cold_start.py")


class SlowBenchmark:
    """asv settings of a benchmark whose one call takes long (a training step, a fit, a fresh
    process): a sample is one call, asv makes no warm-up calls of its own (each ``setup`` warms up
    what it measures) and a benchmark may run for 10 minutes. Subclasses set ``repeat`` (and their
    own ``timeout`` where it differs)."""

    number = 1
    warmup_time = 0.0
    timeout = 600


def limit_threads(n=None):
    """Limit BLAS/OpenMP pools and Numba to ``n`` threads (default ``FASTRNN_BENCH_THREADS``)."""
    n = THREADS if n is None else int(n)
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(n)
    except ImportError:
        pass
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except Exception:  # noqa: BLE001 - numba missing or its threads fixed already
        pass
    return n
