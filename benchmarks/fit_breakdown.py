#!/usr/bin/env python
"""Where the time of an estimator's ``fit`` goes: the layer kernels and the head against the rest.

Fits ``RNNClassifier(random_state=0)`` on JapaneseVowels (``fastrnn.datasets``; 270 series of 7-29
steps x 12 channels) and a small ``RNNRegressor`` on random series, with a timer around each phase
of a training step:

* ``layer``: the recurrent layer's forward and backward (its kernels and their driver),
* ``head``: the output layer's forward and backward, the pooling and the loss,
* ``dropout``: drawing and applying the dropout masks,
* ``clip``: the global gradient norm and clipping,
* ``optimizer``: the optimiser step,
* ``batch``: cutting a minibatch and its loss function from the data,
* ``validation``: the evaluations on held-out data,
* ``snapshot``: the trainer's copies of the last good parameters,
* ``other``: everything else (the training loop, the glue between the blocks).

Each phase is timed in wall seconds and in the CPU seconds of the thread, as a share of the fit's
total; on a machine shared with other jobs the CPU shares are the ones to read (a process waiting
for a core is charged to whatever phase it was in). Run with one thread::

    NUMBA_NUM_THREADS=1 FASTRNN_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/fit_breakdown.py

``--json`` prints one JSON line per fit instead of the table.
"""

import argparse
import functools
import json
import time
import warnings

import numpy as np

_WALL, _CPU, _DEPTH = {}, {}, [0]


def _timed(owner, name, phase):
    """Wrap ``owner.name`` so that its wall and CPU time add up under ``phase`` (the outermost
    timed call only: a timed phase inside another is not counted twice)."""
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _DEPTH[0]:
            return fn(*args, **kwargs)
        _DEPTH[0] += 1
        t, c = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _WALL[phase] = _WALL.get(phase, 0.0) + time.perf_counter() - t
            _CPU[phase] = _CPU.get(phase, 0.0) + time.thread_time() - c
            _DEPTH[0] -= 1

    setattr(owner, name, wrapper)


def instrument():
    """Put the timers in place (for the rest of the process)."""
    import fastrnn.estimators._base as base
    import fastrnn.estimators.classifier as classifier
    import fastrnn.estimators.regressor as regressor
    import fastrnn.nn.layers as layers
    import fastrnn.nn.network as network
    import fastrnn.nn.recurrent as recurrent
    import fastrnn.optim._optimizers as optimizers
    import fastrnn.train._trainer as trainer

    for name in ("forward", "backward"):
        _timed(recurrent._Recurrent, name, "layer")
        _timed(layers.Dense, name, "head")
    for owner, name in ((network, "pool"), (network, "pool_backward"),
                        (classifier, "softmax_cross_entropy"), (regressor, "mean_squared_error")):
        _timed(owner, name, "head")
    _timed(network.SequenceNetwork, "_dropout", "dropout")
    _timed(trainer, "clip_grad_norm", "clip")
    _timed(optimizers.Optimizer, "step", "optimizer")
    _timed(base._SequenceTask, "batch", "batch")
    _timed(base._SequenceTask, "evaluate", "validation")
    _timed(trainer.Trainer, "take_snapshot", "snapshot")


def breakdown(make, X, y):
    """Fit ``make()`` on ``(X, y)``; returns the wall and CPU seconds and the shares of each."""
    _WALL.clear()
    _CPU.clear()
    t, c = time.perf_counter(), time.thread_time()
    make().fit(X, y)
    wall, cpu = time.perf_counter() - t, time.thread_time() - c
    shares = {}
    for label, spent, total in (("wall", _WALL, wall), ("cpu", _CPU, cpu)):
        s = {k: v / total for k, v in sorted(spent.items())}
        s["other"] = 1.0 - sum(s.values())
        shares[label] = s
    return dict(wall=wall, cpu=cpu, shares=shares)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per fit")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import fastrnn
    from fastrnn.datasets import load_japanese_vowels
    from fastrnn.estimators import RNNClassifier, RNNRegressor

    X, y = load_japanese_vowels("train")
    rng = np.random.RandomState(0)
    Xr = [rng.randn(rng.randint(10, 30), 4) for _ in range(200)]
    yr = np.array([x[:, 0].sum() for x in Xr])
    jobs = {
        "RNNClassifier on JapaneseVowels": (lambda: RNNClassifier(random_state=0), X, y),
        "RNNRegressor, H 32, 30 epochs": (
            lambda: RNNRegressor(random_state=0, hidden_size=32, max_iter=30), Xr, yr),
    }
    for make, a, b in jobs.values():  # compile or load the kernels first
        make().set_params(max_iter=1).fit(a, b)
    instrument()
    if not args.json:  # which fastrnn: the installed one unless PYTHONPATH names a checkout
        print(f"fastrnn {fastrnn.__version__} from {fastrnn.__file__}")
    for name, (make, a, b) in jobs.items():
        res = breakdown(make, a, b)
        if args.json:
            print(json.dumps(dict(job=name, **res)))
            continue
        print(name)
        for label in ("cpu", "wall"):
            s = res["shares"][label]
            core = s.get("layer", 0.0) + s.get("head", 0.0)
            print(f"  {label:4s} kernels+head {core:6.1%} | "
                  + "  ".join(f"{k} {v:.1%}" for k, v in s.items()))


if __name__ == "__main__":
    main()
