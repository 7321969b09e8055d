"""A grid search on a two-worker local Dask cluster against the same search run sequentially.

Usage::

    pip install "fastrnn[dask]"
    python benchmarks/scaleout.py [--max-iter 10] [--workers 2]

``GridSearchCV`` over four candidates (``hidden_size`` 16 or 32, ``cell`` LSTM or GRU, 3-fold)
on the JapaneseVowels training split (270 series, 12 channels), once with ``n_jobs=1`` in this
process and once under ``joblib.parallel_backend("dask")`` on a ``LocalCluster`` with
``--workers`` processes of one thread each. Both runs use one kernel thread per process (set
before Numba loads, and passed to the workers), so their scores must be identical: the script
checks it. It prints the wall time of each run (the cluster's start-up reported apart), and the
speed-up.
"""

import argparse
import os
import time

# one kernel thread per process, here and in the workers (which inherit the environment)
os.environ["NUMBA_NUM_THREADS"] = "1"
os.environ.pop("FASTRNN_NUM_THREADS", None)

import numpy as np  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=10, help="epochs per fit")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    args = parser.parse_args(argv)

    import warnings

    from distributed import Client, LocalCluster
    from joblib import parallel_backend
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from fastrnn import RNNClassifier
    from fastrnn.datasets import load_japanese_vowels

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_japanese_vowels("train")
    grid = {"hidden_size": [16, 32], "cell": ["lstm", "gru"]}

    def search(n_jobs):
        model = RNNClassifier(max_iter=args.max_iter, random_state=0)
        return GridSearchCV(model, grid, cv=3, n_jobs=n_jobs, refit=False)

    # compile the kernels once, so that neither run pays for it (the workers load the cache)
    RNNClassifier(max_iter=1, hidden_size=4, random_state=0).fit(X[::10], y[::10])  # every class

    t0 = time.perf_counter()
    sequential = search(1).fit(X, y)
    t_seq = time.perf_counter() - t0

    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster)
    t_start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        with parallel_backend("dask"):
            distributed = search(args.workers).fit(X, y)
        t_dask = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()

    same = np.array_equal(sequential.cv_results_["mean_test_score"],
                          distributed.cv_results_["mean_test_score"])
    print(f"JapaneseVowels train ({len(X)} series), 4 candidates x 3 folds, "
          f"max_iter={args.max_iter}, cpu_count={os.cpu_count()}")
    print(f"n_jobs=1                      {t_seq:8.2f} s")
    print(f"dask, {args.workers} workers x 1 thread     {t_dask:8.2f} s   "
          f"(+ {t_start:.2f} s to start the cluster)")
    print(f"speed-up                      {t_seq / t_dask:8.2f}x")
    print(f"scores identical: {same}")
    if not same:
        raise SystemExit("the Dask search gave other scores than the sequential one")


if __name__ == "__main__":
    main()
