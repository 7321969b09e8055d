"""The machinery behind ``benchmarks/compare.py`` (and the other benchmark scripts).

Modules, from the bottom up:

``harness``
    how to measure, whatever is measured: the thread settings of a fresh worker process, the
    interleaved timing loop and its medians, the matrix-product rate, the machine's description;
``workloads``
    what is measured: the shapes of every workload, the language model's sizes, the names of the
    configurations on the command line, the FLOPs of a forward;
``impls``
    the recurrent layers under test (fastrnn, PyTorch, ONNX Runtime) built with one set of weights,
    and the checks that they agree;
``lm``
    the char language model in fastrnn and in PyTorch, from the same weights;
``runs``
    one workload checked, timed and turned into a row of the results;
``memory``
    the peak memory of one training step, each in a fresh process;
``report``
    the tables (plain text or reStructuredText) and the rewriting of a documentation page;
``chart``
    the bar chart of a run (fastrnn, PyTorch and ONNX Runtime relative to PyTorch), drawn with
    matplotlib when it is installed.

Importing the package puts the repository root first on ``sys.path`` when it holds ``fastrnn``, so
that the benchmarks measure this checkout, whatever is installed.
"""

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if (_ROOT / "fastrnn" / "__init__.py").is_file() and str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))  # benchmark this checkout, whatever is installed
