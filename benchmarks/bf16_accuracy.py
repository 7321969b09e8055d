"""Does bf16 training (``precision="bf16"``) learn as well as float32? Two checks, each fitting
the same model with the same seed in both precisions, after the same number of steps:

* ``vowels``: ``RNNClassifier(random_state=seed, precision=...)`` on JapaneseVowels (the archive's
  split), test accuracy of every seed, and the mean over the seeds;
* ``lm``: the Shakespeare character language model ``RNNLanguageModel(embedding_dim=64,
  hidden_size=256, dropout=0, batch_size=32, bptt=64, clip_norm=5, max_iter=epochs)`` (Adam),
  fitted on the 39 training texts; bits per character on the test plays (Macbeth, The Tempest)
  and on the validation play (Hamlet).

Accuracy only: the fits run on one thread each (``--threads``), and their wall times, printed
for reference, are not comparable unless the machine was quiet (``benchmarks/compare.py`` times
the steps). Usage::

    python benchmarks/bf16_accuracy.py                      # both, seeds 0-9, one epoch
    python benchmarks/bf16_accuracy.py --parts lm --epochs 3
"""

import argparse
import os
import sys
import time


def _threads(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=1)
    n = str(pre.parse_known_args(argv)[0].threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = n


_threads(sys.argv[1:])  # before numpy and numba are imported

import numpy as np  # noqa: E402

PRECISIONS = ("float32", "bf16")


def vowels(seeds):
    from fastrnn import RNNClassifier
    from fastrnn.datasets import load_japanese_vowels

    X, y = load_japanese_vowels("train")
    X_test, y_test = load_japanese_vowels("test")
    for prec in PRECISIONS:
        acc, seconds = [], []
        for seed in seeds:
            t = time.perf_counter()
            clf = RNNClassifier(random_state=seed, precision=prec).fit(X, y)
            seconds.append(time.perf_counter() - t)
            acc.append(100 * clf.score(X_test, y_test))
        print(f"JapaneseVowels {prec:8s} mean {np.mean(acc):.2f} % (min {min(acc):.2f}, max "
              f"{max(acc):.2f}); seeds {' '.join(f'{a:.2f}' for a in acc)}; "
              f"{np.mean(seconds):.1f} s per fit", flush=True)


def language_model(epochs, seed):
    from fastrnn import RNNLanguageModel
    from fastrnn.datasets import shakespeare_splits

    texts = shakespeare_splits()
    for prec in PRECISIONS:
        t = time.perf_counter()
        lm = RNNLanguageModel(embedding_dim=64, hidden_size=256, dropout=0.0, batch_size=32,
                              bptt=64, clip_norm=5.0, max_iter=epochs, random_state=seed,
                              precision=prec, ngram_order=None).fit(texts["train"])
        seconds = time.perf_counter() - t
        print(f"Shakespeare {prec:8s} {epochs} epoch(s): test {lm.bits_per_token(texts['test']):.4f}"
              f" bits/char, validation {lm.bits_per_token(texts['validation']):.4f}; "
              f"fit {seconds:.0f} s", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", nargs="+", choices=["vowels", "lm"], default=["vowels", "lm"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10)),
                    help="seeds of the classifier (default 0-9)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs of the language model")
    ap.add_argument("--lm-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="threads of every pool (default 1)")
    args = ap.parse_args(argv)
    if "vowels" in args.parts:
        vowels(args.seeds)
    if "lm" in args.parts:
        language_model(args.epochs, args.lm_seed)


if __name__ == "__main__":
    main()
