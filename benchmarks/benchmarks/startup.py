"""Cold start: a fresh interpreter imports fastrnn, builds an LSTM and runs one forward (the
inference path must stay fast: no scikit-learn, Numba kernels from the on-disk cache)."""

import os
import subprocess
import sys

from . import ROOT, THREADS

COLD_START = (
    "import numpy as np\n"
    "import fastrnn\n"
    "from fastrnn.nn import LSTM\n"
    "lstm = LSTM(12, 64, random_state=0)\n"
    "lstm.forward(np.zeros((1, 20, 12), np.float32))\n"
)
IMPORT_ONLY = "import fastrnn\n"


def _run(code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(THREADS)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


class ColdStart:
    number = 1
    repeat = (3, 10, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self):
        _run(COLD_START)  # fill the Numba on-disk cache once, outside the timing

    def time_import(self):
        """import fastrnn + build an LSTM + forward once, in a fresh process."""
        _run(COLD_START)

    def time_import_only(self):
        _run(IMPORT_ONLY)
