"""``fastrnn bench``: a short speed check of this installation, with PyTorch side by side when it is
installed (same weights, same inputs, same threads; outputs compared before timing).

The full comparison (more shapes, ONNX Runtime, peak memory, scaling) is ``benchmarks/compare.py``
of the source tree; this one needs only the installed package.
"""

import time

import numpy as np

__all__ = ["run"]

#: (name, cell, batch, steps, inputs, hidden, training step)
WORKLOADS = [
    ("LSTM latency", "LSTM", 1, 100, 64, 128, False),
    ("GRU latency", "GRU", 1, 100, 64, 128, False),
    ("RNN latency", "RNN", 1, 100, 64, 128, False),
    ("LSTM forward", "LSTM", 32, 100, 128, 256, False),
    ("LSTM training step", "LSTM", 32, 100, 128, 256, True),
    ("GRU training step", "GRU", 32, 100, 128, 256, True),
]


def _fastrnn_call(name, B, T, I, H, train, seed):
    import fastrnn.nn as fnn

    layer = getattr(fnn, name)(I, H, random_state=seed)
    X = np.random.RandomState(seed).randn(B, T, I).astype(np.float32)
    G = np.random.RandomState(seed + 1).randn(B, T, H).astype(np.float32)
    layer.train(train)

    def call():
        Y, _ = layer.forward(X)
        if train:
            layer.backward(G)
        return Y

    return layer, X, G, call


def _torch_call(torch, name, layer, X, G, train):
    mod = getattr(torch.nn, name)(layer.input_size, layer.hidden_size, batch_first=True)
    with torch.no_grad():
        for k, v in layer.params.items():
            getattr(mod, k).copy_(torch.from_numpy(np.ascontiguousarray(v)))
    x = torch.from_numpy(X).requires_grad_(train)
    g = torch.from_numpy(G)

    def call():
        if not train:
            with torch.no_grad():
                return mod(x)[0]
        mod.zero_grad()
        x.grad = None
        y = mod(x)[0]
        (y * g).sum().backward()
        return y

    return call


def _median_ms(call, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def run(threads=None, repeats=15, quick=False, file=None):
    """Time the :data:`WORKLOADS` and print one table.

    Parameters
    ----------
    threads : int, optional
        Threads of fastrnn's kernels, of BLAS and of PyTorch (default: fastrnn's setting).
    repeats : int, default 15
        Timed calls per implementation (interleaved; the median is reported).
    quick : bool, default False
        Only the batch-1 latencies.
    file : file-like, optional
        Where to print (default stdout).

    Returns
    -------
    rows : list of dict
    """
    from ._config import num_threads, set_num_threads

    before = num_threads()
    n = int(threads or before)
    try:
        import torch
    except ImportError:
        torch = None
    torch_before = torch.get_num_threads() if torch is not None else None
    set_num_threads(n)
    try:
        if torch is not None:
            torch.set_num_threads(n)
        rows = _measure(n, repeats, quick, file, torch)
    finally:  # the caller's thread settings are its own
        set_num_threads(before)
        if torch is not None:
            torch.set_num_threads(torch_before)
    if torch is None:
        print("(PyTorch is not installed: no comparison; pip install torch to add it)", file=file)
    return rows


def _measure(n, repeats, quick, file, torch):
    """The timed rows of :func:`run`, with ``n`` threads set everywhere."""
    from threadpoolctl import threadpool_limits

    print(f"{n} thread(s); medians of {repeats} calls; ratio = fastrnn / PyTorch "
          "(below 1: fastrnn is faster)", file=file)
    print(f"{'workload':20s} {'shape':22s} {'fastrnn ms':>11s} {'PyTorch ms':>11s} "
          f"{'ratio':>6s}", file=file)
    rows = []
    with threadpool_limits(n):
        for label, name, B, T, I, H, train in WORKLOADS:
            if quick and B > 1:
                continue
            layer, X, G, ours = _fastrnn_call(name, B, T, I, H, train, seed=0)
            theirs = None
            if torch is not None:
                theirs = _torch_call(torch, name, layer, X, G, train)
                got, want = ours(), theirs().detach().numpy()
                if not np.allclose(got, want, rtol=1e-3, atol=1e-4):
                    raise RuntimeError(f"{label}: fastrnn and PyTorch disagree (max difference "
                                       f"{np.abs(got - want).max():.3g}); not timing it.")
            for _ in range(3):  # warm-up: compilation, caches, allocators
                ours()
                if theirs is not None:
                    theirs()
            a = _median_ms(ours, repeats)
            b = _median_ms(theirs, repeats) if theirs is not None else float("nan")
            rows.append(dict(workload=label, B=B, T=T, I=I, H=H, fastrnn_ms=a, torch_ms=b,
                             backend=layer.last_backend_))
            shape = f"B{B} T{T} I{I} H{H}"
            print(f"{label:20s} {shape:22s} {a:11.3f} {b:11.3f} {a / b:6.2f}", file=file)
    return rows
