"""The recurrent layers under test: fastrnn (one layer per backend), PyTorch and ONNX Runtime, all
holding one set of weights and fed the same inputs, and the checks that they agree.

PyTorch and ONNX Runtime are optional: an implementation that cannot be built is recorded with the
reason in ``skipped`` instead.
"""

import numpy as np

from .harness import try_ort, try_torch
from .workloads import Shape

#: the ONNX opset of the exported models
ONNX_OPSET = 17


def backend_status(name):
    """``(True, "")`` if fastrnn backend ``name`` loads, else ``(False, reason)``."""
    from fastrnn._backend import get_backend
    try:
        get_backend(name)
        return True, ""
    except (RuntimeError, ValueError) as exc:
        return False, str(exc)


def per_backend(backends, build, skipped):
    """One fastrnn model per backend, all with the weights of the first.

    Parameters
    ----------
    backends : list of str
    build : callable
        ``build(backend)`` -> a fresh model (with ``state_dict`` and ``load_state_dict``).
    skipped : dict
        Gets ``"fastrnn[<backend>]": reason`` for each backend that does not load.

    Returns
    -------
    models : dict backend -> model
    state : dict or None
        The first model's ``state_dict()``, which every other one was loaded with (``None`` when
        no backend loads).
    """
    models, state = {}, None
    for bk in backends:
        ok, why = backend_status(bk)
        if not ok:
            skipped[f"fastrnn[{bk}]"] = why
            continue
        model = build(bk)
        if state is None:
            state = model.state_dict()
        else:
            model.load_state_dict(state)
        models[bk] = model
    return models, state


def fastrnn_layer(cell, shape, backend="numba", seed=0, precision="float32"):
    """A fastrnn ``LSTM/GRU/RNN`` layer of ``shape`` on ``backend``, PyTorch's initialisation."""
    from fastrnn import nn as fnn
    cls = getattr(fnn, cell)
    return cls(shape.I, shape.H, shape.layers, bidirectional=shape.bidir, backend=backend,
               init="pytorch", random_state=seed, precision=precision)


def torch_module(torch, cell, shape, state):
    """A ``torch.nn.LSTM/GRU/RNN`` (batch first) holding the parameters ``state`` (PyTorch
    names)."""
    cls = getattr(torch.nn, cell)
    m = cls(shape.I, shape.H, shape.layers, batch_first=True, bidirectional=shape.bidir)
    m.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32))
                       for k, v in state.items()})
    return m


def _onnx_wrapper(torch, module, cell, with_state):
    """``module`` with a flat signature for the export: ``x`` (and the state) in, ``y`` and the
    final state as separate outputs."""
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
#: the same for a bf16 training step (``precision="bf16"``: operands of the large products keep 8
#: significant bits) against float32
BF16_OUT_TOL = 3e-2
BF16_GRAD_TOL = 3e-2
#: the name of the bf16 training step in the timings; not a ``fastrnn[...]`` name, so that the
#: float32 columns, "best" figures and the chart leave it out
BF16 = "bf16[numba]"


def max_err(a, b, relative=False):
    """Largest absolute difference of ``a`` and ``b``; with ``relative``, divided by the largest
    magnitude of ``b`` (at least 1). Raise :class:`MismatchError` if the shapes differ."""
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
        self.fr, state = per_backend(backends, lambda bk: fastrnn_layer(cell, shape, bk, seed),
                                     self.skipped)
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

    def bf16_train(self):
        """The training step of a ``precision="bf16"`` layer on the numba backend holding the
        same weights, checked against the reference; returns ``(step, errors)``, or
        ``(None, reason)`` where there is none."""
        try:
            layer = fastrnn_layer(self.cell, self.shape, "numba", precision="bf16")
        except (RuntimeError, ValueError, ImportError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        layer.load_state_dict(self.state)
        ref = self.gradients()
        ref_name = "torch" if "torch" in ref else next(iter(ref))
        ref_y = self.outputs()[ref_name][0]
        Y, _ = layer.forward(self.X)
        dX = layer.backward(self.G)
        got = dict(layer.grads, X=dX)
        errors = dict(Y=max_err(Y, ref_y))
        for k, g in ref[ref_name].items():
            errors[k] = max_err(got[k], g, relative=True)
        if errors["Y"] > BF16_OUT_TOL or max(errors.values()) > BF16_GRAD_TOL:
            raise MismatchError(f"{self.cell} {self.shape.label()}: the bf16 step differs from "
                                f"{ref_name} by {errors} (tolerances {BF16_OUT_TOL} on Y, "
                                f"{BF16_GRAD_TOL} on the gradients)")
        self.bf16_layer = layer
        return self._train_step(layer), errors

    def fr_train(self, bk):
        return self._train_step(self.fr[bk])

    def _train_step(self, layer):
        X, G = self.X, self.G

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
