"""CUDA backend (numba-cuda): the eight recurrent kernels of fastrnn, run on an NVIDIA GPU.

The functions have the host-level signatures and semantics of the Numba backend
(:mod:`fastrnn.kernels.rnn`, ``lstm``, ``gru``): they take numpy arrays, copy the inputs to the
device once per call, run the whole time loop there and write the results into the numpy output
arrays passed in. The layers do not call them: with ``backend="cuda"`` a layer runs its whole
forward and backward (all layers and directions, input projections and weight gradients included)
through :mod:`._stack`, which keeps the arrays on the device for the whole call and copies once each
way; both share the time loops (the ``*_device`` functions of :mod:`.rnn`, :mod:`.lstm`,
:mod:`.gru`). A layer's streaming step runs in :mod:`._stream`, which keeps the weights and the
carried states on the device between steps. :mod:`fastrnn._backend` imports this package only
when ``backend="cuda"`` is asked for (or when it lists the backends).

Importing raises ``ImportError`` with the reason when the backend cannot run: numba-cuda is not
installed, or there is neither a CUDA driver with a usable GPU nor the numba-cuda simulator
(``NUMBA_ENABLE_CUDASIM=1``). When no driver library can be loaded and the simulator is not asked
for, ``numba.cuda`` is not imported at all: importing it fixes the simulator-or-hardware choice for
the rest of the process, and a later import with ``NUMBA_ENABLE_CUDASIM=1`` (the test suite) must
still be able to pick the simulator.
"""

import ctypes as _ctypes
import importlib.util as _importlib_util
import os as _os
import sys as _sys

__all__ = [
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward", "gru_v1_forward", "gru_v1_backward",
]

_INSTALL = ("Install it with `pip install fastrnn[cuda]` (or `pip install numba-cuda[cu12]`; "
            "cu13 for CUDA 13).")
_SIM_HINT = ("To test without a GPU, set NUMBA_ENABLE_CUDASIM=1 before importing fastrnn "
             "(numba-cuda's simulator: correct but very slow).")


def _simulator_requested():
    value = _os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip()
    try:
        return int(value or 0) != 0
    except ValueError:
        return False


def _driver_loadable():
    """Whether the CUDA driver library can be loaded (the candidates numba-cuda itself tries)."""
    if _sys.platform == "win32":
        root = _os.environ.get("SYSTEMROOT", r"C:\Windows")
        names = ["nvcuda.dll", _os.path.join(root, "System32", "nvcuda.dll")]
        loader = getattr(_ctypes, "WinDLL", _ctypes.CDLL)
    elif _sys.platform == "darwin":
        names = ["libcuda.dylib", "/usr/local/cuda/lib/libcuda.dylib"]
        loader = _ctypes.CDLL
    else:
        names = ["libcuda.so.1", "libcuda.so"]
        names += [_os.path.join(d, n) for d in ("/usr/lib", "/usr/lib64", "/usr/lib/wsl/lib")
                  for n in ("libcuda.so.1", "libcuda.so")]
        loader = _ctypes.CDLL
    for name in names:
        try:
            loader(name)
        except OSError:
            continue
        return True
    return False


def _check_available():
    """Raise ``ImportError`` saying why the CUDA backend cannot run here.

    Returns
    -------
    bool
        Whether numba-cuda runs on its simulator.
    """
    if _importlib_util.find_spec("numba_cuda") is None:
        raise ImportError(
            f"the CUDA backend needs the numba-cuda package, which is not installed. {_INSTALL}")
    already = _sys.modules.get("numba.cuda")
    if already is None and not _simulator_requested() and not _driver_loadable():
        raise ImportError(
            "no CUDA driver found (libcuda could not be loaded), so there is no usable NVIDIA GPU. "
            f"Install the NVIDIA driver on a machine with a GPU. {_SIM_HINT}"
        )
    if already is None and _simulator_requested():
        # numba-cuda takes NUMBA_ENABLE_CUDASIM from numba's config, which numba read when it was
        # first imported; the variable may have been set since. Re-read it (numba's compiler does
        # the same before every compilation) so that the simulator is really used.
        import numba.core.config

        numba.core.config.reload_config()
    try:
        from numba import cuda
    except ImportError as exc:
        raise ImportError(f"numba.cuda failed to import ({exc}). {_INSTALL}") from exc
    simulator = "numba.cuda.simulator_init" in _sys.modules
    if not cuda.is_available():
        why = cuda.cuda_error() or "numba.cuda.is_available() is False"
        late = _simulator_requested() and not simulator
        extra = (" NUMBA_ENABLE_CUDASIM=1 was set after numba.cuda had been imported; set it "
                 "before anything imports numba.cuda." if late else f" {_SIM_HINT}")
        raise ImportError(f"numba-cuda found no usable GPU ({str(why).strip()}).{extra}")
    return simulator


_ON_SIMULATOR = _check_available()
"""Whether the kernels run on numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``), not a GPU."""

from .gru import gru_backward, gru_forward, gru_v1_backward, gru_v1_forward  # noqa: E402
from .lstm import lstm_backward, lstm_forward  # noqa: E402
from .rnn import rnn_backward, rnn_forward  # noqa: E402
