"""Searches, cross-validation and batch prediction on Dask and Ray clusters started here (two
worker processes of one thread each), against the same work done sequentially in this process;
and concurrent first-time fits against one empty Numba cache.

The cluster tests skip only when Dask (``distributed``) or Ray is not installed.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from joblib import parallel_backend
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline

import fastrnn
from fastrnn import RNNClassifier
from fastrnn.datasets import make_sequence_classification
from fastrnn.text import SequenceVectorizer

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              # Ray Data warns about its own deprecated settings when it reads its context
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")]

ROOT = Path(fastrnn.__file__).resolve().parents[1]
TINY = dict(hidden_size=4, batch_size=8, learning_rate=0.05, random_state=0)


def seq_data(n=32, seed=0):
    return make_sequence_classification(n_samples=n, n_classes=2, n_features=2, min_length=2,
                                        max_length=7, random_state=seed)


def string_data(n=32, seed=0):
    """Short strings; class 1 iff they hold an 'x'."""
    rng = np.random.RandomState(seed)
    docs = ["".join(rng.choice(list("abcdef"), size=rng.randint(3, 8))) for _ in range(n)]
    labels = np.arange(n) % 2
    docs = [d[:-1] + "x" if lab else d for d, lab in zip(docs, labels)]
    return docs, labels


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")
    try:
        # the workers get the thread count their engine gives them, not the suite's pin
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None,
                                           env={"FASTRNN_NUM_THREADS": ""})
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    from ray.util.joblib import register_ray

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"FASTRNN_NUM_THREADS": ""}})
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    register_ray()
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(params=["dask", "ray"])
def joblib_cluster(request):
    """The name of a joblib backend whose cluster is running."""
    request.getfixturevalue("dask_client" if request.param == "dask" else "ray_session")
    return request.param


# ---------------------------------------------------------------------------------------------
# searches and cross-validation through joblib
# ---------------------------------------------------------------------------------------------


def test_grid_search_on_a_cluster_equals_the_sequential_one(joblib_cluster):
    X, y = seq_data()
    grid = {"hidden_size": [3, 4], "pooling": ["max", "last"]}

    def search(n_jobs):
        return GridSearchCV(RNNClassifier(max_iter=2, **TINY), grid, cv=2,
                            scoring="neg_log_loss", n_jobs=n_jobs).fit(X, y)

    here = search(1)
    with parallel_backend(joblib_cluster):
        there = search(2)
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        # log-losses: any difference in the fitted weights shows
        assert_array_equal(there.cv_results_[key], here.cv_results_[key])
    assert there.best_params_ == here.best_params_
    assert_array_equal(there.predict_proba(X), here.predict_proba(X))


def test_cross_validation_on_a_cluster_equals_the_sequential_one(joblib_cluster):
    X, y = seq_data()
    docs, labels = string_data()
    cases = [(RNNClassifier(max_iter=3, **TINY), X, y),
             (make_pipeline(SequenceVectorizer(analyzer="char"),
                            RNNClassifier(embedding_dim=4, max_iter=2, **TINY)), docs, labels)]
    for model, data, target in cases:
        here = cross_validate(model, data, target, cv=2, scoring="neg_log_loss",
                              return_estimator=True, n_jobs=1)
        here_scores = cross_val_score(model, data, target, cv=2, scoring="neg_log_loss")
        with parallel_backend(joblib_cluster):
            there = cross_validate(model, data, target, cv=2, scoring="neg_log_loss",
                                   return_estimator=True, n_jobs=2)
            there_scores = cross_val_score(model, data, target, cv=2,
                                           scoring="neg_log_loss", n_jobs=2)
        assert_array_equal(there["test_score"], here["test_score"])
        assert_array_equal(there_scores, here_scores)
        for a, b in zip(there["estimator"], here["estimator"]):
            assert_array_equal(a.predict_proba(data), b.predict_proba(data))


# ---------------------------------------------------------------------------------------------
# fastrnn.dask
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    X, y = make_sequence_classification(n_samples=30, n_classes=3, n_features=2, min_length=2,
                                        max_length=6, random_state=1)
    return RNNClassifier(max_iter=3, **TINY).fit(X, y), X, y


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_dask_predict_on_a_bag_of_ragged_sequences(dask_client, fitted, method):
    import dask.bag as db
    from fastrnn import dask as fdask

    clf, X, _ = fitted
    out = fdask.predict(clf, db.from_sequence(X, npartitions=4), method=method)
    assert isinstance(out, db.Bag)  # lazy
    got = np.asarray(out.compute())
    assert_array_equal(got, getattr(clf, method)(X))


def test_dask_predict_on_raw_strings_through_a_pipeline(dask_client):
    import dask.bag as db
    from fastrnn import dask as fdask

    docs, labels = string_data()
    pipe = make_pipeline(SequenceVectorizer(analyzer="char"),
                         RNNClassifier(embedding_dim=4, max_iter=2, **TINY)).fit(docs, labels)
    got = np.stack(fdask.predict(pipe, db.from_sequence(docs, npartitions=3),
                                 method="predict_proba").compute())
    assert_array_equal(got, pipe.predict_proba(docs))


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_dask_predict_on_an_array_of_fixed_length_sequences(dask_client, fitted, method):
    import dask.array as da
    from fastrnn import dask as fdask

    clf, X, _ = fitted
    Xf = np.stack([np.resize(x, (5, 2)) for x in X])
    # chunked along time and features too: each block must still get whole sequences
    out = fdask.predict(clf, da.from_array(Xf, chunks=(7, 2, 1)), method=method)
    assert isinstance(out, da.Array)
    expected = getattr(clf, method)(Xf)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert out.chunks[0] == (7, 7, 7, 7, 2)
    assert_array_equal(out.compute(), expected)


def test_dask_predict_ships_the_model_once(fitted):
    pytest.importorskip("dask")
    import dask.bag as db
    from fastrnn import dask as fdask

    clf, X, _ = fitted
    out = fdask.predict(clf, db.from_sequence(X, npartitions=5))
    graph = dict(out.__dask_graph__())
    holding = [k for k, v in graph.items() if v is clf or getattr(v, "value", None) is clf]
    assert len(holding) == 1, "the model should be one node of the graph, shared by all tasks"


def test_dask_fit_incremental_equals_partial_fit_by_hand(dask_client):
    import dask.bag as db
    from fastrnn import dask as fdask

    X, y = make_sequence_classification(n_samples=36, n_classes=3, n_features=2, min_length=2,
                                        max_length=6, random_state=2)
    X_bag = db.from_sequence(X, npartitions=3)
    y_bag = db.from_sequence(list(y), npartitions=3)
    model = RNNClassifier(**TINY)
    returned = fdask.fit_incremental(model, X_bag, y_bag, epochs=2, classes=[0, 1, 2])
    assert returned is model

    by_hand = RNNClassifier(**TINY)
    parts = [(list(xp.compute()), list(yp.compute()))
             for xp, yp in zip(X_bag.to_delayed(), y_bag.to_delayed())]
    assert sum(len(p[0]) for p in parts) == len(X) and len(parts) == 3
    for epoch in range(2):
        for i, (xp, yp) in enumerate(parts):
            by_hand.partial_fit(xp, yp, classes=[0, 1, 2] if epoch == i == 0 else None)
    assert_array_equal(model.predict_proba(X), by_hand.predict_proba(X))
    assert_array_equal(model.classes_, by_hand.classes_)


def test_dask_bad_input_is_named(fitted):
    pytest.importorskip("dask")
    import dask.array as da
    import dask.bag as db
    from fastrnn import dask as fdask

    clf, X, y = fitted
    with pytest.raises(TypeError, match="dask.bag.Bag"):
        fdask.predict(clf, X)
    with pytest.raises(ValueError, match="method must be one of"):
        fdask.predict(clf, db.from_sequence(X), method="fit")
    with pytest.raises(ValueError, match="4 dimension"):
        fdask.predict(clf, da.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="dtype <U1"):
        fdask.predict(clf, da.from_array(np.array([["a", "b"]])))
    with pytest.raises(ValueError, match="npartitions"):
        fdask.fit_incremental(clone(clf), db.from_sequence(X, npartitions=2),
                              db.from_sequence(list(y), npartitions=3))
    with pytest.raises(ValueError, match="epochs"):
        fdask.fit_incremental(clone(clf), db.from_sequence(X), db.from_sequence(list(y)),
                              epochs=0)


@pytest.mark.parametrize("module, extra", [("dask", "dask"), ("ray", "ray")])
def test_missing_package_names_the_extra(monkeypatch, fitted, module, extra):
    import importlib

    clf, X, _ = fitted
    wrapper = importlib.import_module(f"fastrnn.{module}")  # importing needs no cluster package
    monkeypatch.setitem(sys.modules, module, None)  # makes "import <module>" fail
    with pytest.raises(ImportError, match=rf"pip install 'fastrnn\[{extra}\]'"):
        wrapper.predict(clf, X)


# ---------------------------------------------------------------------------------------------
# fastrnn.ray
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_ray_predict_on_ragged_sequences(ray_session, fitted, method):
    from fastrnn import ray as fray

    clf, X, _ = fitted
    ds = ray_session.data.from_items([{"seq": x, "id": i} for i, x in enumerate(X)])
    out = fray.predict(clf, ds, method=method, column="seq", batch_size=8)
    assert isinstance(out, ray_session.data.Dataset)
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == list(range(len(X)))
    got = np.stack([np.asarray(r[method]) for r in rows])
    assert_array_equal(got, getattr(clf, method)(X))


def test_ray_predict_on_fixed_length_sequences_and_strings(ray_session, fitted):
    from fastrnn import ray as fray

    clf, X, _ = fitted
    Xf = np.stack([np.resize(x, (5, 2)) for x in X])
    out = fray.predict(clf, ray_session.data.from_numpy(Xf), method="predict_proba",
                       output_column="p").to_pandas()
    assert_array_equal(np.stack(out["p"].to_numpy()), clf.predict_proba(Xf))

    docs, labels = string_data()
    pipe = make_pipeline(SequenceVectorizer(analyzer="char"),
                         RNNClassifier(embedding_dim=4, max_iter=2, **TINY)).fit(docs, labels)
    ds = ray_session.data.from_items([{"text": d} for d in docs])
    rows = fray.predict(pipe, ds, batch_size=5).take_all()
    got = dict((r["text"], r["predict"]) for r in rows)
    assert_array_equal([got[d] for d in docs], pipe.predict(docs))


def test_ray_predict_needs_the_column_when_there_are_several(ray_session, fitted):
    from fastrnn import ray as fray

    clf, X, _ = fitted
    ds = ray_session.data.from_items([{"seq": x, "id": i} for i, x in enumerate(X)])
    with pytest.raises(ValueError, match="column="):
        fray.predict(clf, ds)
    with pytest.raises(TypeError, match="ray.data.Dataset"):
        fray.predict(clf, X)


# ---------------------------------------------------------------------------------------------
# threads in workers; compiled kernels shared through the cache
# ---------------------------------------------------------------------------------------------


def _worker_threads():
    import numba

    import fastrnn

    return fastrnn.num_threads(), int(numba.config.NUMBA_NUM_THREADS), \
        os.environ.get("OMP_NUM_THREADS")


def test_dask_workers_run_the_threads_they_were_given(dask_client):
    # the nanny gives each one-thread worker OMP_NUM_THREADS=1; NUMBA_NUM_THREADS (2, from
    # conftest) reaches the workers too, but fastrnn must not run more threads than the worker has
    numba_threads = int(os.environ["NUMBA_NUM_THREADS"])
    assert numba_threads == 2
    for threads, numba_in_worker, omp in dask_client.run(_worker_threads).values():
        assert (threads, numba_in_worker, omp) == (1, numba_threads, "1")
    dask_client.run(fastrnn.set_num_threads, 2)
    try:
        futures = [dask_client.submit(_worker_threads, pure=False, workers=[w])
                   for w in dask_client.scheduler_info()["workers"]]
        assert [f.result()[0] for f in futures] == [2, 2]
    finally:
        dask_client.run(fastrnn.set_num_threads, None)
    assert [r[0] for r in dask_client.run(_worker_threads).values()] == [1, 1]


def test_ray_tasks_run_the_threads_they_were_given(ray_session):
    # two one-CPU tasks at a time on a two-CPU session: each must run one kernel thread
    from joblib import Parallel, delayed, parallel_backend

    # (functions of installed modules: the workers cannot import this test module)
    with parallel_backend("ray"):
        threads = Parallel(n_jobs=2)(delayed(fastrnn.num_threads)() for _ in range(4))
        omp = Parallel(n_jobs=2)(delayed(os.getenv)("OMP_NUM_THREADS") for _ in range(4))
    assert threads == [1, 1, 1, 1]
    assert omp == ["1"] * 4


def test_fastrnn_num_threads_overrides_what_the_engine_gives(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None,
                                  env={"FASTRNN_NUM_THREADS": "2",
                                       "PYTHONPATH": str(ROOT)}) as cluster, \
            distributed.Client(cluster) as client:
        assert [r[:1] + r[2:] for r in client.run(_worker_threads).values()] == [(2, "1")]


# float64 compiles a handful of kernels (a few seconds); the float32 fast path compiles many more
TINY_FIT = textwrap.dedent("""
    from fastrnn import RNNClassifier
    from fastrnn.datasets import make_sequence_classification
    X, y = make_sequence_classification(n_samples=16, n_classes=2, n_features=2, min_length=2,
                                        max_length=5, random_state=0)
    clf = RNNClassifier(hidden_size=4, max_iter=2, batch_size=8, random_state=0, cell="rnn",
                        backend="numba", dtype="float64").fit(X, y)
    print(repr(clf.predict_proba(X).tolist()))
