#!/usr/bin/env python
"""Write ``tests/data/compat``: the results of ``tests/_compat_cases.py`` on the current code.

Run it only when results are meant to change (and say so in CHANGELOG.md); ``tests/test_compat.py``
checks that today's code reproduces what is stored.
"""

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _compat_cases as cases  # noqa: E402

OUT = HERE / "data" / "compat"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    warnings.simplefilter("ignore")
    results = cases.all_layer_cases(["numpy", "numba", "cython"])
    for fname, *_ in cases.ESTIMATORS:
        model = cases.fit_estimator(fname)
        model.save(OUT / fname)
        results.update({f"est/{fname}/{k}": v for k, v in cases.estimator_outputs(model, fname).items()})
    lm = cases.fit_lm()
    lm.save(OUT / "lm.fastrnn")
    results.update({f"lm/{k}": v for k, v in cases.lm_outputs(lm).items()})
    np.savez_compressed(OUT / "results.npz", **results)
    (OUT / "machine.json").write_text(json.dumps(
        {"signature": cases.machine_signature(), "numpy": np.__version__}, indent=1) + "\n")
    print(f"wrote {len(results)} arrays to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
