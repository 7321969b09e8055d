#!/usr/bin/env python
"""fastrnn side by side with PyTorch and ONNX Runtime: same weights, same threads, same inputs.

Workloads (``--configs``; a group name selects all its cells, ``B-LSTM`` one cell):

``latency``  forward of one sequence: batch 1, T 100, I 64, H 128 (LSTM, GRU, RNN);
``stream``   per-step cost of a streaming step on the same layer (fastrnn's ``init_state``/``step``
             where the layers have them, fastrnn ``forward`` of one step, PyTorch, ONNX Runtime);
``B``        B 32, T 100, I 128, H 256 (LSTM, GRU, RNN): forward and training step;
``C``        B 64, T 50, I 256, H 512 (LSTM, GRU): forward and training step;
``D``        B 32, T 100, I 128, H 256, 2 layers, bidirectional (LSTM, GRU);
``lm``       char LSTM language model training (V 96, E 64, H 256, 32 streams, bptt 64, Adam,
             clip 5);
``mem-B``, ``mem-C``, ``mem-D`` (``memory``)  peak memory of one training step.

How it measures (``shared/PERF_NOTES.md``): every thread count runs in its own fresh worker process
whose environment sets ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``NUMBA_NUM_THREADS`` before anything is imported; inside it ``torch.set_num_threads``,
``threadpoolctl`` and ONNX Runtime's ``intra_op_num_threads`` are set to the same count. Within a
worker the implementations share one set of weights and inputs, are checked to give the same outputs
(and gradients) before any timing, then are timed interleaved (the order rotates every repeat) after
warm-up; the figure is the median. A training step is forward + backward of ``L = sum(Y * G)`` for a
fixed random ``G`` (a loss on all outputs), with the gradient of the input computed by both
libraries (fastrnn always computes it; PyTorch is asked to, so both do the same work).

Peak memory runs each (implementation, configuration) in a fresh process: build the model and the
inputs, run a tiny step so code and allocators are initialised, then read ``ru_maxrss`` before and
after one real training step; the difference is the step's own peak (activations, caches, gradients,
workspaces). For fastrnn ``tracemalloc`` also gives the peak of numpy's allocations in the step.

Run ``python benchmarks/compare.py --quick`` (under about two minutes) or without ``--quick`` for
more repeats; ``--json OUT`` chooses where the JSON goes (default ``benchmarks/.asv/compare.json``,
which git ignores). PyTorch and ONNX Runtime are optional: rows that need a missing one are skipped
and listed with the reason.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if (ROOT / "fastrnn" / "__init__.py").is_file() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark this checkout, whatever is installed

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
DEFAULT_JSON = HERE / ".asv" / "compare.json"
ONNX_OPSET = 17


class Shape:
    """Sizes of one workload: batch, steps, inputs, hidden units, layers, bidirectional."""

    def __init__(self, B, T, I, H, layers=1, bidir=False):  # noqa: E741 - the usual names
        self.B, self.T, self.I, self.H, self.layers, self.bidir = B, T, I, H, layers, bidir

    @property
    def D(self):
        return 2 if self.bidir else 1

    def as_dict(self):
        return dict(B=self.B, T=self.T, I=self.I, H=self.H, layers=self.layers, bidir=self.bidir)

    def label(self):
        s = f"B{self.B} T{self.T} I{self.I} H{self.H}"
        if self.layers > 1:
            s += f" {self.layers}L"
        if self.bidir:
            s += " bidir"
        return s


GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
LATENCY = Shape(1, 100, 64, 128)
SHAPES = {
    "latency": LATENCY,
    "stream": LATENCY,
    "B": Shape(32, 100, 128, 256),
    "C": Shape(64, 50, 256, 512),
    "D": Shape(32, 100, 128, 256, layers=2, bidir=True),
}
for _g in ("B", "C", "D"):
    SHAPES["mem-" + _g] = SHAPES[_g]
GROUP_CELLS = {
    "latency": ("LSTM", "GRU", "RNN"),
    "stream": ("LSTM", "GRU", "RNN"),
    "B": ("LSTM", "GRU", "RNN"),
    "C": ("LSTM", "GRU"),
    "D": ("LSTM", "GRU"),
    "mem-B": ("LSTM", "GRU", "RNN"),
    "mem-C": ("LSTM", "GRU"),
    "mem-D": ("LSTM", "GRU"),
}
#: the language-model workload (issue 8): vocabulary, embedding, hidden, streams, truncation length
LM = dict(V=96, E=64, H=256, B=32, bptt=64, lr=1e-3, clip=5.0)
ALIASES = {
    "train": ["B", "C", "D"],
    "memory": ["mem-B", "mem-C", "mem-D"],
    "mem": ["mem-B", "mem-C", "mem-D"],
}
ALL_CONFIGS = [f"{g}-{c}" for g in GROUP_CELLS for c in GROUP_CELLS[g]] + ["lm"]
ALIASES["all"] = ALL_CONFIGS
DEFAULT_CONFIGS = ["latency", "stream", "B", "C", "D", "lm", "memory"]
QUICK_CONFIGS = ["latency", "stream", "B", "C-LSTM", "D-LSTM", "lm", "mem-B-LSTM"]


# ====================================================================================== arguments
def parse_configs(tokens):
    """Expand group names and aliases into config ids (``"B-LSTM"``, ``"lm"``, ...), in the
    canonical order, without duplicates. Raise ``ValueError`` naming the valid choices."""
    chosen = set()
    for tok in tokens:
        for part in str(tok).split(","):
            part = part.strip()
            if not part:
                continue
            key = part.lower()
            if key in ALIASES:
                chosen.update(parse_configs(ALIASES[key]))
                continue
            group = {g.lower(): g for g in GROUP_CELLS}.get(key)
            if group is not None:
                chosen.update(f"{group}-{c}" for c in GROUP_CELLS[group])
                continue
            if key == "lm":
                chosen.add("lm")
                continue
            match = {c.lower(): c for c in ALL_CONFIGS}.get(key)
            if match is None:
                raise ValueError(
                    f"unknown config {part!r}; choose groups {sorted(GROUP_CELLS) + ['lm']}, "
                    f"aliases "
                    f"{sorted(ALIASES)} or cells such as {ALL_CONFIGS[:3]} (all: {ALL_CONFIGS})."
                )
            chosen.add(match)
    return [c for c in ALL_CONFIGS if c in chosen]


def split_config(cid):
    """``"mem-B-LSTM"`` -> ``("mem-B", "LSTM")``; ``"lm"`` -> ``("lm", "LSTM")``."""
    if cid == "lm":
        return "lm", "LSTM"
    group, cell = cid.rsplit("-", 1)
    return group, cell


def build_parser():
    p = argparse.ArgumentParser(
        prog="compare.py",
        description="fastrnn vs PyTorch vs ONNX Runtime: same weights, same threads, interleaved "
                    "medians (see the module docstring for the method).")
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and cells (LSTM only for C, D and memory): under ~2 minutes")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts, each run in its own fresh process (default: 1 2)")
    p.add_argument("--configs", nargs="+", default=None,
                   help="workloads: latency stream B C D lm mem-B mem-C mem-D, aliases train "
                        "memory all, or single cells like B-LSTM (default: all; --quick: a subset)")
    p.add_argument("--backends", nargs="+", default=["numba", "cython"],
                   help="fastrnn backends to time; unavailable ones are skipped with the reason "
                        "(default: numba cython)")
    p.add_argument("--json", default=str(DEFAULT_JSON), metavar="OUT",
                   help=f"where to save the results as JSON (default: {DEFAULT_JSON})")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per implementation")
    p.add_argument("--settle", type=float, default=None, metavar="S",
                   help="pause S seconds before each sample so the previous library's idle "
                        "threads stop spinning, then wake this one's with 20 ms of untimed calls "
                        "(default: 0.12 at more than one thread, else 0)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch (and so ONNX Runtime)")
    p.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    p.add_argument("--rst", action="store_true", help="print the tables as reStructuredText")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="print the tables of a saved run (no measuring)")
    p.add_argument("--update-doc", default=None, metavar="RST",
                   help="also write the tables (reStructuredText) into this page, between its "
                        "'.. results-start' and '.. results-end' comments")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    """Parse the command line and fill in the settings that depend on ``--quick``."""
    args = build_parser().parse_args(argv)
    for n in args.threads:
        if n < 1:
            raise SystemExit(f"--threads must be positive integers, got {args.threads}")
    tokens = args.configs or (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS)
    try:
        args.config_ids = parse_configs(tokens)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if args.quick:
        args.repeats = args.repeats or 3
        args.latency_repeats = max(args.repeats, 5)
        args.warmup = 1 if args.warmup is None else args.warmup
        args.min_time = 0.01
        args.lm_steps = 6
        args.max_time = 4.0
    else:
        args.repeats = args.repeats or 7
        args.latency_repeats = max(args.repeats, 21)
        args.warmup = 2 if args.warmup is None else args.warmup
        args.min_time = 0.05
        args.lm_steps = 20
        args.max_time = 60.0
    return args


# ====================================================================================== imports
def try_torch():
    """``(torch, None)`` or ``(None, reason)``."""
    try:
        import torch
        return torch, None
    except Exception as exc:  # noqa: BLE001 - reported as a skip reason
        return None, f"PyTorch not importable ({type(exc).__name__}: {exc})"


def try_ort():
    try:
        import onnxruntime
        return onnxruntime, None
    except Exception as exc:  # noqa: BLE001
        return None, f"onnxruntime not importable ({type(exc).__name__}: {exc})"


def backend_status(name):
    """``(True, "")`` if fastrnn backend ``name`` loads, else ``(False, reason)``."""
    from fastrnn._backend import get_backend
    try:
        get_backend(name)
        return True, ""
    except (RuntimeError, ValueError) as exc:
        return False, str(exc)


# ====================================================================================== timing
def interleaved(fns, repeats, warmup=1, min_time=0.01, settle=0.0, max_time=None,
                min_repeats=3, burst=0.02):
    """Time callables interleaved; return ``{name: {"median": s, "times": [...], "number": n}}``.

    Each is called ``warmup`` times (at least once) first; the duration of the last warm-up call
    picks how many calls make one sample (so a sample lasts at least ``min_time``). Then ``repeats``
    rounds run every callable once per round, the order rotating by one each round, with the
    garbage collector off during a sample (as :mod:`timeit` does). Times are per call, in seconds.

    ``settle`` (seconds, for runs with several threads): the worker threads of a library's pool
    (OpenBLAS, OpenMP, ONNX Runtime) busy-wait for a while after its last call (OpenBLAS about
    0.1 s) and then park. On a machine with as many cores as threads, the next library timed would
    share its cores with that spinning, and a pool that has parked pays for waking up. So before
    each sample the process sleeps ``settle`` seconds (the other pools go idle), then a callable
    whose fastest call so far is under ``5 * burst`` seconds runs untimed once and on for
    ``burst`` seconds (its own pool wakes up), as it would in a loop of real work. The sample size
    follows from the fastest warm-up call, so one slow first call cannot inflate it.

    ``max_time`` (seconds) ends the rounds early once it is spent and ``min_repeats`` rounds are
    done (a busy machine can make a run many times slower than planned).
    """
    names = list(fns)
    number, fastest = {}, {}
    for name in names:
        t_warm = time.perf_counter()
        k = 0
        # at least ``warmup`` calls, and short calls for at least ``burst`` seconds
        while k < max(1, warmup) or time.perf_counter() - t_warm < burst:
            t0 = time.perf_counter()
            fns[name]()
            dt = time.perf_counter() - t0
            fastest[name] = min(dt, fastest.get(name, dt))
            k += 1
        number[name] = max(1, int(np.ceil(min_time / max(fastest[name], 1e-7))))
    times = {name: [] for name in names}
    t_start = time.perf_counter()
    for r in range(repeats):
        if (max_time is not None and r >= min(min_repeats, repeats)
                and time.perf_counter() - t_start > max_time):
            break
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, n = fns[name], number[name]
            if settle:
                time.sleep(settle)
                if fastest[name] < 5 * burst:
                    t0 = time.perf_counter()
                    fn()
                    while time.perf_counter() - t0 < burst:
                        fn()
            gc_was = gc.isenabled()
            gc.disable()
            try:
                t0 = time.perf_counter()
                for _ in range(n):
                    fn()
                dt = time.perf_counter() - t0
            finally:
                if gc_was:
                    gc.enable()
            times[name].append(dt / n)
            fastest[name] = min(fastest[name], dt / n)
    return {name: dict(median=float(np.median(times[name])), times=times[name], number=number[name])
            for name in names}


def matmul_peak(repeats=5, n=2048, torch=None, settle=0.0):
    """float32 matrix-product rate (FLOP/s, median) of numpy (and PyTorch) on ``n x n`` operands."""
    rng = np.random.RandomState(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty_like(a)
    fns = {"numpy": lambda: np.dot(a, b, out=c)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tc = torch.empty_like(ta)
        fns["torch"] = lambda: torch.mm(ta, tb, out=tc)
    res = interleaved(fns, repeats, warmup=1, min_time=0.0, settle=settle)
    return {k: 2.0 * n ** 3 / v["median"] for k, v in res.items()}


def forward_flops(cell, shape):
    """FLOPs of the gate products of one forward: ``2 B G H (I + H)`` per step and
    layer-direction."""
    G, H, total = GATES[cell], shape.H, 0
    for layer in range(shape.layers):
        size = shape.I if layer == 0 else shape.D * H
        total += shape.D * 2 * shape.B * G * H * (size + H)
    return total * shape.T


# ====================================================================================== models
def fastrnn_layer(cell, shape, backend="numba", seed=0):
    from fastrnn import nn as fnn
    cls = getattr(fnn, cell)
    return cls(shape.I, shape.H, shape.layers, bidirectional=shape.bidir, backend=backend,
               init="pytorch", random_state=seed)


def torch_module(torch, cell, shape, state):
    """A ``torch.nn.LSTM/GRU/RNN`` (batch first) holding the parameters ``state`` (PyTorch
    names)."""
    cls = getattr(torch.nn, cell)
    m = cls(shape.I, shape.H, shape.layers, batch_first=True, bidirectional=shape.bidir)
    m.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32))
                       for k, v in state.items()})
    return m


def _onnx_wrapper(torch, module, cell, with_state):
    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = module

        def forward(self, x, *state):
            if with_state:
                hx = (state[0], state[1]) if cell == "LSTM" else state[0]
                y, h = self.m(x, hx)
            else:
                y, h = self.m(x)
            return (y, h[0], h[1]) if cell == "LSTM" else (y, h)

    return Wrap().eval()


def ort_session(torch, ort, module, cell, inputs, threads, with_state=False):
    """Export ``module`` with ``torch.onnx.export`` (opset ``ONNX_OPSET``, fixed shapes, the native
    ONNX LSTM/GRU/RNN operators) and open it in ONNX Runtime with ``threads`` intra-op threads."""
    import io
    import warnings
    wrapper = _onnx_wrapper(torch, module, cell, with_state)
    names = ["x", "h0", "c0"][:len(inputs)]
    outs = ["y", "h_n", "c_n"] if cell == "LSTM" else ["y", "h_n"]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = dict(opset_version=ONNX_OPSET, input_names=names, output_names=outs)
        try:
            torch.onnx.export(wrapper, tuple(inputs), buf, dynamo=False, **kwargs)
        except TypeError:  # a PyTorch without the dynamo argument
            torch.onnx.export(wrapper, tuple(inputs), buf, **kwargs)
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(buf.getvalue(), sess_options=so, providers=["CPUExecutionProvider"])


class MismatchError(AssertionError):
    """Two implementations given the same weights and inputs disagree."""


#: float32 tolerances: outputs (values in [-1, 1]) by absolute error; gradients relative to the
#: largest magnitude of the reference gradient
OUT_TOL = 2e-4
GRAD_TOL = 2e-3


def max_err(a, b, relative=False):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise MismatchError(f"shapes differ: {a.shape} vs {b.shape}")
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    if relative:
        err /= max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    return err


class SameWeights:
    """One recurrent workload in every implementation, all holding the same weights and inputs.

    Parameters
    ----------
    cell : {"LSTM", "GRU", "RNN"}
    shape : Shape
    backends : list of str
        fastrnn backends; those that do not load are recorded in ``skipped``.
    threads : int
        ONNX Runtime's ``intra_op_num_threads`` (the other libraries' threads are set by the
        caller).
    use_torch, use_ort : bool
    stream : bool
        Also export an ONNX model of one step with the state as input (the streaming workload).

    Attributes
    ----------
    fr : dict backend -> fastrnn layer
    tm : torch module or None
    sess, step_sess : ONNX Runtime sessions or None
    skipped : dict implementation -> reason
    """

    def __init__(self, cell, shape, backends=("numba",), threads=1, use_torch=True, use_ort=True,
                 seed=0, stream=False):
        self.cell, self.shape = cell, shape
        self.skipped = {}
        self.fr = {}
        state = None
        for bk in backends:
            ok, why = backend_status(bk)
            if not ok:
                self.skipped[f"fastrnn[{bk}]"] = why
                continue
            layer = fastrnn_layer(cell, shape, bk, seed)
            if state is None:
                state = layer.state_dict()
            else:
                layer.load_state_dict(state)
            self.fr[bk] = layer
        if state is None:
            state = fastrnn_layer(cell, shape, "numpy", seed).state_dict()
        self.state = state
        rng = np.random.RandomState(seed + 1)
        self.X = rng.standard_normal((shape.B, shape.T, shape.I)).astype(np.float32)
        self.G = rng.standard_normal((shape.B, shape.T, shape.D * shape.H)).astype(np.float32)
        self.torch = self.tm = self.sess = self.step_sess = None
        if use_torch:
            torch, why = try_torch()
            if torch is None:
                self.skipped["torch"] = why
            else:
                self.torch = torch
                self.tm = torch_module(torch, cell, shape, state)
                self.Xt = torch.from_numpy(self.X)
                self.Gt = torch.from_numpy(self.G)
                self.Xt_req = self.Xt.clone().requires_grad_(True)
        else:
            self.skipped["torch"] = "disabled (--no-torch)"
        if not use_ort:
            self.skipped["ort"] = "disabled (--no-ort)"
        elif self.tm is None:
            self.skipped["ort"] = "needs PyTorch to export the ONNX model"
        else:
            ort, why = try_ort()
            if ort is None:
                self.skipped["ort"] = why
            else:
                try:
                    self.sess = ort_session(self.torch, ort, self.tm, cell, [self.Xt], threads)
                    if stream:
                        self.step_sess = ort_session(self.torch, ort, self.tm, cell,
                                                     self._step_example(), threads, with_state=True)
                except Exception as exc:  # noqa: BLE001 - export problems become a skip reason
                    self.skipped["ort"] = (f"ONNX export/session failed "
                                           f"({type(exc).__name__}: {exc})")
                    self.sess = self.step_sess = None

    # ------------------------------------------------------------------ callables to time
    def fr_forward(self, bk):
        layer, X = self.fr[bk], self.X
        return lambda: layer.forward(X)

    def fr_train(self, bk):
        layer, X, G = self.fr[bk], self.X, self.G

        def step():
            Y, _ = layer.forward(X)
            loss = float(np.vdot(Y, G))
            layer.backward(G)
            return loss
        return step

    def torch_forward(self):
        torch, m, X = self.torch, self.tm, self.Xt

        def fwd():
            with torch.inference_mode():
                return m(X)
        return fwd

    def torch_train(self):
        m, X, G = self.tm, self.Xt_req, self.Gt
        params = list(m.parameters())

        def step():
            for p in params:
                p.grad = None
            X.grad = None
            Y, _ = m(X)
            loss = (Y * G).sum()
            loss.backward()
            return loss.detach().item()
        return step

    def ort_forward(self):
        sess, feed = self.sess, {"x": self.X}
        return lambda: sess.run(None, feed)

    # ------------------------------------------------------------------ correctness
    def outputs(self):
        """``{implementation: [Y, h_n(, c_n)]}`` of one forward each."""
        out = {}
        for bk, layer in self.fr.items():
            Y, h = layer.forward(self.X)
            out[f"fastrnn[{bk}]"] = [Y, *(h if self.cell == "LSTM" else (h,))]
        if self.tm is not None:
            with self.torch.no_grad():
                Y, h = self.tm(self.Xt)
            out["torch"] = [t.numpy() for t in (Y, *(h if self.cell == "LSTM" else (h,)))]
        if self.sess is not None:
            out["ort"] = self.sess.run(None, {"x": self.X})
        return out

    def gradients(self):
        """``{implementation: {name: gradient}}`` of one training step (parameters and ``X``)."""
        out = {}
        for bk, layer in self.fr.items():
            layer.forward(self.X)
            dX = layer.backward(self.G)
            out[f"fastrnn[{bk}]"] = dict({k: v.copy() for k, v in layer.grads.items()}, X=dX)
        if self.tm is not None:
            self.torch_train()()
            g = {k: p.grad.numpy().copy() for k, p in self.tm.named_parameters()}
            g["X"] = self.Xt_req.grad.numpy().copy()
            out["torch"] = g
        return out

    def check(self, grads=True):
        """Check every implementation against the reference (PyTorch if present, else the first
        fastrnn backend); return ``{implementation: max error}``; raise :class:`MismatchError`."""
        report = {}
        outs = self.outputs()
        if len(outs) < 2:
            return report
        ref_name = "torch" if "torch" in outs else next(iter(outs))
        names = ["Y", "h_n", "c_n"]
        for impl, vals in outs.items():
            if impl == ref_name:
                continue
            errs = {names[i]: max_err(v, r) for i, (v, r) in enumerate(zip(vals, outs[ref_name]))}
            report[impl] = max(errs.values())
            if report[impl] > OUT_TOL:
                raise MismatchError(
                    f"{self.cell} {self.shape.label()}: {impl} differs from {ref_name} (max abs "
                    f"error per output {errs}, tolerance {OUT_TOL})")
        if grads:
            gs = self.gradients()
            if len(gs) >= 2:
                ref_name = "torch" if "torch" in gs else next(iter(gs))
                ref = gs[ref_name]
                for impl, g in gs.items():
                    if impl == ref_name:
                        continue
                    errs = {k: max_err(g[k], ref[k], relative=True) for k in ref}
                    report[impl + " grad"] = max(errs.values())
                    worst = max(errs, key=errs.get)
                    if errs[worst] > GRAD_TOL:
                        raise MismatchError(
                            f"{self.cell} {self.shape.label()}: gradient {worst!r} of {impl} "
                            f"differs from {ref_name} (relative error {errs[worst]:.3g}, "
                            f"tolerance {GRAD_TOL})")
        return report

    # ------------------------------------------------------------------ streaming
    def _step_example(self):
        s = self.shape
        torch = self.torch
        x = self.Xt[:, :1].contiguous()
        h = torch.zeros(s.layers * s.D, s.B, s.H)
        return [x, h, h.clone()] if self.cell == "LSTM" else [x, h]

    def stream_fns(self):
        """Callables running all ``T`` steps one at a time (carrying the state) and returning the
        final ``h``; plus the skip reasons of those that cannot run."""
        s, X, fns, skipped = self.shape, self.X, {}, {}
        L = s.layers * s.D
        steps = [np.ascontiguousarray(X[:, t]) for t in range(s.T)]
        steps3 = [np.ascontiguousarray(X[:, t:t + 1]) for t in range(s.T)]
        is_lstm = self.cell == "LSTM"

        for bk, layer in self.fr.items():
            if hasattr(layer, "init_state") and hasattr(layer, "step"):
                def run_step(layer=layer):
                    st = layer.init_state(s.B)
                    for xt in steps:
                        _, st = layer.step(xt, st)
                    return st.h
                fns[f"fastrnn[{bk}] step"] = run_step
            else:
                skipped[f"fastrnn[{bk}] step"] = "the layers have no init_state/step API yet"

            def run_fwd(layer=layer):
                zero = np.zeros((L, s.B, s.H), np.float32)
                st = (zero, zero) if is_lstm else zero
                for xt in steps3:
                    _, st = layer.forward(xt, h0=st)
                return st
            fns[f"fastrnn[{bk}] forward T=1"] = run_fwd
        if self.tm is not None:
            torch, m = self.torch, self.tm
            xts = [torch.from_numpy(x) for x in steps3]

            def run_torch():
                with torch.inference_mode():
                    z = torch.zeros(L, s.B, s.H)
                    st = (z, z) if is_lstm else z
                    for xt in xts:
                        _, st = m(xt, st)
                return st
            fns["torch"] = run_torch
        if self.step_sess is not None:
            sess = self.step_sess

            def run_ort():
                z = np.zeros((L, s.B, s.H), np.float32)
                st = [z, z] if is_lstm else [z]
                for xt in steps3:
                    feed = {"x": xt, "h0": st[0]}
                    if is_lstm:
                        feed["c0"] = st[1]
                    st = sess.run(None, feed)[1:]
                return st
            fns["ort"] = run_ort
        return fns, skipped

    def check_stream(self, fns):
        """Run each streaming callable once and compare its final ``h`` with a full forward's
        ``h_n``; return ``(errors, failures)`` (a failing callable is dropped from ``fns``)."""
        ref = self.outputs()
        ref_name = "torch" if "torch" in ref else next(iter(ref))
        h_ref = ref[ref_name][1]
        errors, failures = {}, {}
        for name in list(fns):
            try:
                st = fns[name]()
                h = st[0] if isinstance(st, (tuple, list)) else st
                h = h.numpy() if hasattr(h, "numpy") else np.asarray(h)
                errors[name] = max_err(h.reshape(h_ref.shape), h_ref)
                if errors[name] > OUT_TOL:
                    raise MismatchError(f"final state differs from {ref_name}'s forward by "
                                        f"{errors[name]:.3g} (tolerance {OUT_TOL})")
            except Exception as exc:  # noqa: BLE001 - an unusable step API is reported, not fatal
                failures[name] = f"{type(exc).__name__}: {exc}"
                del fns[name]
        return errors, failures


def check_same_outputs(cell="LSTM", B=2, T=5, I=3, H=4, layers=1, bidir=False,  # noqa: E741
                       backends=("numba",), use_torch=True, use_ort=True, grads=True, threads=1):
    """Build a workload in every available implementation with one set of weights and check that
    they agree (outputs, and gradients where there is a backward); return the error report.

    Raise :class:`MismatchError` on disagreement. Used before every timing, and by the tests on tiny
    shapes.
    """
    sw = SameWeights(cell, Shape(B, T, I, H, layers, bidir), backends, threads, use_torch, use_ort)
    report = sw.check(grads=grads)
    return dict(errors=report, skipped=sw.skipped)


# ====================================================================================== workloads
def _ms(r):
    return r["median"] * 1e3


def run_latency(cell, args, threads, log):
    sw = SameWeights(cell, SHAPES["latency"], args.backends, threads, not args.no_torch,
                     not args.no_ort, args.seed)
    errors = sw.check(grads=False)
    fns = {f"fastrnn[{bk}]": sw.fr_forward(bk) for bk in sw.fr}
    if sw.tm is not None:
        fns["torch"] = sw.torch_forward()
    if sw.sess is not None:
        fns["ort"] = sw.ort_forward()
    res = interleaved(fns, args.latency_repeats, args.warmup, args.min_time, args.settle,
                      args.max_time)
    row = dict(config=f"latency-{cell}", cell=cell, shape=SHAPES["latency"].as_dict(),
               errors=errors, skipped=sw.skipped, times=res)
    _add_best(row, res)
    log(f"  latency {cell}: " + ", ".join(f"{k} {_ms(v):.3f} ms" for k, v in res.items()))
    return row


def _add_best(row, res, key="best"):
    fr = {k: v["median"] for k, v in res.items() if k.startswith("fastrnn[")}
    if fr:
        best = min(fr, key=fr.get)
        row[key] = dict(impl=best, median=fr[best])


def run_stream(cell, args, threads, log):
    sw = SameWeights(cell, SHAPES["stream"], args.backends, threads, not args.no_torch,
                     not args.no_ort, args.seed, stream=True)
    fns, skipped = sw.stream_fns()
    errors, failures = sw.check_stream(fns)
    skipped.update({k: f"failed its check: {v}" for k, v in failures.items()})
    skipped.update({k: v for k, v in sw.skipped.items() if not k.startswith("fastrnn")})
    T = SHAPES["stream"].T
    res = (interleaved(fns, args.repeats, args.warmup, args.min_time, args.settle,
                       args.max_time) if fns else {})
    for v in res.values():  # per step
        v["median"] /= T
        v["times"] = [t / T for t in v["times"]]
    row = dict(config=f"stream-{cell}", cell=cell, shape=SHAPES["stream"].as_dict(), errors=errors,
               skipped=skipped, times=res)
    log(f"  stream {cell}: " + ", ".join(f"{k} {v['median'] * 1e6:.1f} us/step"
                                         for k, v in res.items()))
    return row


def run_config(group, cell, args, threads, peaks, log):
    shape = SHAPES[group]
    sw = SameWeights(cell, shape, args.backends, threads, not args.no_torch, not args.no_ort,
                     args.seed)
    errors = sw.check(grads=True)
    fwd = {f"fastrnn[{bk}]": sw.fr_forward(bk) for bk in sw.fr}
    train = {f"fastrnn[{bk}]": sw.fr_train(bk) for bk in sw.fr}
    if sw.tm is not None:
        fwd["torch"] = sw.torch_forward()
        train["torch"] = sw.torch_train()
    if sw.sess is not None:
        fwd["ort"] = sw.ort_forward()
    res_f = interleaved(fwd, args.repeats, args.warmup, args.min_time, args.settle,
                        args.max_time)
    res_t = interleaved(train, args.repeats, args.warmup, args.min_time, args.settle,
                        args.max_time)
    flops = forward_flops(cell, shape)
    peak = peaks["numpy"]
    row = dict(config=f"{group}-{cell}", group=group, cell=cell, shape=shape.as_dict(),
               errors=errors, skipped=sw.skipped, forward=res_f, train=res_t,
               forward_flops=flops, train_flops=3 * flops, tokens=shape.B * shape.T)
    for v in res_f.values():
        v["peak_share"] = flops / v["median"] / peak
    for v in res_t.values():
        v["peak_share"] = 3 * flops / v["median"] / peak
        v["tokens_per_s"] = shape.B * shape.T / v["median"]
    _add_best(row, res_f, "forward_best")
    _add_best(row, res_t, "train_best")
    log(f"  {group} {cell}: forward " + ", ".join(f"{k} {_ms(v):.1f}" for k, v in res_f.items())
        + " ms; train " + ", ".join(f"{k} {_ms(v):.1f}" for k, v in res_t.items()) + " ms")
    return row


class LMRun:
    """The char language model of issue 8 in fastrnn (one network per backend) and in PyTorch,
    all from the same initial weights and fed the same chunks of the same token streams."""

    def __init__(self, backends=("numba",), use_torch=True, seed=0, n_chunks=8):
        from fastrnn.losses import sequence_softmax_cross_entropy
        from fastrnn.nn import SequenceNetwork
        from fastrnn.train import Trainer
        c = LM
        self.loss = sequence_softmax_cross_entropy
        self.skipped = {}
        self.nets, self.trainers = {}, {}
        first = None
        for bk in backends:
            ok, why = backend_status(bk)
            if not ok:
                self.skipped[f"fastrnn[{bk}]"] = why
                continue
            net = SequenceNetwork(c["V"], vocab_size=c["V"], embedding_dim=c["E"],
                                  hidden_size=c["H"], pooling=None, backend=bk, random_state=seed)
            if first is None:
                first = net
            else:
                net.load_state_dict(first.state_dict())
            self.nets[bk] = net
            self.trainers[bk] = Trainer(net, optimizer="adam", learning_rate=c["lr"],
                                        clip_norm=c["clip"])
        rng = np.random.RandomState(seed + 2)
        stream = rng.randint(0, c["V"], size=(c["B"], n_chunks * c["bptt"] + 1))
        self.chunks = [(stream[:, i:i + c["bptt"]], stream[:, i + 1:i + 1 + c["bptt"]])
                       for i in range(0, n_chunks * c["bptt"], c["bptt"])]
        self.lengths = np.full(c["B"], c["bptt"], np.int64)
        self.state = {bk: None for bk in self.nets}
        self.k = {bk: 0 for bk in self.nets}
        self.kt = 0
        self.torch = None
        if not use_torch:
            self.skipped["torch"] = "disabled (--no-torch)"
        elif first is not None:
            torch, why = try_torch()
            if torch is None:
                self.skipped["torch"] = why
            else:
                self._build_torch(torch, first)

    def _build_torch(self, torch, net):
        c, p = LM, net.params
        self.torch = torch
        self.emb = torch.nn.Embedding(c["V"], c["E"], padding_idx=net.embedding.padding_idx)
        self.lstm = torch.nn.LSTM(c["E"], c["H"], batch_first=True)
        self.head = torch.nn.Linear(c["H"], c["V"])
        with torch.no_grad():
            self.emb.weight.copy_(torch.from_numpy(p["embedding.weight"]))
            for k, v in self.lstm.named_parameters():
                v.copy_(torch.from_numpy(p["rnn." + k]))
            self.head.weight.copy_(torch.from_numpy(p["head.weight"]))
            self.head.bias.copy_(torch.from_numpy(p["head.bias"]))
        self.tparams = [*self.emb.parameters(), *self.lstm.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.tparams, lr=c["lr"])
        self.tchunks = [(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64)))
                        for x, y in self.chunks]
        self.tstate = None

    def fr_step(self, bk):
        """One truncated-BPTT chunk: Trainer.step (forward, loss, backward, clip, Adam), carrying
        the final state into the next chunk."""
        x, y = self.chunks[self.k[bk] % len(self.chunks)]
        self.k[bk] += 1
        lengths = self.lengths
        loss, self.state[bk] = self.trainers[bk].step(
            x, lengths, lambda out: self.loss(out, y, lengths), state=self.state[bk])
        return loss

    def torch_step(self):
        torch, c = self.torch, LM
        x, y = self.tchunks[self.kt % len(self.tchunks)]
        self.kt += 1
        self.opt.zero_grad(set_to_none=True)
        out, (h, cc) = self.lstm(self.emb(x), self.tstate)
        logits = self.head(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c["V"]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.tparams, c["clip"])
        self.opt.step()
        self.tstate = (h.detach(), cc.detach())
        return loss.detach().item()

    def fns(self):
        fns = {f"fastrnn[{bk}]": (lambda bk=bk: self.fr_step(bk)) for bk in self.nets}
        if self.torch is not None:
            fns["torch"] = self.torch_step
        return fns

    def check(self, steps=3, tol=1e-3):
        """Train ``steps`` chunks in every implementation from the same weights: the losses must
        agree (relative ``tol``); return the largest relative difference to the reference."""
        losses = {name: [fn() for _ in range(steps)] for name, fn in self.fns().items()}
        if len(losses) < 2:
            return None
        ref_name = "torch" if "torch" in losses else next(iter(losses))
        worst = 0.0
        for name, ls in losses.items():
            for i, (a, b) in enumerate(zip(ls, losses[ref_name])):
                err = abs(a - b) / max(1.0, abs(b))
                worst = max(worst, err)
                if err > tol:
                    raise MismatchError(f"LM losses differ at step {i + 1}: {name} {a:.6f} vs "
                                        f"{ref_name} {b:.6f}")
        return worst


def run_lm(args, threads, log):
    c = LM
    run = LMRun(args.backends, not args.no_torch, args.seed)
    err = run.check()
    res = (interleaved(run.fns(), args.lm_steps, args.warmup, 0.0, args.settle, args.max_time)
           if run.nets else {})
    for v in res.values():
        v["tokens_per_s"] = c["B"] * c["bptt"] / v["median"]
    row = dict(config="lm", lm=dict(c), loss_error=err, times=res, skipped=run.skipped)
    _add_best(row, res)
    log("  lm: " + ", ".join(f"{k} {v['tokens_per_s']:.0f} tokens/s" for k, v in res.items()))
    return [row]


# ====================================================================================== memory
def _proc_status_kib(*keys):
    """``{key: KiB}`` from ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def _release_free_memory():
    """Collect garbage and hand the allocator's free pages back to the system (glibc
    ``malloc_trim``), so that the step's allocations show as a rise of the resident set."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss():
    """Reset the kernel's high-water mark of the resident set to the current value (Linux >= 4.0);
    ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_step_memory(step):
    """Peak rise of the resident set during ``step()``, in MiB, and the method used.

    With Linux's resettable high-water mark: ``VmHWM`` after the step minus ``VmRSS`` before it
    (after freeing what the allocator holds). Elsewhere: the rise of ``ru_maxrss``, which misses
    any part of the step's peak that stays under an earlier peak of the process.
    """
    _release_free_memory()
    if _reset_peak_rss():
        before = _proc_status_kib("VmRSS")["VmRSS"]
        step()
        after = _proc_status_kib("VmHWM")["VmHWM"]
        return (after - before) / 1024, before / 1024, "VmHWM - VmRSS (clear_refs reset)"
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) / 1024, before / 1024, "ru_maxrss rise"


