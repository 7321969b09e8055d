"""One-sequence latency: fastrnn float32 and int8 against ONNX Runtime and PyTorch, and what int8
costs in accuracy.

Usage::

    python benchmarks/latency.py [--repeats 300] [--threads 1 2] [--json latency.json]
    python benchmarks/latency.py --accuracy [--lm-budget 120]      # the accuracy side too
    python benchmarks/latency.py --quick                           # a smoke run

Timing: the forward of one sequence (batch 1, T 100, I 64, H 128) of an LSTM, a GRU and a simple
RNN with the same weights in

* ``fastrnn f32``: ``layer.infer`` on the Cython backend's one-call kernel;
* ``fastrnn int8``, ``fastrnn bf16``: the same layer after ``layer.quantize("int8")`` (or
  ``"bf16"``);
* ``ort``: the layer exported by :func:`fastrnn.onnx.export`, run by ONNX Runtime (CPU);
* ``torch``: ``torch.nn.LSTM`` (``GRU``, ``RNN``) holding the same weights, under
  ``torch.inference_mode()``.

Each thread count runs in its own process, with ``OMP_NUM_THREADS`` (and the other libraries'
variables) set before anything is imported, ONNX Runtime's intra-op threads and
``torch.set_num_threads`` set to it; fastrnn's one-sequence kernel uses one thread whatever the
count. The outputs are checked against each other first (float32: 1e-4; int8: its largest
deviation is reported). Then the contenders are called in turn, one call each per round, for
``--repeats`` rounds after a warm-up, and each is reported by its median and its ratio to ONNX
Runtime's median in the same run.

Accuracy (``--accuracy``): the JapaneseVowels classifier (``RNNClassifier()`` with its defaults,
fitted on the archive's training split) scored on the test split in float32 and int8
(``clf.quantize("int8")``); a character-level language model of Shakespeare
(``RNNLanguageModel(level="char")``, fitted for ``--lm-budget`` seconds) and its perplexity on the
test text in float32 and int8. The data sets are read through :mod:`fastrnn.datasets`.
"""

import argparse
import json
import os
import subprocess
import sys

CELLS = ("LSTM", "GRU", "RNN")
SHAPE = dict(T=100, I=64, H=128)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


# ----------------------------------------------------------------------------- one thread count
def _contenders(cell, threads, seed=0):
    """The callables of one cell, and the largest differences of their outputs."""
    import tempfile

    import numpy as np

    import fastrnn.nn as fnn

    T, I, H = SHAPE["T"], SHAPE["I"], SHAPE["H"]
    rng = np.random.default_rng(seed)
    layer = getattr(fnn, cell)(I, H, random_state=seed, backend="cython").eval()
    low = {}
    for precision in ("int8", "bf16"):
        q = getattr(fnn, cell)(I, H, random_state=seed, backend="cython").eval()
        q.load_state_dict(layer.params)
        low[precision] = q.quantize(precision)
    x = rng.normal(size=(1, T, I)).astype(np.float32)
    want = layer.infer(x)[0]
    fns = {"fastrnn f32": lambda: layer.infer(x), "fastrnn int8": lambda: low["int8"].infer(x),
           "fastrnn bf16": lambda: low["bf16"].infer(x)}
    errors = {f"fastrnn {p}": float(np.abs(q.infer(x)[0] - want).max()) for p, q in low.items()}
    skipped = {}
    try:
        import onnxruntime as ort

        from fastrnn.onnx import export

        path = os.path.join(tempfile.mkdtemp(), f"{cell}.onnx")
        export(layer, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        feed = {"X": x, "lengths": np.array([T], np.int64)}
        errors["ort"] = float(np.abs(sess.run(None, feed)[0] - want).max())
        fns["ort"] = lambda: sess.run(None, feed)
    except ImportError as exc:
        skipped["ort"] = f"not installed ({exc})"
    try:
        import torch

        torch.set_num_threads(threads)
        module = getattr(torch.nn, cell)(I, H, batch_first=True)
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.params.items()})
        module.eval()
        xt = torch.from_numpy(x)

        def run_torch():
            with torch.inference_mode():
                return module(xt)

        errors["torch"] = float(np.abs(run_torch()[0].numpy() - want).max())
        fns["torch"] = run_torch
    except ImportError as exc:
        skipped["torch"] = f"not installed ({exc})"
    for name in ("ort", "torch"):
        if errors.get(name, 0.0) > 1e-4:
            raise RuntimeError(f"{cell}: {name} and fastrnn disagree by {errors[name]:.2e}")
    return fns, errors, skipped


def _interleaved(fns, repeats, warmup):
    """Median seconds of each callable, called in turn once per round."""
    import statistics
    import time

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def worker(threads, repeats, warmup):
    """The timings of every cell at ``threads`` threads (run in a process of its own)."""
    from fastrnn._cy import _infer

    rows = []
    for cell in CELLS:
        fns, errors, skipped = _contenders(cell, threads)
        med = _interleaved(fns, repeats, warmup)
        ratio = {k: v / med["ort"] for k, v in med.items()} if "ort" in med else {}
        rows.append(dict(cell=cell, threads=threads, median_s=med, ratio_to_ort=ratio,
                         max_abs_diff=errors, skipped=skipped))
    return dict(threads=threads, isa=_infer.isa(), rows=rows)


