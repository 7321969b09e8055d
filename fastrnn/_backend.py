"""Backend resolution: the only module that imports a kernel backend.

A backend is a namespace holding the eight recurrent kernels with the signatures documented in
:mod:`fastrnn.kernels.rnn` (``rnn_*``, ``lstm_*``, ``gru_*``, ``gru_v1_*``, each ``_forward`` and
``_backward``). Names:

``numpy``
    The reference (:mod:`fastrnn.kernels.numpy_ref`): always present, slow, used by the tests.
``numba``
    The default: JIT-compiled loops (:mod:`fastrnn.kernels.rnn`, ``lstm``, ``gru``).
``cython``
    Ahead-of-time compiled kernels (``fastrnn._cy``), present when the extension was built.
``cuda``
    numba-cuda kernels, imported only when asked for.

``auto`` resolves to ``$FASTRNN_BACKEND`` if set, else ``numba``.
"""

import contextlib
import importlib
from types import SimpleNamespace

from ._config import env_backend

KERNEL_NAMES = (
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward", "gru_v1_forward", "gru_v1_backward",
)
BACKENDS = ("numba", "cython", "cuda", "numpy")

_cache = {}
_errors = {}
_blas = []


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl)."""
    if not _blas:
        try:
            import scipy.linalg.cython_blas  # noqa: F401  - the BLAS the kernels call, loaded now
            from threadpoolctl import ThreadpoolController

            _blas.append(ThreadpoolController().select(user_api="blas"))
        except ImportError:
            _blas.append(None)
    return _blas[0]


def one_blas_thread():
    """Context manager limiting every loaded BLAS library to one thread (a no-op without
    threadpoolctl).

    The layers run their whole forward and backward inside it. The kernels call BLAS once per time
    step on small matrices between compiled loops, and on two cores the worker threads of a
    multithreaded BLAS call (even one made just before, for the all-steps input projection) keep
    spinning against those loops: measured 20 to 70 times slower at batch 1 (0.65 ms against 48 ms
    for an LSTM of T=100, H=128), 3 to 7 times slower in training (PERF_NOTES: choose one form of
    parallelism per phase). Parallelism comes from the kernels' own threads instead.
    """
    ctl = _blas_controller()
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1)


def _load(name):
    if name == "numpy":
        mod = importlib.import_module("fastrnn.kernels.numpy_ref")
        return SimpleNamespace(name=name, **{k: getattr(mod, k) for k in KERNEL_NAMES})
    if name == "numba":
        ns = {}
        for cell in ("rnn", "lstm", "gru"):
            mod = importlib.import_module(f"fastrnn.kernels.{cell}")
            ns.update({k: getattr(mod, k) for k in KERNEL_NAMES if hasattr(mod, k)})
        return SimpleNamespace(name=name, **ns)
    if name == "cython":
        mod = importlib.import_module("fastrnn._cy._kernels")
        return SimpleNamespace(name=name, **{k: getattr(mod, k) for k in KERNEL_NAMES})
    if name == "cuda":
        mod = importlib.import_module("fastrnn.kernels.cuda")
        stack = importlib.import_module("fastrnn.kernels.cuda._stack")
        # besides the eight kernels, the whole-layer driver that keeps a call on the device
        return SimpleNamespace(name=name, stack_forward=stack.stack_forward,
                               stack_backward=stack.stack_backward,
                               **{k: getattr(mod, k) for k in KERNEL_NAMES})
    raise ValueError(f"unknown backend {name!r}; choose one of 'auto', {', '.join(map(repr, BACKENDS))}.")


def resolve_name(name="auto"):
    """Turn ``"auto"`` (or ``None``) into a concrete backend name; validate any other name."""
    if name is None or name == "auto":
        name = env_backend() or "numba"
    if name not in BACKENDS:
        raise ValueError(
            f"backend must be 'auto' or one of {', '.join(map(repr, BACKENDS))}, got {name!r}. "
            "Check the backend argument or the FASTRNN_BACKEND environment variable."
        )
    return name


def get_backend(name="auto"):
    """Return the kernel namespace of backend ``name``; raise ``RuntimeError`` saying why if it is
    not available."""
    name = resolve_name(name)
    if name not in _cache:
        try:
            _cache[name] = _load(name)
        except Exception as exc:  # noqa: BLE001 - reported to the user below
            _errors[name] = f"{type(exc).__name__}: {exc}"
            raise RuntimeError(
                f"backend {name!r} is not available ({_errors[name]}). "
                "Run fastrnn.show_backends() for details, or choose another backend."
            ) from exc
    return _cache[name]


def has_backend(name):
    """Whether backend ``name`` loads (a failure is remembered, so a missing backend costs one
    import attempt per process)."""
    if name in _cache:
        return True
    if name in _errors:
        return False
    try:
        get_backend(name)
        return True
    except RuntimeError:
        return False


def available_backends():
    """Dict ``name -> (available, reason)`` for every backend."""
    out = {}
    for name in BACKENDS:
        try:
            get_backend(name)
            out[name] = (True, "available")
        except RuntimeError:
            out[name] = (False, _errors[name])
    return out


def show_backends(file=None):
    """Print which backends are available, which one ``auto`` picks, and why a backend is missing."""
    default = resolve_name("auto")
    for name, (ok, why) in available_backends().items():
        mark = "yes" if ok else "no "
        extra = "  <- auto" if name == default else ""
        print(f"{name:7s} {mark} {why if not ok else ''}{extra}", file=file)
