"""Record every CUDA kernel launch of the CUDA backend on numba-cuda's simulator, as JSON.

Run as a script with ``NUMBA_ENABLE_CUDASIM=1`` (tests/test_cuda_ptx.py does): it drives the
backend through the layers (every cell, stacked, bidirectional, with lengths, dropout, recurrent
dropout and initial states, forward, backward and the streaming step, float32 and float64) and
through training steps on the device (the parts named on the command line, default both), and
prints one JSON object:

``launched``
    ``{kernel: [signature, ...]}`` with ``kernel`` as ``module:qualified name`` (a kernel built by
    a factory adds the factory's arguments, e.g. ``...gemm_kernel[float32,16]``) and each
    signature a list of argument types, ``["array", dtype, ndim, layout]`` or
    ``["scalar", type]``, as Numba types them when it compiles for a GPU;
``defined``
    every kernel (not device function) defined in the package, as ``module:qualified name``.
"""

import importlib
import json
import os
import pkgutil
import sys

import numpy as np

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run me on the simulator"

import numba  # noqa: E402
from numba.cuda.simulator import kernel as simkernel  # noqa: E402
from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray  # noqa: E402

import fastrnn.kernels.cuda as pkg  # noqa: E402
from fastrnn.kernels.cuda import _matmul  # noqa: E402

LAUNCHED = {}


def _arg_type(arg):
    if isinstance(arg, FakeCUDAArray):
        arg = arg._ary
    ty = numba.typeof(arg)
    if isinstance(ty, numba.types.Array):
        return ["array", str(ty.dtype), ty.ndim, ty.layout]
    return ["scalar", str(ty)]


def _name(kernel):
    fn = kernel.fn
    name = f"{fn.__module__}:{fn.__qualname__}"
    if "<locals>" in fn.__qualname__:
        closure = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__)))
        scalar = np.dtype(closure["scalar"]).name
        name += f"[{scalar},{int(closure['tile'])}]"
    return name


_original_call = simkernel.FakeCUDAKernel.__call__


def _recording_call(self, *args):
    if not self._device and not simkernel._kernel_context:
        sigs = LAUNCHED.setdefault(_name(self), [])
        sig = [_arg_type(a) for a in args]
        if sig not in sigs:
            sigs.append(sig)
    return _original_call(self, *args)


simkernel.FakeCUDAKernel.__call__ = _recording_call


def _defined():
    out = set()
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for value in vars(mod).values():
            if isinstance(value, simkernel.FakeCUDAKernel) and not value._device \
                    and value.fn.__module__ == mod.__name__:
                out.add(f"{mod.__name__}:{value.fn.__qualname__}")
    # the tiled product is built per scalar type and tile side: both types, both tiles in use
    out.discard(f"{_matmul.__name__}:_build.<locals>.gemm_kernel")
    for dt in ("float32", "float64"):
        out.add(f"{_matmul.__name__}:_build.<locals>.gemm_kernel[{dt},{_matmul.TILE}]")
    return sorted(out)


def _layers():
    from fastrnn import nn

    yield nn.RNN, dict(nonlinearity="tanh")
    yield nn.RNN, dict(nonlinearity="relu")
    yield nn.LSTM, {}
    yield nn.LSTM, dict(peephole=True)
    yield nn.GRU, dict(reset_after=True)
    yield nn.GRU, dict(reset_after=False)
    for name in ("MinGRU", "MinLSTM", "IndRNN"):
        if hasattr(nn, name):
            yield getattr(nn, name), {}


def drive_layers():
    rng = np.random.default_rng(0)
    T, B, I, H = 2, 2, 2, 2
    for dtype in (np.float32, np.float64):
        for cls, kw in _layers():
            for bidirectional, dropout, rdrop in ((False, 0.0, 0.0), (True, 0.5, 0.5)):
                if cls.__name__ in ("MinGRU", "MinLSTM"):
                    rdrop = 0.0  # no recurrent weight for it to act on
                layer = cls(I, H, num_layers=2, bidirectional=bidirectional, dropout=dropout,
                            recurrent_dropout=rdrop, dtype=dtype, backend="cuda",
                            random_state=0, **kw)
                X = rng.standard_normal((B, T, I)).astype(dtype)
                lengths = np.array([2, 1])
                # initial states given or not: once per dtype and cell is enough for every
                # signature (the bidirectional runs take them given)
                for h0 in ("given",) if bidirectional else (None, "given"):
                    if h0 == "given":
                        shape = (2 * layer.num_directions, B, H)
                        h0 = rng.standard_normal(shape).astype(dtype)
                        if layer.has_cell:
                            h0 = (h0, rng.standard_normal(shape).astype(dtype))
                    Y, _ = layer.forward(X, lengths=lengths, h0=h0)
                    layer.backward(np.ones_like(Y))
                if not bidirectional:  # the streaming step
                    layer.eval()
                    state = layer.init_state(B)
                    for t in range(T):
                        _, state = layer.step(X[:, t], state)


