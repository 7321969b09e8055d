"""The kernels of the Cython backend, gathered from the compiled extensions.

Signatures and semantics are those of the numba kernels (:mod:`fastrnn.kernels.rnn`, ``lstm``,
``gru``, ``minimal``). :mod:`fastrnn._backend` imports this module; when the extensions were not
built (Cython or a C compiler was missing, or the build failed; ``setup.py`` then leaves the reason
in ``_build_status.txt``) or do not load, the ``ImportError`` raised here says why and how to
build them.
"""

import os

__all__ = [
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward", "gru_v1_forward", "gru_v1_backward",
    "mingru_gates", "minlstm_gates", "mingru_grads", "minlstm_grads", "scan_range", "scan_local",
    "scan_apply", "indrnn_forward", "indrnn_backward",
]

STATUS_FILE = os.path.join(os.path.dirname(__file__), "_build_status.txt")


def build_status():
    """Why the last build left the extensions out (the text ``setup.py`` wrote), or ``None``."""
    try:
        with open(STATUS_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


try:
    from ._gru import gru_backward, gru_forward, gru_v1_backward, gru_v1_forward
    from ._lstm import lstm_backward, lstm_forward
    from ._minimal import (indrnn_backward, indrnn_forward, mingru_gates, mingru_grads,
                           minlstm_gates, minlstm_grads, scan_apply, scan_local, scan_range)
    from ._rnn import rnn_backward, rnn_forward
except ImportError as exc:
    _status = build_status()
    _cause = (f"the build left them out: {_status}" if _status
              else f"{type(exc).__name__}: {exc}")
    raise ImportError(
        f"the Cython kernels are not compiled ({_cause}). Build them with `pip install -e .` or "
        "`python setup.py build_ext --inplace` (Cython>=3 and a C compiler needed; set "
        "FASTRNN_REQUIRE_CYTHON=1 to make a failed build an error), or use another backend."
    ) from exc
