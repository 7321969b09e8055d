"""Cold start: a fresh process imports fastrnn, loads a saved classifier and predicts one sequence.

Usage::

    python benchmarks/cold_start.py [--repeats 7] [--json cold_start.json]

A small LSTM classifier (64 hidden units, 12 features) is fitted once and saved; then, for each
setting, ``--repeats`` fresh interpreters each time ``import fastrnn``, load the model and
``predict`` one 30-step sequence, and report the parts and the total (medians; the interpreter's
own start-up is reported apart). Settings:

``predictor``
    ``fastrnn.load_predictor(path)``: the model loaded for prediction only, without scikit-learn
    (and, with the Cython backend built, without Numba);
``auto``
    ``fastrnn.load(path)``, the estimator itself;
    with the Cython backend built, a one-sequence prediction runs on it, and Numba is never
    imported;
``numba``
    ``FASTRNN_BACKEND=numba``, after one process has filled Numba's on-disk cache (``cache=True``):
    the start-up of a second process.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

CHILD = r"""
import time, sys
t0 = time.perf_counter()
import fastrnn
t1 = time.perf_counter()
model = (fastrnn.load_predictor if sys.argv[3] == "predictor" else fastrnn.load)(sys.argv[1])
t2 = time.perf_counter()
import numpy as np
x = np.load(sys.argv[2])
model.predict(x)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, "numba" in sys.modules, "sklearn" in sys.modules)
"""


#: (name, loader, environment) of each measured setting
SETTINGS = (("predictor", "predictor", {}), ("auto", "load", {}),
            ("numba", "load", {"FASTRNN_BACKEND": "numba"}))


def fit_model(directory):
    """Fit and save the small LSTM classifier; return the paths of the model and of one input
    sequence (shape (1, 30, 12))."""
    import numpy as np

    from fastrnn.estimators import RNNClassifier

    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 30, 12))
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
    path = os.path.join(directory, "clf.fastrnn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs: only the timing matters here
        RNNClassifier(hidden_size=64, max_iter=2, random_state=0).fit(X, y).save(path)
    xpath = os.path.join(directory, "x.npy")
    np.save(xpath, X[:1])
    return path, xpath


def _child(env, path, xpath, loader):
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, path, xpath, loader], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    wall = time.perf_counter() - t
    imp, load, pred = map(float, out[:3])
    return dict(wall=wall, import_=imp, load=load, predict=pred, total=imp + load + pred,
                numba_imported=out[3] == "True", sklearn_imported=out[4] == "True")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", help="also write the results there")
    args = ap.parse_args(argv)
    base = dict(os.environ)
    base.pop("FASTRNN_BACKEND", None)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        base.setdefault(var, "1")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter = time.perf_counter() - t
    results = {"interpreter_start_s": interpreter}
    with tempfile.TemporaryDirectory() as d:
        path, xpath = fit_model(d)
        for name, loader, extra in SETTINGS:
            env = dict(base, **extra)
            _child(env, path, xpath, loader)  # fills the Numba cache where Numba is used
            runs = [_child(env, path, xpath, loader) for _ in range(args.repeats)]
            results[name] = {k: (statistics.median(r[k] for r in runs)
                                 if not k.endswith("_imported") else runs[0][k])
                             for k in runs[0]}
    print(f"interpreter start-up alone: {interpreter * 1e3:.0f} ms")
    print(f"{'setting':9} {'import':>8} {'load':>8} {'predict':>8} {'total':>8}  imported: numba "
          "scikit-learn")
    for name, _, _ in SETTINGS:
        r = results[name]
        print(f"{name:9} {r['import_']:8.3f} {r['load']:8.3f} {r['predict']:8.3f} "
              f"{r['total']:8.3f}            {str(r['numba_imported']):5} "
              f"{r['sklearn_imported']}")
    print("(seconds, medians of", args.repeats, "fresh processes; total = import + load + predict)")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
        os.replace(tmp, args.json)
    return results


if __name__ == "__main__":
    main()