def drive_training():
    """Training steps on the device (fastrnn.kernels.cuda._train): both dtypes, both losses, with
    and without dropout, the Adam, SGD and AdaGrad updates, with clipping, a learned initial
    state; float and token input, pooled or a label per step, connections between the layers,
    a head tied to the embedding, and the language model."""
    from fastrnn.nn import SequenceNetwork
    from fastrnn.optim import SGD, AdaGrad, Adam
    from fastrnn.train import Trainer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 2, 2))
    lengths = np.array([2, 1])
    for dtype in (np.float32, np.float64):
        for loss, pooling, opt, drop in (("ce", "last", Adam(lr=0.1), 0.0),
                                         ("mse", "max", SGD(lr=0.1, momentum=0.9), 0.3)):
            net = SequenceNetwork(2, n_features=2, cell="rnn", hidden_size=2, pooling=pooling,
                                  dropout=drop, recurrent_dropout=drop, dtype=dtype,
                                  backend="cuda", random_state=0)
            trainer = Trainer(net, optimizer=opt, clip_norm=0.1)
            assert trainer.start_device() is None
            y = np.array([0, 1]) if loss == "ce" else rng.standard_normal((2, 2))

            def loss_fn(out):
                raise AssertionError("the step runs on the device")
            loss_fn.device_loss = (loss, y, np.full(2, 0.5))
            for _ in range(2):
                trainer.step(X.astype(dtype), lengths, loss_fn)
            trainer.stop_device()
        # token input: the embedding's lookup and gradient, with and without the input dropout,
        # the bag of embeddings and the linear part's logits
        ids = np.array([[1, 2], [3, 0]])
        for drop, bag, linear in ((0.0, False, True), (0.3, True, False)):
            net = SequenceNetwork(2, vocab_size=4, embedding_dim=2, cell="rnn", hidden_size=2,
                                  dropout=drop, bag_of_embeddings=bag, linear=linear,
                                  dtype=dtype, backend="cuda", random_state=0)
            if linear:
                net.set_linear(np.ones(4), np.ones((4, 2)), np.zeros(2))
            trainer = Trainer(net, optimizer=Adam(lr=0.1), clip_norm=0.1)
            assert trainer.start_device() is None
            loss_fn.device_loss = ("ce", np.array([0, 1]), np.full(2, 0.5))
            for _ in range(2):
                trainer.step(ids, lengths, loss_fn)
            trainer.stop_device()
        # no pooling (a label per step), with dropout
        net = SequenceNetwork(2, vocab_size=4, embedding_dim=2, cell="rnn", hidden_size=2,
                              pooling=None, dropout=0.3, dtype=dtype, backend="cuda",
                              random_state=0)
        trainer = Trainer(net, optimizer=Adam(lr=0.1), clip_norm=0.1)
        assert trainer.start_device() is None
        loss_fn.device_loss = ("ce", np.array([[0, 1], [1, -1]]),
                               np.array([[1, 1], [1, 0]]) / 3)
        for _ in range(2):
            trainer.step(ids, lengths, loss_fn)
        trainer.stop_device()
        # a learned initial state (an LSTM: both) and the AdaGrad update
        net = SequenceNetwork(2, n_features=2, cell="lstm", hidden_size=2,
                              learn_initial_state=True, dtype=dtype, backend="cuda",
                              random_state=0)
        trainer = Trainer(net, optimizer=AdaGrad(lr=0.1, weight_decay=0.01), clip_norm=0.1)
        assert trainer.start_device() is None
        loss_fn.device_loss = ("ce", np.array([0, 1]), np.full(2, 0.5))
        for _ in range(2):
            trainer.step(X.astype(dtype), lengths, loss_fn)
        trainer.stop_device()
        # a bounded recurrent weight (IndRNN's recurrent_max), clipped after the update
        net = SequenceNetwork(2, n_features=2, cell="indrnn", hidden_size=2, dtype=dtype,
                              backend="cuda", random_state=0)
        trainer = Trainer(net, optimizer=Adam(lr=0.1), clip_norm=0.1)
        assert trainer.start_device() is None
        trainer.step(X.astype(dtype), lengths, loss_fn)
        trainer.stop_device()
        # connections between the layers (a highway projection: bidirectional; dropout between
        # the layers), and a head tied to the embedding
        for skip, bidirectional in (("residual", False), ("dense", False), ("highway", True)):
            net = SequenceNetwork(2, n_features=2, cell="rnn", hidden_size=2, num_layers=2,
                                  skip=skip, bidirectional=bidirectional, dropout=0.3,
                                  dtype=dtype, backend="cuda", random_state=0)
            trainer = Trainer(net, optimizer=Adam(lr=0.1), clip_norm=0.1)
            assert trainer.start_device() is None
            loss_fn.device_loss = ("ce", np.array([0, 1]), np.full(2, 0.5))
            trainer.step(X.astype(dtype), lengths, loss_fn)
            trainer.stop_device()
        net = SequenceNetwork(4, vocab_size=4, embedding_dim=2, cell="rnn", hidden_size=2,
                              pooling=None, tie_weights=True, dtype=dtype, backend="cuda",
                              random_state=0)
        trainer = Trainer(net, optimizer=Adam(lr=0.1), clip_norm=0.1)
        assert trainer.start_device() is None
        loss_fn.device_loss = ("ce", np.array([[0, 3], [1, -1]]),
                               np.array([[1, 1], [1, 0]]) / 3)
        trainer.step(ids, lengths, loss_fn)
        trainer.stop_device()
        # the language model: the softmax head without the excluded ids, the state carried on
        # the device between windows (an LSTM: both states)
        from fastrnn import RNNLanguageModel

        RNNLanguageModel(hidden_size=2, embedding_dim=2, bptt=3, batch_size=2, max_iter=1,
                         dtype=np.dtype(dtype).name, backend="cuda", shuffle=False,
                         random_state=0).fit(["the cat.", "a dog sat."])


#: the parts of the run; ``python _cuda_signatures.py PART ...`` runs only those (the test runs
#: the two in processes side by side and merges their records)
PARTS = {"layers": drive_layers, "training": drive_training}

if __name__ == "__main__":
    for part in sys.argv[1:] or list(PARTS):
        PARTS[part]()
    json.dump({"launched": LAUNCHED, "defined": _defined()}, sys.stdout, indent=1)