""")


def test_concurrent_first_fits_share_one_empty_numba_cache(tmp_path):
    cache = tmp_path / "numba_cache"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), FASTRNN_NUMBA_CACHE="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-c", TINY_FIT], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, f"a concurrent first fit failed:\n{err[-3000:]}"
    outputs = {out for out, _ in results}
    assert len(outputs) == 1, f"the concurrent fits disagree: {outputs}"
    assert any(cache.rglob("*.nbi")), "the fits should have written the Numba cache"
    # and a later process gets the same result from the cache the racing ones wrote
    again = subprocess.run([sys.executable, "-c", TINY_FIT], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout == results[0][0]


COUNT_COMPILES = textwrap.dedent("""
    import sys
    from numba.core import event
    import fastrnn
    if sys.argv[1] == "warm":
        fastrnn.warm_up(cells="rnn", dtype="float64", backend="numba")
    with event.install_recorder("numba:compile") as rec:
        exec(sys.argv[2])
    print("compiled", len(rec.buffer))
""")


@pytest.mark.parametrize("warm", [False, True])
def test_warm_up_leaves_nothing_to_compile_for_the_first_fit(tmp_path, warm):
    # with the cache off every kernel a process needs is compiled in it: after the warm-up the
    # fit (other sizes, other data) compiles nothing; without it, it compiles (the control)
    env = dict(os.environ, FASTRNN_NUMBA_CACHE="0",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", COUNT_COMPILES, "warm" if warm else "cold",
                          TINY_FIT], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    compiled = int(run.stdout.split("compiled")[-1])
    assert (compiled == 0) if warm else (compiled > 0), run.stdout


def test_dask_warm_up_runs_on_every_worker(dask_client):
    from fastrnn import dask as fdask

    spent = fdask.warm_up(dask_client, cells=["rnn", "gru"])
    assert set(spent) == set(dask_client.scheduler_info()["workers"])
    for per_cell in spent.values():
        assert set(per_cell) == {"rnn", "gru"} and all(s > 0 for s in per_cell.values())
    with pytest.raises(TypeError, match="distributed.Client"):
        fdask.warm_up(object())
