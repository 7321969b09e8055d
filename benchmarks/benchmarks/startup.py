"""Cold start: a fresh interpreter imports fastrnn, builds an LSTM and runs one forward (the
inference path must stay fast: no scikit-learn, Numba kernels from the on-disk cache); and a fresh
interpreter loads a saved classifier and predicts one sequence (the aim: at most 1 s with
Cython)."""

import os
import subprocess
import sys
import tempfile

from . import ROOT, THREADS, SlowBenchmark, cold_start

COLD_START = (
    "import numpy as np\n"
    "import fastrnn\n"
    "from fastrnn.nn import LSTM\n"
    "lstm = LSTM(12, 64, random_state=0)\n"
    "lstm.forward(np.zeros((1, 20, 12), np.float32))\n"
)
IMPORT_ONLY = "import fastrnn\n"


def _run(code, *args, **extra_env):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("FASTRNN_BACKEND", None)
    env.update(extra_env)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(THREADS)
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=env)


class ColdStart(SlowBenchmark):
    repeat = (3, 10, 30.0)
    timeout = 300

    def setup(self):
        _run(COLD_START)  # fill the Numba on-disk cache once, outside the timing

    def time_import(self):
        """import fastrnn + build an LSTM + forward once, in a fresh process."""
        _run(COLD_START)

    def time_import_only(self):
        _run(IMPORT_ONLY)


LOAD_PREDICT = (
    "import sys\n"
    "import numpy as np\n"
    "import fastrnn\n"
    "fastrnn.load(sys.argv[1]).predict(np.load(sys.argv[2]))\n"
)


class LoadPredict(SlowBenchmark):
    """``import fastrnn`` + ``fastrnn.load`` + ``predict`` of one sequence in a fresh process."""
    repeat = (3, 10, 30.0)
    timeout = 300
    params = ["auto", "numba"]
    param_names = ["backend"]

    def setup(self, backend):
        self._dir = tempfile.TemporaryDirectory()
        self.model, self.x = cold_start.fit_model(self._dir.name)
        self.env = {} if backend == "auto" else {"FASTRNN_BACKEND": backend}
        _run(LOAD_PREDICT, self.model, self.x, **self.env)  # fills the Numba cache where used

    def teardown(self, backend):
        self._dir.cleanup()

    def time_load_predict(self, backend):
        _run(LOAD_PREDICT, self.model, self.x, **self.env)