def run_threads(threads, repeats, warmup):
    """:func:`worker` in a fresh process with the thread variables set before any import."""
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARS})
    out = subprocess.run([sys.executable, __file__, "--worker", str(threads), "--repeats",
                          str(repeats), "--warmup", str(warmup)], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the {threads}-thread run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- accuracy
def accuracy(lm_budget, quick=False):
    """int8 against float32: JapaneseVowels test accuracy, Shakespeare test perplexity."""
    import warnings

    from fastrnn import RNNClassifier, RNNLanguageModel
    from fastrnn.datasets import load_japanese_vowels, shakespeare_splits

    X_tr, y_tr = load_japanese_vowels("train")
    X_te, y_te = load_japanese_vowels("test")
    if quick:
        X_tr, y_tr, X_te, y_te = X_tr[:60], y_tr[:60], X_te[:60], y_te[:60]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = RNNClassifier(random_state=0, **({"max_iter": 2} if quick else {})).fit(X_tr, y_tr)
    qclf = clf.quantize("int8")
    vowels = dict(float32=float(clf.score(X_te, y_te)), int8=float(qclf.score(X_te, y_te)),
                  agreement=float((clf.predict(X_te) == qclf.predict(X_te)).mean()),
                  n_test=len(y_te))
    splits = shakespeare_splits()
    train, test = splits["train"], splits["test"]
    if quick:
        train, test = [t[:20000] for t in train[:2]], [t[:5000] for t in test]
    # the network alone: an n-gram part would hide what int8 changes
    lm = RNNLanguageModel(level="char", hidden_size=128, embedding_dim=32, max_iter=50,
                          time_budget=lm_budget, random_state=0, ngram_order=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lm.fit(train)
    qlm = lm.quantize("int8")
    lm_res = dict(float32=float(lm.perplexity(test)), int8=float(qlm.perplexity(test)),
                  budget_s=lm_budget, hidden_size=128, test_chars=sum(map(len, test)))
    return dict(japanese_vowels_accuracy=vowels, shakespeare_char_perplexity=lm_res)


# ---------------------------------------------------------------------------------- reporting
def report(res):
    lines = []
    for run in res["timing"]:
        isa = run["isa"]
        lines.append(f"threads {run['threads']} (fastrnn kernels: float32 {isa['float32']}, "
                     f"int8 {isa['int8']}, bf16 {isa['bf16']})")
        for row in run["rows"]:
            parts = []
            for name, t in row["median_s"].items():
                r = row["ratio_to_ort"].get(name)
                parts.append(f"{name} {t * 1e6:7.1f} us" + (f" ({r:.2f}x ort)" if r else ""))
            lines.append(f"  {row['cell']:4s} " + ", ".join(parts))
            lines.append(f"       largest output difference: int8 "
                         f"{row['max_abs_diff']['fastrnn int8']:.1e}, bf16 "
                         f"{row['max_abs_diff']['fastrnn bf16']:.1e}")
    acc = res.get("accuracy")
    if acc:
        v, p = acc["japanese_vowels_accuracy"], acc["shakespeare_char_perplexity"]
        lines.append(f"JapaneseVowels test accuracy: float32 {v['float32']:.4f}, int8 "
                     f"{v['int8']:.4f} (same label on {v['agreement']:.1%} of {v['n_test']})")
        lines.append(f"Shakespeare test perplexity per character: float32 {p['float32']:.4f}, "
                     f"int8 {p['int8']:.4f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--repeats", type=int, default=300, help="rounds of calls, after the warm-up")
    ap.add_argument("--warmup", type=int, default=30, help="rounds of calls not timed")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--accuracy", action="store_true", help="also the accuracy of int8")
    ap.add_argument("--lm-budget", type=float, default=120.0,
                    help="seconds of training of the language model (with --accuracy)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: few repeats, small data, short fits")
    ap.add_argument("--json", help="also write the results there")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.repeats, args.warmup)))
        return None
    if args.quick:
        args.repeats, args.warmup, args.lm_budget = 10, 2, 5.0
    for name, v in (("--repeats", args.repeats), ("--warmup", args.warmup)):
        if v < 1:
            raise SystemExit(f"{name} must be at least 1, got {v}.")
    if any(n < 1 for n in args.threads):
        raise SystemExit(f"--threads must be positive, got {args.threads}.")
    res = dict(shape=SHAPE, timing=[run_threads(n, args.repeats, args.warmup)
                                    for n in args.threads])
    if args.accuracy:
        res["accuracy"] = accuracy(args.lm_budget, args.quick)
    print(report(res))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    main()
