"""Optimisers: SGD (with momentum), AdaGrad, Adam, AdamW (see :mod:`fastrnn.optim`)."""

import copy
import math
import numbers
from operator import is_, itemgetter

import numpy as np

from .._backend import training_kernel
from .._flat import flat_buffer

__all__ = ["Optimizer", "SGD", "AdaGrad", "Adam", "AdamW", "get_optimizer"]


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------

def _check_real(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a float after checking it is a finite real in range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a real number, got {value!r} of type {type(value).__name__}; "
            f"pass a float such as {name}=0.1."
        )
    value = float(value)
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "-inf" if low is None else repr(float(low))
        hi = "inf" if high is None else repr(float(high))
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (
            ")" if high_open or high is None else "]")
        raise ValueError(f"{name} must be finite and in {interval}, got {value!r}.")
    return value


def _check_int(name, value, *, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _check_params_grads(params, grads):
    """Check that ``params`` and ``grads`` are matching dicts of float arrays."""
    if not isinstance(params, dict) or not isinstance(grads, dict):
        raise ValueError(
            "params and grads must be dicts mapping names to numpy arrays, got "
            f"{type(params).__name__} and {type(grads).__name__}; pass e.g. "
            "layer.params and layer.grads."
        )
    if params.keys() != grads.keys():
        missing = sorted(set(params) - set(grads))
        extra = sorted(set(grads) - set(params))
        raise ValueError(
            "params and grads must have the same keys; gradients missing for "
            f"{missing}, gradients without a parameter: {extra}. Pass the .grads "
            "dict that belongs to these .params."
        )
    for name, p in params.items():
        g = grads[name]
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise ValueError(
                f"parameter {name!r} must be a floating-point numpy array updated in "
                f"place, got {type(p).__name__}"
                + (f" of dtype {p.dtype}" if isinstance(p, np.ndarray) else "")
                + "; convert it with np.asarray(p, dtype=np.float32) before training."
            )
        if not p.flags.writeable:
            raise ValueError(
                f"parameter {name!r} is read-only; optimisers update parameters in "
                "place, so pass a writeable array (e.g. p.copy())."
            )
        if not isinstance(g, np.ndarray):
            raise ValueError(
                f"gradient {name!r} must be a numpy array, got {type(g).__name__}; "
                "convert it with np.asarray."
            )
        if g.shape != p.shape:
            raise ValueError(
                f"gradient {name!r} has shape {g.shape} but the parameter has shape "
                f"{p.shape}; gradients must have exactly the parameter's shape."
            )


# ---------------------------------------------------------------------------
# optimisers
# ---------------------------------------------------------------------------

class Optimizer:
    r"""Base class of the optimisers.

    Parameters
    ----------
    lr : float
        Learning rate :math:`\eta \ge 0`.  Stored in the attribute ``lr``,
        which learning-rate schedules modify between steps.
    weight_decay : float, default=0.0
        Weight-decay coefficient :math:`\lambda \ge 0`.  For all optimisers but
        :class:`AdamW` it is an L2 penalty added to the gradient,

        .. math:: g \leftarrow \nabla_\theta J + \lambda \theta .

    Attributes
    ----------
    lr : float
        Current learning rate.
    weight_decay : float
        Weight-decay coefficient.
    step_count : int
        Number of calls to :meth:`step` so far.
    state : dict
        ``name -> dict`` of per-parameter state (``"step"`` and buffers shaped
        like the parameter, in the parameter's dtype), created lazily on the
        first step that sees the parameter.

    Notes
    -----
    Subclasses implement ``_update``, which receives one parameter, its
    gradient, its state dict and the current learning rate, and must update
    the parameter in place without allocating after the first call.
    """

    #: names of the hyper-parameters saved by :meth:`state_dict` (besides lr).
    _hyper = ("weight_decay",)

    #: the buffers of a step over one buffer (see :meth:`_flat_step`): the layout last checked,
    #: the state of the whole buffer, the names it covers and the views of each state key
    _flat_checked = _flat_st = _flat_names = _flat_views = None

    def __init__(self, lr, weight_decay=0.0):
        self.lr = _check_real("lr", lr, low=0.0)
        self.weight_decay = _check_real("weight_decay", weight_decay, low=0.0)
        self.step_count = 0
        self.state = {}
        self._scratch = {}

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("lr",) + self._hyper)
        return f"{type(self).__name__}({args})"

    # -- public API ---------------------------------------------------------
    def step(self, params, grads):
        """Apply one update to every parameter, in place.

        Parameters
        ----------
        params : dict of str to ndarray
            Parameter arrays (any floating dtype); modified in place.
        grads : dict of str to ndarray
            Gradients of the loss with respect to ``params``: same keys and
            shapes.  They are only read, never modified.

        Raises
        ------
        ValueError
            If the keys or shapes of ``params`` and ``grads`` differ, or a
            parameter is not a writeable floating-point array.

        Notes
        -----
        When ``params`` and ``grads`` each live in one buffer (the
        ``fastrnn._flat.FlatArrays`` of a
        :class:`~fastrnn.nn.SequenceNetwork`), the built-in optimisers update
        the whole buffer at once, with the same results bit for bit; the state
        arrays of every parameter are then views into one buffer per key
        (``state`` and :meth:`state_dict` keep their names and shapes).
        """
        flat = self._flat_pair(params, grads)
        if flat is None:
            _check_params_grads(params, grads)
        lr = _check_real("lr", self.lr, low=0.0)
        if flat is not None and self._flat_step(params, *flat, lr):
            return
        self.step_count += 1
        for name, p in params.items():
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = {"step": 0}
            st["step"] = int(st["step"]) + 1
            self._update(name, p, grads[name], st, lr)

    def state_dict(self):
        """Return a deep copy of the optimiser's state as plain Python/numpy data.

        Returns
        -------
        state : dict
            ``{"optimizer": class name, "lr": float, "step_count": int,
            "hyperparams": dict, "state": {name: {key: ndarray or int}}}``;
            every array is a copy, so stepping on does not change it.
        """
        return {
            "optimizer": type(self).__name__,
            "lr": float(self.lr),
            "step_count": int(self.step_count),
            "hyperparams": {k: copy.deepcopy(getattr(self, k)) for k in self._hyper},
            "state": {
                name: {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                       for k, v in st.items()}
                for name, st in self.state.items()
            },
        }

    def load_state_dict(self, state_dict):
        """Restore a state produced by :meth:`state_dict` (arrays are copied in).

        Parameters
        ----------
        state_dict : dict
            Output of :meth:`state_dict` of an optimiser of the same class.

        Raises
        ------
        ValueError
            If the dict comes from another optimiser class or lacks a key.
        """
        name = state_dict.get("optimizer", type(self).__name__)
        if name != type(self).__name__:
            raise ValueError(
                f"this state_dict was saved by {name}, not {type(self).__name__}; "
                f"load it into a {name} instance."
            )
        try:
            lr = state_dict["lr"]
            step_count = state_dict["step_count"]
            hyper = state_dict.get("hyperparams", {})
            state = state_dict["state"]
        except KeyError as exc:
            raise ValueError(
                f"state_dict lacks the key {exc.args[0]!r}; pass the dict returned by "
                "Optimizer.state_dict()."
            ) from None
        self.lr = _check_real("lr", lr, low=0.0)
        self.step_count = int(step_count)
        for k, v in hyper.items():
            if k in self._hyper:
                setattr(self, k, copy.deepcopy(v))
        self.state = {
            pname: {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                    for k, v in st.items()}
            for pname, st in state.items()
        }
        self._scratch = {}

    # -- one buffer -----------------------------------------------------------
    def _flat_pair(self, params, grads):
        """``(params buffer, grads buffer)`` when ``params`` and ``grads`` are each laid out in
        one buffer (``fastrnn._flat.FlatArrays``, as a network's are) with the same names,
        shapes and order, and the update is elementwise (the built-in rules); else ``None``.
        The layout is checked in full once per pair of dicts, then by identity."""
        if type(self)._update not in _ELEMENTWISE:
            return None
        pflat, gflat = flat_buffer(params), flat_buffer(grads)
        if pflat is None or gflat is None:
            return None
        key = (params.views, grads.views)
        if self._flat_checked is None or self._flat_checked[0] is not key[0] \
                or self._flat_checked[1] is not key[1]:
            _check_params_grads(params, grads)
            if list(params) != list(grads) or pflat.dtype != gflat.dtype \
                    or params.offsets != grads.offsets or pflat.size != gflat.size:
                return None
            self._flat_checked = key
        return pflat, gflat

    def _flat_state(self, names, pflat, params):
        """The state of the whole buffer (``{"step": t, key: buffer}``) for the parameters
        ``names``, every parameter's state arrays being views into it; ``None`` when the
        parameters' states differ in their step or keys (the update then goes parameter by
        parameter). A state that was loaded or replaced is copied into new buffers."""
        sts = list(map(self.state.get, names))
        fs, views = self._flat_st, self._flat_views
        if fs is not None and self._flat_names == names:
            try:  # the state laid out by the last step, untouched since: one check per array
                steps = set(map(itemgetter("step"), sts))
                if len(steps) == 1 and all(
                        vs[0].base is fs[k] and all(map(is_, map(itemgetter(k), sts), vs))
                        for k, vs in views.items()):
                    fs["step"] = steps.pop()
                    return fs
            except (KeyError, TypeError):  # a parameter without state, or without a key
                pass
        shapes = {n: v.shape for n, v in params.items()}
        offsets = params.offsets
        if all(st is None for st in sts):
            for n in names:
                self.state[n] = {"step": 0}
            self._flat_st, self._flat_names, self._flat_views = {"step": 0}, names, {}
            return self._flat_st
        if any(st is None for st in sts):
            return None
        t = sts[0]["step"]
        keys = [k for k, v in sts[0].items() if isinstance(v, np.ndarray)]
        for st in sts:
            if st["step"] != t or [k for k, v in st.items() if isinstance(v, np.ndarray)] != keys:
                return None
        same = (fs is not None and self._flat_names == names and list(views) == keys
                and all(st[k] is v and v.base is fs[k]
                        for k in keys for st, v in zip(sts, views[k])))
        if not same:
            fs, views = {}, {}
            for k in keys:
                buf = fs[k] = np.zeros(pflat.size, pflat.dtype)
                views[k] = []
                for n, st, offset in zip(names, sts, offsets):
                    a = st[k]
                    if a.shape != shapes[n]:
                        raise ValueError(
                            f"optimiser state {k!r} has shape {a.shape} but the parameter has "
                            f"shape {shapes[n]}; the loaded state_dict belongs to another model.")
                    view = buf[offset:offset + a.size].reshape(a.shape)
                    np.copyto(view, a, casting="unsafe")  # as _buffer converts a loaded state
                    st[k] = view
                    views[k].append(view)
            self._flat_st, self._flat_names, self._flat_views = fs, names, views
        fs["step"] = t
        return fs

    def _flat_step(self, params, pflat, gflat, lr):
        """One update over the whole buffers; ``False`` when the parameters' states are not
        uniform (see :meth:`_flat_state`)."""
        names = tuple(params)
        fs = self._flat_state(names, pflat, params)
        if fs is None:
            return False
        self.step_count += 1
        fs["step"] = t = int(fs["step"]) + 1
        self._update(None, pflat, gflat, fs, lr)
        views = self._flat_views
        for k, buf in fs.items():
            if k != "step" and k not in views:  # a buffer this first step created
                views[k] = []
                for n, offset in zip(names, params.offsets):
                    view = buf[offset:offset + params[n].size].reshape(params[n].shape)
                    self.state[n][k] = view
                    views[k].append(view)
        for n in names:
            self.state[n]["step"] = t
        return True

    # -- helpers for subclasses ---------------------------------------------
    def _buffer(self, st, key, p, fill=0.0):
        """State array ``st[key]`` shaped and typed like ``p`` (created once)."""
        buf = st.get(key)
        if buf is None:
            buf = st[key] = np.full(p.shape, fill, dtype=p.dtype)
        elif buf.shape != p.shape:
            raise ValueError(
                f"optimiser state {key!r} has shape {buf.shape} but the parameter has "
                f"shape {p.shape}; the loaded state_dict belongs to another model."
            )
        elif buf.dtype != p.dtype:
            # e.g. a float64 state loaded into a float32 model: convert once.
            buf = st[key] = buf.astype(p.dtype)
        return buf

    def _work(self, name, p, n):
        """``n`` scratch arrays shaped and typed like ``p``, reused across steps."""
        bufs = self._scratch.get(name)
        if bufs is None or bufs[0].shape != p.shape or bufs[0].dtype != p.dtype:
            bufs = []
        while len(bufs) < n:
            bufs.append(np.empty(p.shape, dtype=p.dtype))
        self._scratch[name] = bufs
        return bufs

    def _decayed_grad(self, p, g, out):
        """``g + weight_decay * p`` written into ``out`` (or ``g`` itself if no decay)."""
        if self.weight_decay == 0.0:
            return g
        np.multiply(p, self.weight_decay, out=out)
        out += g
        return out

    def _update(self, name, p, g, st, lr):  # pragma: no cover - abstract
        raise NotImplementedError


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum.

    Same rule as :class:`torch.optim.SGD` with ``dampening=0``.  With gradient
    :math:`g_t = \nabla_\theta J(\theta_{t-1}) + \lambda\theta_{t-1}`:

    .. math::

        b_1 = g_1, \qquad b_t = \mu\, b_{t-1} + g_t \quad (t > 1),

        \theta_t = \theta_{t-1} - \eta\, d_t, \qquad
        d_t = \begin{cases} g_t & \mu = 0 \\ b_t & \text{momentum} \\
        g_t + \mu\, b_t & \text{Nesterov.} \end{cases}

    Parameters
    ----------
    lr : float, default=0.01
        Learning rate :math:`\eta`.
    momentum : float, default=0.0
        Momentum factor :math:`\mu \in [0, 1)`.
    nesterov : bool, default=False
        Use Nesterov momentum (Sutskever et al. 2013); requires ``momentum > 0``.
    weight_decay : float, default=0.0
        L2 penalty :math:`\lambda` added to the gradient.

    Notes
    -----
    State per parameter: ``"momentum_buffer"`` :math:`b_t` (only when
    ``momentum > 0``), shape and dtype of the parameter.
    """

    _hyper = ("momentum", "nesterov", "weight_decay")

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = _check_real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError(
                "nesterov=True requires momentum > 0, got momentum=0.0; pass e.g. "
                "momentum=0.9 or nesterov=False."
            )

    def _update(self, name, p, g, st, lr):
        (d,) = self._work(name, p, 1)
        g = self._decayed_grad(p, g, d)
        mu = self.momentum
        if mu == 0.0:
            np.multiply(g, lr, out=d)
            p -= d
            return
        buf = st.get("momentum_buffer")
        if buf is None:
            buf = self._buffer(st, "momentum_buffer", p)
            np.copyto(buf, g, casting="same_kind")
        else:
            buf = self._buffer(st, "momentum_buffer", p)
            buf *= mu
            buf += g
        if self.nesterov:
            # theta -= lr * (g + mu * b), split so that no temporary is needed
            np.multiply(g, lr, out=d)
            p -= d
            np.multiply(buf, lr * mu, out=d)
            p -= d
        else:
            np.multiply(buf, lr, out=d)
            p -= d


class AdaGrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer 2011): per-coordinate rates from the gradient history.

    Same rule as :class:`torch.optim.Adagrad` with ``lr_decay=0``.  With
    :math:`g_t = \nabla_\theta J(\theta_{t-1}) + \lambda\theta_{t-1}`:

    .. math::

        s_t = s_{t-1} + g_t \odot g_t, \qquad s_0 = \text{initial\_accumulator\_value},

        \theta_t = \theta_{t-1} - \eta\, \frac{g_t}{\sqrt{s_t} + \epsilon}.

    Parameters
    ----------
    lr : float, default=0.01
        Learning rate :math:`\eta`.
    eps : float, default=1e-10
        Added to the denominator for numerical stability.
    initial_accumulator_value : float, default=0.0
        Starting value :math:`s_0` of the sum of squared gradients.
    weight_decay : float, default=0.0
        L2 penalty :math:`\lambda` added to the gradient.

    Notes
    -----
    State per parameter: ``"sum"`` :math:`s_t`.  AdaGrad is the optimiser of
    the gate-ablation study of LSTMs on sentiment classification by Greff et al. (2017).
    """

    _hyper = ("eps", "initial_accumulator_value", "weight_decay")

    def __init__(self, lr=0.01, eps=1e-10, initial_accumulator_value=0.0, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.eps = _check_real("eps", eps, low=0.0)
        self.initial_accumulator_value = _check_real(
            "initial_accumulator_value", initial_accumulator_value, low=0.0)

    def _update(self, name, p, g, st, lr):
        a, b = self._work(name, p, 2)
        g = self._decayed_grad(p, g, a)
        s = self._buffer(st, "sum", p, fill=self.initial_accumulator_value)
        np.multiply(g, g, out=b)
        s += b
        np.sqrt(s, out=b)
        b += self.eps
        np.divide(g, b, out=b)
        b *= lr
        p -= b


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015) with bias correction and L2 weight decay.

    Same rule as :class:`torch.optim.Adam` (``amsgrad=False``).  With
    :math:`g_t = \nabla_\theta J(\theta_{t-1}) + \lambda\theta_{t-1}`:

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t \odot g_t,

        \theta_t = \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
        \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}.

    Parameters
    ----------
    lr : float, default=1e-3
        Learning rate :math:`\eta`.
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default=1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default=0.0
        L2 penalty :math:`\lambda` added to the gradient (see :class:`AdamW`
        for decoupled decay).

    Notes
    -----
    State per parameter: ``"step"`` :math:`t`, ``"exp_avg"`` :math:`m_t`,
    ``"exp_avg_sq"`` :math:`v_t`.
    """

    _hyper = ("betas", "eps", "weight_decay")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(
                f"betas must be a pair (beta1, beta2), got {betas!r}; pass e.g. "
                "betas=(0.9, 0.999)."
            ) from None
        self.betas = (
            _check_real("betas[0]", b1, low=0.0, high=1.0, high_open=True),
            _check_real("betas[1]", b2, low=0.0, high=1.0, high_open=True),
        )
        self.eps = _check_real("eps", eps, low=0.0)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.betas = tuple(float(b) for b in self.betas)

    def _adam_update(self, name, p, g, st, lr, nbuf):
        bufs = self._work(name, p, nbuf)
        b = bufs[-1]
        if nbuf == 2:
            g = self._decayed_grad(p, g, bufs[0])
        b1, b2 = self.betas
        t = int(st["step"])
        m = self._buffer(st, "exp_avg", p)
        v = self._buffer(st, "exp_avg_sq", p)
        m *= b1
        np.multiply(g, 1.0 - b1, out=b)
        m += b
        v *= b2
        np.multiply(g, g, out=b)
        b *= 1.0 - b2
        v += b
        step_size = lr / (1.0 - b1 ** t)
        bc2_sqrt = math.sqrt(1.0 - b2 ** t)
        np.sqrt(v, out=b)
        b /= bc2_sqrt
        b += self.eps
        np.divide(m, b, out=b)
        b *= step_size
        p -= b

    def _update(self, name, p, g, st, lr):
        if name is None:  # the buffer of all parameters: one compiled pass
            self._fused_update(p, g, st, lr, decoupled=False)
        else:
            self._adam_update(name, p, g, st, lr, 2 if self.weight_decay else 1)

    def _fused_update(self, p, g, st, lr, decoupled):
        """:meth:`_adam_update` (after AdamW's shrinking with ``decoupled``) in one pass of
        ``fastrnn.optim._fused.adam_step``, equal bit for bit."""
        dt = p.dtype.type
        b1, b2 = self.betas
        t = int(st["step"])
        m = self._buffer(st, "exp_avg", p)
        v = self._buffer(st, "exp_avg_sq", p)
        wd = self.weight_decay
        adam_step = training_kernel("adam_step")
        adam_step(p, g, m, v, bool(decoupled and wd), dt(1.0 - lr * wd),
                  bool(wd and not decoupled), dt(wd), dt(b1), dt(1.0 - b1), dt(b2), dt(1.0 - b2),
                  dt(math.sqrt(1.0 - b2 ** t)), dt(self.eps), dt(lr / (1.0 - b1 ** t)))


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019).

    Same rule as :class:`torch.optim.AdamW`: the parameters shrink first,

    .. math:: \theta \leftarrow \theta\,(1 - \eta\lambda),

    then the :class:`Adam` step runs on the raw gradient (no L2 term).

    Parameters
    ----------
    lr : float, default=1e-3
        Learning rate :math:`\eta`.
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates :math:`(\beta_1, \beta_2)`.
    eps : float, default=1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default=0.01
        Decoupled decay coefficient :math:`\lambda`.
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _update(self, name, p, g, st, lr):
        if name is None:  # the buffer of all parameters: one compiled pass
            self._fused_update(p, g, st, lr, decoupled=True)
            return
        if self.weight_decay:
            p *= 1.0 - lr * self.weight_decay
        self._adam_update(name, p, g, st, lr, 1)


#: the built-in update rules: elementwise, so one call over a buffer of all the parameters gives
#: what one call per parameter gives
_ELEMENTWISE = (SGD._update, AdaGrad._update, Adam._update, AdamW._update)

_OPTIMIZERS = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (AdaGrad, {}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
}


def get_optimizer(name_or_instance, **kwargs):
    """Build an optimiser from a name, or pass an instance through.

    Parameters
    ----------
    name_or_instance : str, Optimizer instance or Optimizer subclass
        One of ``"sgd"``, ``"momentum"`` (SGD with ``momentum=0.9``),
        ``"nesterov"`` (SGD with ``momentum=0.9, nesterov=True``),
        ``"adagrad"``, ``"adam"``, ``"adamw"`` (case-insensitive); or an
        :class:`Optimizer`, returned unchanged (``kwargs`` are ignored; copy it
        with :func:`copy.deepcopy` if it must not be mutated); or a subclass,
        called with ``kwargs``.
    **kwargs
        Constructor arguments (e.g. ``lr=0.01``); they override the presets of
        ``"momentum"`` and ``"nesterov"``.

    Returns
    -------
    optimizer : Optimizer

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones).
    TypeError
        If ``name_or_instance`` is neither a string nor an optimiser.

    Examples
    --------
    >>> from fastrnn.optim import get_optimizer
    >>> get_optimizer("momentum", lr=0.1)
    SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0)
    """
    if isinstance(name_or_instance, Optimizer):
        return name_or_instance
    if isinstance(name_or_instance, type) and issubclass(name_or_instance, Optimizer):
        return name_or_instance(**kwargs)
    if isinstance(name_or_instance, str):
        key = name_or_instance.strip().lower()
        if key not in _OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {name_or_instance!r}; valid names are "
                f"{sorted(_OPTIMIZERS)}, or pass an Optimizer instance."
            )
        cls, preset = _OPTIMIZERS[key]
        return cls(**{**preset, **kwargs})
    raise TypeError(
        f"optimizer must be a name or an Optimizer instance, got "
        f"{type(name_or_instance).__name__}; valid names are {sorted(_OPTIMIZERS)}."
    )