def memory_child(spec):
    """Body of a fresh process: the peak memory of one training step of one implementation."""
    group, cell, impl = spec["group"], spec["cell"], spec["impl"]
    shape = SHAPES[group]
    tiny = Shape(1, 2, shape.I, shape.H, shape.layers, shape.bidir)
    out = dict(group=group, cell=cell, impl=impl)
    if impl.startswith("fastrnn["):
        bk = impl[len("fastrnn["):-1]
        sw = SameWeights(cell, shape, [bk], use_torch=False, use_ort=False)
        if bk not in sw.fr:
            return dict(out, skipped=sw.skipped)
        small = SameWeights(cell, tiny, [bk], use_torch=False, use_ort=False)
        step, warm = sw.fr_train(bk), small.fr_train(bk)
    else:
        sw = SameWeights(cell, shape, [], use_torch=True, use_ort=False)
        if sw.tm is None:
            return dict(out, skipped=sw.skipped)
        small = SameWeights(cell, tiny, [], use_torch=True, use_ort=False)
        step, warm = sw.torch_train(), small.torch_train()
    warm()
    delta, before, method = measure_step_memory(step)
    out.update(peak_delta_MiB=delta, rss_before_MiB=before, method=method)
    if impl.startswith("fastrnn["):
        import tracemalloc
        gc.collect()
        tracemalloc.start()
        step()
        out["tracemalloc_peak_MiB"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    out["params_MiB"] = sum(v.nbytes for v in sw.state.values()) / 2 ** 20
    out["input_MiB"] = (sw.X.nbytes + sw.G.nbytes) / 2 ** 20
    return out


def run_memory(args, threads, log):
    rows = []
    impls = [f"fastrnn[{bk}]" for bk in args.backends]
    if not args.no_torch:
        impls.append("torch")
    for cid in args.config_ids:
        group, cell = split_config(cid)
        if not group.startswith("mem-"):
            continue
        for impl in impls:
            if impl.startswith("fastrnn["):
                ok, why = backend_status(impl[len("fastrnn["):-1])
                if not ok:
                    rows.append(dict(group=group, cell=cell, impl=impl, skipped={impl: why}))
                    continue
            spec = dict(group=group, cell=cell, impl=impl)
            r = _subprocess(["--_memory", json.dumps(spec)], threads, log)
            rows.append(r)
            if "peak_delta_MiB" in r:
                log(f"  memory {group[4:]} {cell} {impl}: +{r['peak_delta_MiB']:.1f} MiB")
    return rows


# ====================================================================================== workers
def thread_env(threads):
    env = dict(os.environ)
    for k in THREAD_ENV:
        env[k] = str(threads)
    return env


def _subprocess_script(script, extra, threads):
    """Run ``script`` with ``extra`` arguments in a fresh process with ``threads`` threads (the
    environment variables of ``THREAD_ENV``); its result comes back as JSON through a temporary
    file named by ``--json``. Its progress lines go to our standard error."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, str(script), *extra, "--json", str(out)]
        proc = subprocess.run(cmd, env=thread_env(threads), stdout=sys.stderr)
        if proc.returncode != 0 or not out.is_file():
            raise RuntimeError(f"benchmark worker failed (exit {proc.returncode}): "
                               f"{' '.join(cmd)[:300]}")
        return json.loads(out.read_text())


def _subprocess(extra, threads, log=None):
    """This script in a fresh process (see :func:`_subprocess_script`)."""
    return _subprocess_script(Path(__file__).resolve(), extra, threads)


def set_threads(threads):
    """Apply the thread count to every library loaded in this process; return what is in force."""
    info = {k: os.environ.get(k) for k in THREAD_ENV}
    info["threads"] = threads
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(threads)
        info["threadpoolctl"] = [
            {k: d.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                   "architecture", "threading_layer", "prefix")}
            for d in threadpoolctl.threadpool_info()]
    except ImportError:
        info["threadpoolctl"] = "not installed"
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        info["numba_threads"] = numba.get_num_threads()
    except Exception as exc:  # noqa: BLE001
        info["numba_threads"] = f"unknown ({exc})"
    torch, _ = try_torch()
    if torch is not None:
        torch.set_num_threads(threads)
        info["torch_threads"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
        if "threadpoolctl" in sys.modules:  # torch brings its own OpenMP: limit it too
            import threadpoolctl
            threadpoolctl.threadpool_limits(threads)
    ort, _ = try_ort()
    if ort is not None:
        info["ort_intra_op_threads"] = threads
        info["ort_inter_op_threads"] = 1
    return info


def worker(spec, json_out):
    args = argparse.Namespace(**spec)
    threads = args.threads
    if args.settle is None:
        args.settle = 0.12 if threads > 1 else 0.0

    def log(msg):
        print(f"[{threads} thread{'s' if threads > 1 else ''}] {msg}", file=sys.stderr, flush=True)

    import fastrnn  # noqa: F401 - load the backends under the thread settings
    info = set_threads(threads)
    info["settle_s"] = args.settle
    load_start = os.getloadavg()
    torch = None if args.no_torch else try_torch()[0]
    peak = matmul_peak(5 if args.quick else 9, torch=torch, settle=args.settle)
    log("matmul peak: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()))
    t_worker = time.perf_counter()
    result = dict(threads=threads, thread_info=info, peak_flops=peak, latency=[], stream=[],
                  configs=[], lm=[])
    for cid in args.config_ids:
        group, cell = split_config(cid)
        if group == "latency":
            result["latency"].append(run_latency(cell, args, threads, log))
        elif group == "stream":
            result["stream"].append(run_stream(cell, args, threads, log))
        elif group in ("B", "C", "D"):
            result["configs"].append(run_config(group, cell, args, threads, peak, log))
        elif group == "lm":
            result["lm"].extend(run_lm(args, threads, log))
    # the peak again at the end: on a busy machine one measurement can come out low
    peak_end = matmul_peak(5 if args.quick else 9, torch=torch, settle=args.settle)
    result["peak_flops_end"] = peak_end
    best = max(peak["numpy"], peak_end["numpy"])
    for row in result["configs"]:
        for sec in ("forward", "train"):
            for v in row[sec].values():
                v["peak_share"] *= peak["numpy"] / best
    result["peak_numpy_used"] = best
    result["loadavg"] = dict(start=load_start, end=os.getloadavg())
    result["wall_s"] = time.perf_counter() - t_worker
    Path(json_out).write_text(json.dumps(result, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


# ====================================================================================== metadata
def machine_info():
    info = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(), python=platform.python_version(),
        cpu_count=os.cpu_count(), argv=sys.argv[1:],
        env={k: os.environ[k] for k in (*THREAD_ENV, "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                        "FASTRNN_BACKEND") if k in os.environ},
    )
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory_GiB"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    versions = {}
    for mod in ("fastrnn", "numpy", "scipy", "numba", "torch", "onnx", "onnxruntime",
                "threadpoolctl"):
        try:
            from importlib.metadata import version
            versions[mod] = version(mod)
        except Exception:  # noqa: BLE001 - not installed
            versions[mod] = None
    info["versions"] = versions
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               text=True, capture_output=True, timeout=10).stdout.strip()
        info["git"] = head + ("+dirty" if dirty else "")
    except Exception:  # noqa: BLE001
        info["git"] = None
    return info


# ====================================================================================== tables
def table(headers, rows, rst=False):
    """A plain-text (or reStructuredText simple) table."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join("=" * w for w in widths)

    left = [h in ("config", "cell", "backend") for h in headers]

    def fmt(r):
        return "  ".join(c.ljust(w) if left[i] else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [fmt(headers), "  ".join("-" * w for w in widths)]
    if rst:
        out = [line, fmt(headers), line]
    out += [fmt(r) for r in cells]
    if rst:
        out.append(line)
    return "\n".join(out)


def _f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def _ratio(a, b):
    return None if a is None or b is None else a / b


def _get(res, impl, key, scale=1.0):
    """``res[impl][key] * scale`` or ``None`` where absent."""
    if impl is None or impl not in res or key not in res[impl]:
        return None
    return res[impl][key] * scale


def _ms_of(res, impl, scale=1e3):
    return _get(res, impl, "median", scale)


def _med(res, key):
    v = res.get(key)
    return None if v is None else v["median"]


def fr_columns(results):
    """fastrnn implementation names present anywhere, e.g. ``["fastrnn[numba]"]``."""
    names = []
    for run in results["runs"]:
        for sec in ("latency", "configs", "lm"):
            for row in run[sec]:
                for k in row.get("times", row.get("forward", {})):
                    if k.startswith("fastrnn[") and k.endswith("]") and k not in names:
                        names.append(k)
    return names


def render(results, rst=False):
    """All tables as text."""
    out = []
    meta = results["meta"]
    v = meta["versions"]
    out.append(f"fastrnn {v.get('fastrnn')} ({meta.get('git')}), numpy {v.get('numpy')}, numba "
               f"{v.get('numba')}, torch {v.get('torch')}, onnxruntime {v.get('onnxruntime')}; "
               f"{meta.get('cpu')}, {meta.get('cpu_count')} cores; {meta['date']}")
    env = meta.get("env", {})
    blas_env = [f"{k}={env[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in env]
    out.append("OpenBLAS env: " + (", ".join(blas_env) or "none set"))
    frs = fr_columns(results)
    short = {k: k[len("fastrnn["):-1] for k in frs}
    multi = len(frs) > 1
    for run in results["runs"]:
        n = run["threads"]
        ti = run["thread_info"]
        blas = [f"{d.get('internal_api')} {d.get('architecture') or ''} x{d.get('num_threads')}"
                for d in ti.get("threadpoolctl", []) if isinstance(d, dict)]
        out.append("")
        if rst:
            title = f"{n} thread{'s' if n > 1 else ''}"
            out.append(f"{title}\n{'~' * len(title)}")
        out.append(("" if rst else f"### {n} thread(s): ")
                   + f"OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS={n}, "
                   f"torch.set_num_threads({ti.get('torch_threads')}), numba threads "
                   f"{ti.get('numba_threads')}, ORT intra_op_num_threads="
                   f"{ti.get('ort_intra_op_threads')}"
                   f"; BLAS pools: {'; '.join(blas)}")
        la = run.get("loadavg")
        if la:
            out.append(f"settling before each sample {ti.get('settle_s', 0):g} s; load average "
                       f"(1 min) {la['start'][0]:.1f} at start, {la['end'][0]:.1f} at end"
                       + ("  ** busy machine: figures are noisy **"
                          if max(la['start'][0], la['end'][0]) > (meta.get('cpu_count') or 2)
                          else ""))
        pk, pk_end = run["peak_flops"], run.get("peak_flops_end", {})
        out.append("float32 matmul rate (2048^2, median) at start / end: " + ", ".join(
            f"{k} {val / 1e9:.0f} / {pk_end.get(k, float('nan')) / 1e9:.0f} GFLOP/s"
            for k, val in pk.items())
            + "; %peak below uses the larger numpy figure")
        if run["latency"]:
            hdr = ["cell"] + [short[k] + " ms" for k in frs]
            hdr += (["best ms"] if multi else []) + ["torch ms", "ORT ms", "fastrnn/torch",
                                                     "fastrnn/ORT"]
            rows = []
            for r in run["latency"]:
                t = r["times"]
                best = r.get("best", {}).get("median")
                row = [r["cell"]] + [_f(_ms_of(t, k), "{:.3f}") for k in frs]
                row += ([_f(None if best is None else best * 1e3, "{:.3f}")] if multi else [])
                row += [_f(_ms_of(t, "torch"), "{:.3f}"),
                        _f(_ms_of(t, "ort"), "{:.3f}"),
                        _f(_ratio(best, _med(t, "torch"))), _f(_ratio(best, _med(t, "ort")))]
                rows.append(row)
            out += ["", f"Latency: forward, {LATENCY.label()} (time ratio: < 1 means fastrnn "
                        "is faster)", table(hdr, rows, rst)]
        if run["stream"]:
            names = []
            for r in run["stream"]:
                names += [k for k in r["times"] if k not in names]
            hdr = ["cell"] + [k.replace("fastrnn", "fr") + " us" for k in names]
            rows = []
            for r in run["stream"]:
                rows.append([r["cell"]] + [_f(_ms_of(r["times"], k, 1e6), "{:.1f}") for k in names])
            out += ["", f"Streaming: time per step, batch {LATENCY.B}, I {LATENCY.I}, "
                        f"H {LATENCY.H}", table(hdr, rows, rst)]
        if run["configs"]:
            hdr = ["config", "cell"] + [short[k] + " ms" for k in frs]
            hdr += ["torch ms", "ORT ms", "fastrnn/torch", "fastrnn/ORT", "fastrnn %peak",
                    "torch %peak", "ORT %peak"]
            rows = []
            for r in run["configs"]:
                t = r["forward"]
                best = r.get("forward_best", {}).get("median")
                bimpl = r.get("forward_best", {}).get("impl")
                row = [r["group"], r["cell"]] + [_f(_ms_of(t, k), "{:.1f}")
                                                 for k in frs]
                row += [_f(_ms_of(t, "torch"), "{:.1f}"),
                        _f(_ms_of(t, "ort"), "{:.1f}"),
                        _f(_ratio(best, _med(t, "torch"))), _f(_ratio(best, _med(t, "ort"))),
                        _f(_get(t, bimpl, "peak_share", 100), "{:.0f}"),
                        _f(_get(t, "torch", "peak_share", 100), "{:.0f}"),
                        _f(_get(t, "ort", "peak_share", 100), "{:.0f}")]
                rows.append(row)
            out += ["", "Forward (inference), float32; %peak = gate-product FLOPs / time / numpy "
                        "matmul peak", table(hdr, rows, rst)]
            hdr = ["config", "cell"] + [short[k] + " ms" for k in frs]
            hdr += ["torch ms", "fastrnn/torch", "fastrnn tok/s", "torch tok/s", "fastrnn %peak",
                    "torch %peak"]
            rows = []
            for r in run["configs"]:
                t = r["train"]
                best = r.get("train_best", {}).get("median")
                bimpl = r.get("train_best", {}).get("impl")
                row = [r["group"], r["cell"]] + [_f(_ms_of(t, k), "{:.1f}")
                                                 for k in frs]
                row += [_f(_ms_of(t, "torch"), "{:.1f}"),
                        _f(_ratio(best, _med(t, "torch"))),
                        _f(_get(t, bimpl, "tokens_per_s"), "{:.0f}"),
                        _f(_get(t, "torch", "tokens_per_s"), "{:.0f}"),
                        _f(_get(t, bimpl, "peak_share", 100), "{:.0f}"),
                        _f(_get(t, "torch", "peak_share", 100), "{:.0f}")]
                rows.append(row)
            out += ["", "Training step (forward + backward of sum(Y*G), input gradient included); "
                        "%peak counts 3x the forward FLOPs", table(hdr, rows, rst)]
        if run["lm"]:
            r = run["lm"][0]
            t = r.get("times", {})
            hdr = [short[k] + " tok/s" for k in frs] + ["torch tok/s", "fastrnn/torch"]
            best = _get(t, r.get("best", {}).get("impl"), "tokens_per_s")
            row = [_f(_get(t, k, "tokens_per_s"), "{:.0f}") for k in frs]
            row += [_f(_get(t, "torch", "tokens_per_s"), "{:.0f}"),
                    _f(_ratio(best, _get(t, "torch", "tokens_per_s")))]
            c = LM
            out += ["", f"Char LSTM language model training (V {c['V']}, E {c['E']}, H {c['H']}, "
                        f"{c['B']} streams, bptt {c['bptt']}, Adam, clip {c['clip']:g}): tokens/s "
                        "(throughput ratio: > 1 means fastrnn is faster)", table(hdr, [row], rst)]
    mem = [r for r in results.get("memory", []) if "peak_delta_MiB" in r]
    if mem:
        keys = []
        for r in mem:
            if (r["group"], r["cell"]) not in keys:
                keys.append((r["group"], r["cell"]))
        impls = []
        for r in mem:
            if r["impl"] not in impls:
                impls.append(r["impl"])
        rows = []
        for g, c in keys:
            vals = {r["impl"]: r for r in mem if r["group"] == g and r["cell"] == c}
            row = [g[4:], c] + [_f(vals.get(i, {}).get("peak_delta_MiB"), "{:.1f}") for i in impls]
            fr = [vals[i]["peak_delta_MiB"] for i in impls if i in vals and i != "torch"]
            row.append(_f(min(fr) / vals["torch"]["peak_delta_MiB"]
                          if fr and "torch" in vals and vals["torch"]["peak_delta_MiB"] > 0
                          else None))
            row += [_f(vals.get(i, {}).get("tracemalloc_peak_MiB"), "{:.1f}") for i in impls
                    if i != "torch"]
            rows.append(row)
        hdr = ["config", "cell"] + [i.replace("fastrnn", "fr") + " MiB" for i in impls]
        hdr += ["fastrnn/torch"] + [i.replace("fastrnn", "fr") + " tracemalloc MiB" for i in impls
                                    if i != "torch"]
        out += ["", f"Peak memory of one training step: rise of the resident set in a fresh "
                    f"process ({mem[0]['method']}), {results['memory_threads']} thread(s); "
                    "tracemalloc: peak of numpy's allocations in the step", table(hdr, rows, rst)]
    skipped = collect_skips(results)
    if skipped:
        out += ["", "Skipped:"] + [f"  {k}: {v}" for k, v in skipped.items()]
    if rst:  # every line a paragraph of its own; no double blank lines
        paras = []
        for el in out:
            if el.startswith("  "):
                el = "* " + el.strip()
            if el:
                paras += [el, ""]
        return "\n".join(paras)
    return "\n".join(out)


def update_doc(path, text, start=".. results-start", end=".. results-end"):
    """Replace what lies between the ``start`` and ``end`` comment lines of a page by ``text``."""
    path = Path(path)
    lines = path.read_text().split("\n")
    try:
        i, j = lines.index(start), lines.index(end)
    except ValueError:
        raise SystemExit(f"{path} has no '{start}' / '{end}' lines to write the results between")
    lines[i + 1:j] = ["", *text.rstrip().split("\n"), ""]
    path.write_text("\n".join(lines))
    print(f"updated {path}", file=sys.stderr)


def collect_skips(results):
    skips = {}
    for run in results["runs"]:
        for sec in ("latency", "stream", "configs", "lm"):
            for row in run[sec]:
                for impl, why in row.get("skipped", {}).items():
                    skips.setdefault(f"{impl} ({row.get('config')})", why)
    for row in results.get("memory", []):
        for impl, why in row.get("skipped", {}).items():
            skips.setdefault(f"{impl} (memory {row.get('group')}-{row.get('cell')})", why)
    # one line per distinct reason and implementation
    merged = {}
    for k, why in skips.items():
        impl, cfg = k.split(" (", 1)
        key = (impl, why)
        merged.setdefault(key, []).append(cfg.rstrip(")"))
    return {f"{impl} [{', '.join(cfgs)}]": why for (impl, why), cfgs in merged.items()}


# ====================================================================================== main
def main(argv=None):
    args = parse_args(argv)
    if args._worker is not None:
        spec = json.loads(args._worker)
        worker(spec, args.json)
        return 0
    if args._memory is not None:
        spec = json.loads(args._memory)
        Path(args.json).write_text(json.dumps(memory_child(spec), default=_json_default))
        return 0
    if args.render is not None:
        results = json.loads(Path(args.render).read_text())
        print(render(results, rst=args.rst))
        if args.update_doc:
            update_doc(args.update_doc, render(results, rst=True))
        return 0

    t_start = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    meta = machine_info()
    log(f"compare.py: configs {' '.join(args.config_ids)}; threads {args.threads}; backends "
        f"{args.backends}; repeats {args.repeats} (latency {args.latency_repeats}), warm-up "
        f"{args.warmup}")
    for mod, name in (("torch", "PyTorch"), ("onnxruntime", "ONNX Runtime")):
        if meta["versions"].get(mod) is None:
            log(f"note: {name} is not installed: its rows are skipped")
    results = dict(meta=meta, settings=dict(
        configs=args.config_ids, threads=args.threads, backends=args.backends, repeats=args.repeats,
        latency_repeats=args.latency_repeats, warmup=args.warmup, min_time=args.min_time,
        max_time=args.max_time, settle=args.settle,
        lm_steps=args.lm_steps, quick=args.quick, onnx_opset=ONNX_OPSET,
        tolerances=dict(outputs=OUT_TOL, gradients=GRAD_TOL)), runs=[], memory=[])
    timing_ids = [c for c in args.config_ids if not c.startswith("mem-")]
    for n in args.threads:
        if not timing_ids:
            break
        spec = dict(vars(args), threads=n, config_ids=timing_ids, _worker=None, _memory=None)
        results["runs"].append(_subprocess(["--_worker", json.dumps(spec)], n, log))
    results["memory_threads"] = args.threads[0]
    results["memory"] = run_memory(args, args.threads[0], log)
    results["wall_s"] = time.perf_counter() - t_start
    text = render(results, rst=args.rst)
    print(text)
    if args.update_doc:
        update_doc(args.update_doc, render(results, rst=True))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=_json_default))
        log(f"\nsaved {path} ({results['wall_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
