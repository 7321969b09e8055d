"""Serving one sequence: a saved classifier's ``predict_proba`` in fastrnn against the same model
exported to ONNX and run by ONNX Runtime, on one thread.

Usage::

    python benchmarks/serving.py [--repeats 200] [--json serving.json]

An LSTM classifier (64 hidden units, 12 features, 3 classes) is fitted briefly on random data and
saved; :func:`fastrnn.load_predictor` loads it, :func:`fastrnn.onnx.export` writes it as ONNX, and
both predict the class probabilities of one 30-step sequence. The calls alternate (one of each per
round) and the script reports the median time of each and their ratio, after checking that the two
give the same probabilities (to 1e-5). Threads: one for every library (``OMP_NUM_THREADS=1`` and
ONNX Runtime's intra-op threads), set before numpy is imported.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def build(directory):
    """Fit, save and export the classifier; return (predictor, ONNX session, one sequence)."""
    import onnxruntime as ort

    import fastrnn
    from fastrnn import RNNClassifier
    from fastrnn.onnx import export

    rng = np.random.RandomState(0)
    X = rng.normal(size=(96, 30, 12)).astype(np.float32)
    y = rng.randint(0, 3, 96)
    path = os.path.join(directory, "clf.fastrnn")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short fit: only the timing matters here
        clf = RNNClassifier(hidden_size=64, bidirectional=False, max_iter=2, random_state=0)
        clf.fit(X, y).save(path)
    onnx_path = os.path.join(directory, "clf.onnx")
    export(clf, onnx_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    return fastrnn.load_predictor(path), sess, X[:1]


def measure(repeats=200):
    """Interleaved timings of one-sequence ``predict_proba``; returns a dict of results."""
    with tempfile.TemporaryDirectory() as d:
        model, sess, x = build(d)
        feed = {"X": x, "lengths": np.array([x.shape[1]], np.int64)}
        names = [o.name for o in sess.get_outputs()]
        want = model.predict_proba(x)
        got = sess.run(None, feed)[names.index("probabilities")]
        error = float(np.abs(np.asarray(got, np.float64) - want).max())
        if error > 1e-5:
            raise RuntimeError(f"ONNX Runtime and fastrnn disagree by {error:.2e}")
        calls = {"fastrnn": lambda: model.predict_proba(x),
                 "onnxruntime": lambda: sess.run(None, feed)}
        times = {k: [] for k in calls}
        for fn in calls.values():
            for _ in range(20):  # warm-up
                fn()
        for _ in range(repeats):
            for name, fn in calls.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        backend = model.network_.rnn.last_backend_
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(median_s=med, ratio=med["fastrnn"] / med["onnxruntime"], max_abs_error=error,
                fastrnn_backend=backend, repeats=repeats)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--repeats", type=int, default=200, help="calls of each, after 20 warm-up calls")
    ap.add_argument("--json", help="also write the results there")
    args = ap.parse_args(argv)
    res = measure(args.repeats)
    for name, t in res["median_s"].items():
        print(f"{name:12s} {t * 1e6:9.1f} us per call (median of {args.repeats})")
    print(f"fastrnn / onnxruntime: {res['ratio']:.2f} (fastrnn on {res['fastrnn_backend']}; "
          f"largest difference of the probabilities {res['max_abs_error']:.1e})")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
