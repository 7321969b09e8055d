"""Training throughput of LSTM, MinGRU and MinLSTM layers at growing sequence lengths.

One training step of a layer is a forward, a backward and nothing else (no optimiser, no loss
beyond a fixed output gradient); tokens per second are ``B * T`` over the median time of a step.
The point of the minimal cells (Feng et al. 2024) is that only their element-wise recurrence is
sequential, so their cost per token should stay flat as ``T`` grows and, with few sequences, use
the threads through the blocked scan; the LSTM runs a matrix product per step.

Usage::

    python benchmarks/cells_throughput.py [--lengths 100 1000 10000] [--batch 4] [--hidden 128]
        [--input 64] [--dtype float32] [--backend numba] [--repeat 5] [--threads N]
        [--cells lstm mingru minlstm]

Prints one row per (cell, T): seconds per step (median of ``--repeat`` after one warm-up step)
and tokens per second. Timings depend on the machine and on what else runs on it.
"""

import argparse
import time

import numpy as np

import fastrnn
from fastrnn.nn import LSTM, IndRNN, MinGRU, MinLSTM

CELLS = {"lstm": LSTM, "mingru": MinGRU, "minlstm": MinLSTM, "indrnn": IndRNN}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads of the kernels (default: fastrnn's default)")
    ap.add_argument("--cells", nargs="+", choices=sorted(CELLS),
                    default=["lstm", "mingru", "minlstm"])
    return ap.parse_args(argv)


def step_seconds(layer, X, dY, repeat):
    """Median seconds of ``repeat`` forward + backward calls, after one warm-up call."""
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        layer.forward(X)
        layer.backward(dY)
        if i:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        fastrnn.set_num_threads(args.threads)
    dt = np.dtype(args.dtype)
    rng = np.random.RandomState(0)
    print(f"backend={args.backend} dtype={dt.name} B={args.batch} I={args.input} "
          f"H={args.hidden} threads={fastrnn.num_threads()}")
    print(f"{'cell':8s} {'T':>7s} {'s/step':>10s} {'tokens/s':>12s}")
    for T in args.lengths:
        X = rng.randn(args.batch, T, args.input).astype(dt)
        dY = rng.randn(args.batch, T, args.hidden).astype(dt)
        for name in args.cells:
            layer = CELLS[name](args.input, args.hidden, dtype=dt, backend=args.backend,
                                random_state=0)
            s = step_seconds(layer, X, dY, args.repeat)
            print(f"{name:8s} {T:7d} {s:10.4f} {args.batch * T / s:12.0f}", flush=True)


if __name__ == "__main__":
    main()
