"""A grid search on a two-worker local Dask cluster against the same search run sequentially.

Usage::

    pip install "fastrnn[dask]"
    python benchmarks/scaleout.py [--max-iter 10] [--workers 2] [--cold]

``GridSearchCV`` over four candidates (``hidden_size`` 16 or 32, ``cell`` LSTM or GRU, 3-fold)
on the JapaneseVowels training split (270 series, 12 channels):

* sequentially (``n_jobs=1``) in this process with one kernel thread and one BLAS thread, the
  setting of each Dask worker, so the scores must be identical to the cluster's (the script
  checks it);
* sequentially with fastrnn's default threads (one per core), what a user runs without a
  cluster;
* under ``joblib.parallel_backend("dask")`` on a ``LocalCluster`` of ``--workers`` processes of
  one thread each (the nanny gives each ``OMP_NUM_THREADS=1``, which fastrnn follows);
* the same on a second cluster whose workers run without Dask's statistical profiler
  (``distributed.worker.profile.enabled: False``), which otherwise samples the stack of every
  worker thread every 10 ms.

This process loads the kernels of both cells before it times anything, and so do the workers
(:func:`fastrnn.dask.warm_up`) unless ``--cold`` is given; the cluster's start-up and the warm-up
are reported apart. It prints the wall time of each run and the speed-ups.
"""

import argparse
import os
import time

os.environ.pop("FASTRNN_NUM_THREADS", None)
os.environ.pop("OMP_NUM_THREADS", None)

import numpy as np  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, default=10, help="epochs per fit")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--cold", action="store_true",
                        help="do not warm the workers up: their first tasks load the kernels")
    args = parser.parse_args(argv)

    import warnings

    import dask
    from distributed import Client, LocalCluster
    from joblib import parallel_backend
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    import fastrnn
    import fastrnn.dask
    from fastrnn import RNNClassifier
    from fastrnn.datasets import load_japanese_vowels

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_japanese_vowels("train")
    grid = {"hidden_size": [16, 32], "cell": ["lstm", "gru"]}
    cells = grid["cell"]

    def search(n_jobs):
        model = RNNClassifier(max_iter=args.max_iter, random_state=0)
        return GridSearchCV(model, grid, cv=3, n_jobs=n_jobs, refit=False)

    fastrnn.warm_up(cells=cells)

    fastrnn.set_num_threads(1)
    with threadpool_limits(1):
        t0 = time.perf_counter()
        sequential = search(1).fit(X, y)
        t_seq1 = time.perf_counter() - t0
    fastrnn.set_num_threads(None)
    default_threads = fastrnn.num_threads()
    t0 = time.perf_counter()
    search(1).fit(X, y)
    t_seq = time.perf_counter() - t0

    def on_cluster(profile):
        """The search on a fresh cluster; ``profile``: Dask's statistical profiler on (its
        default) or off in the workers."""
        t0 = time.perf_counter()
        with dask.config.set({"distributed.worker.profile.enabled": profile}):
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                   dashboard_address=None)
        client = Client(cluster)
        t_start = time.perf_counter() - t0
        t_warm = 0.0
        try:
            if not args.cold:
                t0 = time.perf_counter()
                fastrnn.dask.warm_up(client, cells=cells)
                t_warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            with parallel_backend("dask"):
                result = search(args.workers).fit(X, y)
            return result, time.perf_counter() - t0, t_start, t_warm
        finally:
            client.close()
            cluster.close()

    distributed, t_dask, t_start, t_warm = on_cluster(profile=True)
    quiet, t_quiet, _, _ = on_cluster(profile=False)

    same = all(np.array_equal(sequential.cv_results_["mean_test_score"],
                              d.cv_results_["mean_test_score"]) for d in (distributed, quiet))
    print(f"JapaneseVowels train ({len(X)} series), 4 candidates x 3 folds, "
          f"max_iter={args.max_iter}, cpu_count={os.cpu_count()}")
    print(f"n_jobs=1, 1 thread                 {t_seq1:8.2f} s")
    print(f"n_jobs=1, {default_threads} threads                {t_seq:8.2f} s")
    warm = "cold workers" if args.cold else f"+ {t_warm:.2f} s to warm the workers up"
    print(f"dask, {args.workers} workers x 1 thread        {t_dask:8.2f} s   "
          f"(+ {t_start:.2f} s to start the cluster, {warm})")
    print(f"speed-up over 1 thread             {t_seq1 / t_dask:8.2f}x")
    print(f"speed-up over {default_threads} threads            {t_seq / t_dask:8.2f}x")
    print(f"dask, worker profiler off          {t_quiet:8.2f} s")
    print(f"speed-up over 1 thread             {t_seq1 / t_quiet:8.2f}x")
    print(f"speed-up over {default_threads} threads            {t_seq / t_quiet:8.2f}x")
    print(f"scores identical to the 1-thread run: {same}")
    if not same:
        raise SystemExit("the Dask search gave other scores than the sequential one")


if __name__ == "__main__":
    main()
