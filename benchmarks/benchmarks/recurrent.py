"""Recurrent layers: forward (inference) and training step for configs B, C and D of
``compare.py``, latency at batch 1, and the effect of the thread count."""

import numpy as np

from . import SlowBenchmark, compare, limit_threads

CONFIGS = ["B", "C", "D"]
CELLS = ["LSTM", "GRU", "RNN"]


def _build(config, cell, backend="auto"):
    """A layer and its input/output-gradient arrays for ``config`` (skip cells the config lacks)."""
    if cell not in compare.GROUP_CELLS[config]:
        raise NotImplementedError(f"config {config} has no {cell} cell")
    shape = compare.SHAPES[config]
    layer = compare.fastrnn_layer(cell, shape, backend)
    rng = np.random.RandomState(1)
    X = rng.standard_normal((shape.B, shape.T, shape.I)).astype(np.float32)
    G = rng.standard_normal((shape.B, shape.T, shape.D * shape.H)).astype(np.float32)
    return layer, X, G


def _train_step(layer, X, G):
    Y, _ = layer.forward(X)
    float(np.vdot(Y, G))
    layer.backward(G)


class _LayerBenchmark(SlowBenchmark):
    """A layer of each config and cell, its input ``X`` and output gradient ``G``; ``setup`` runs
    what is measured (``_warm_up``) once: the kernels are compiled or loaded, the caches warm."""

    params = [CONFIGS, CELLS]
    param_names = ["config", "cell"]
    repeat = (2, 10, 30.0)

    def setup(self, config, cell):
        limit_threads()
        self.layer, self.X, self.G = _build(config, cell)
        self._warm_up()


class Forward(_LayerBenchmark):
    """``layer.forward(X)`` of one padded batch, float32."""

    def _warm_up(self):
        self.layer.forward(self.X)

    def time_forward(self, config, cell):
        self.layer.forward(self.X)

    def peakmem_forward(self, config, cell):
        self.layer.forward(self.X)


class TrainingStep(_LayerBenchmark):
    """Forward + backward of ``sum(Y * G)`` (input gradient included), float32."""

    def _warm_up(self):
        _train_step(self.layer, self.X, self.G)

    def time_step(self, config, cell):
        _train_step(self.layer, self.X, self.G)

    def peakmem_step(self, config, cell):
        _train_step(self.layer, self.X, self.G)

    def track_tokens_per_second(self, config, cell):
        import time
        t0 = time.perf_counter()
        _train_step(self.layer, self.X, self.G)
        return self.X.shape[0] * self.X.shape[1] / (time.perf_counter() - t0)

    track_tokens_per_second.unit = "tokens/s"


class Latency:
    """Forward of one sequence (batch 1, T 100, I 64, H 128) on every available CPU backend."""

    params = [CELLS, ["numba", "cython"]]
    param_names = ["cell", "backend"]
    repeat = (3, 20, 10.0)

    def setup(self, cell, backend):
        limit_threads()
        ok, why = compare.backend_status(backend)
        if not ok:
            raise NotImplementedError(f"backend {backend} unavailable: {why}")
        shape = compare.SHAPES["latency"]
        self.layer = compare.fastrnn_layer(cell, shape, backend)
        self.X = np.random.RandomState(1).standard_normal(
            (shape.B, shape.T, shape.I)).astype(np.float32)
        self.layer.forward(self.X)

    def time_forward(self, cell, backend):
        self.layer.forward(self.X)


class Threads:
    """Config B LSTM at 1 and 2 threads (BLAS, OpenMP and Numba pools limited together)."""

    params = [[1, 2]]
    param_names = ["threads"]
    number = 1
    repeat = (2, 10, 30.0)
    warmup_time = 0.0

    def setup(self, threads):
        limit_threads(threads)
        self.layer, self.X, self.G = _build("B", "LSTM")
        _train_step(self.layer, self.X, self.G)

    def teardown(self, threads):
        limit_threads()

    def time_forward(self, threads):
        self.layer.forward(self.X)

    def time_step(self, threads):
        _train_step(self.layer, self.X, self.G)
