#!/usr/bin/env python
"""Write ``tests/data/compat``: the results of ``tests/_compat_cases.py`` on the current code.

Run it only when results are meant to change (and say so in CHANGELOG.md); ``tests/test_compat.py``
checks that today's code reproduces what is stored. Two kinds of expectations are kept apart:
``est/<file>/...`` are the predictions of the saved model files (loading an old file must always
give them), ``fit/<file>/...`` those of a fresh fit with the same seed (they change when training
changes on purpose). ``--refit NAME ...`` rewrites only the ``fit/`` results of those estimators
(``lm.fastrnn`` for the language model), leaving the saved files and everything else as they are.
``--regrad NAME ...`` rewrites only the ``est/<NAME>/netgrad/`` results: the gradients that the
backward computes for a saved model, which change when the backward's arithmetic changes on
purpose (its predictions must not).
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


def refit(names):
    """Rewrite the ``fit/`` results of ``names`` only."""
    stored = dict(np.load(OUT / "results.npz"))
    for name in names:
        stored = {k: v for k, v in stored.items() if not k.startswith(f"fit/{name}/")}
        if name == "lm.fastrnn":
            out = cases.lm_outputs(cases.fit_lm())
        else:
            out = cases.estimator_outputs(cases.fit_estimator(name), name)
        stored.update({f"fit/{name}/{k}": v for k, v in out.items()})
    np.savez_compressed(OUT / "results.npz", **stored)
    print(f"rewrote the fit results of {', '.join(names)}")


def regrad(names):
    """Rewrite the ``est/<name>/netgrad/`` results of the saved estimators ``names`` only."""
    import fastrnn

    stored = dict(np.load(OUT / "results.npz"))
    for name in names:
        prefix = f"est/{name}/netgrad/"
        out = cases.estimator_outputs(fastrnn.load(OUT / name), name)
        stored = {k: v for k, v in stored.items() if not k.startswith(prefix)}
        stored.update({f"est/{name}/{k}": v for k, v in out.items() if k.startswith("netgrad/")})
    np.savez_compressed(OUT / "results.npz", **stored)
    print(f"rewrote the gradients of the saved {', '.join(names)}")


def main():
    warnings.simplefilter("ignore")
    if len(sys.argv) > 2 and sys.argv[1] == "--refit":
        return refit(sys.argv[2:])
    if len(sys.argv) > 2 and sys.argv[1] == "--regrad":
        return regrad(sys.argv[2:])
    OUT.mkdir(parents=True, exist_ok=True)
    results = cases.all_layer_cases(["numpy", "numba", "cython"])
    for fname, *_ in cases.ESTIMATORS:
        model = cases.fit_estimator(fname)
        model.save(OUT / fname)
        for kind in ("est", "fit"):
            results.update({f"{kind}/{fname}/{k}": v
                            for k, v in cases.estimator_outputs(model, fname).items()})
    lm = cases.fit_lm()
    lm.save(OUT / "lm.fastrnn")
    for kind in ("est/lm.fastrnn", "fit/lm.fastrnn"):
        results.update({f"{kind}/{k}": v for k, v in cases.lm_outputs(lm).items()})
    np.savez_compressed(OUT / "results.npz", **results)
    (OUT / "machine.json").write_text(json.dumps(
        {"signature": cases.machine_signature(), "numpy": np.__version__}, indent=1) + "\n")
    print(f"wrote {len(results)} arrays to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
