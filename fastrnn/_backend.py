"""Backends: the only module that imports kernels, and the one place that routes a layer call.

A backend runs the recurrent layers' arithmetic for one call of a layer (every stacked layer and
direction at once). It is an object with these entry points, called by :mod:`fastrnn.nn.recurrent`
after the layer has validated the input, sorted the batch (:class:`fastrnn.nn._plan.Plan`)
and drawn the dropout masks:

``forward(spec, params, X, plan, h0, c0, hmasks, drops) -> (Y, hn, cn, ctx)``
    ``X`` of shape (B, T, input_size), batch-first; ``Y`` of shape (B, T, D*H), zero past each
    length; ``hn``/``cn`` of shape (num_layers*D, B, H) in the caller's order; ``ctx`` is what the
    backward of the same call needs (private to the backend).
``backward(spec, params, grads, plan, ctx, dY, dhn, dcn) -> (dX, dh0, dc0)``
    Fills ``grads`` (dict of PyTorch names, like ``params``) with the gradients of the call.
``calls_blas(spec) -> bool``
    Whether ``forward`` and ``backward`` for a layer of ``spec`` call BLAS; the layer then runs
    them inside :func:`one_blas_thread`.
``stream(spec, params, state) -> step``
    Binds a step function over a :class:`fastrnn.nn.StreamState`'s buffers: ``step()`` reads
    ``state.x``, advances ``state.h`` (and ``state.c``) by one step and returns ``False`` (changing
    nothing) when the input holds a non-finite value.

``spec`` (:class:`fastrnn.nn.recurrent.CellSpec`) describes the cell, the sizes and the dtype;
``params`` are the layer's arrays. A backend also carries its eight per-step cell kernels
(``rnn_forward`` ... ``gru_v1_backward``, see :mod:`fastrnn.kernels.rnn`) as attributes (the CPU
backends also those of minGRU, minLSTM and IndRNN, :data:`MIN_KERNEL_NAMES`; the backends that
have a cell's kernels, where not all do, are listed in :data:`CELL_BACKENDS`), and the two
kernels of :class:`fastrnn.nn.Embedding`, whose arrays stay on the host on every backend:

``embedding_forward(weight, ids, out)`` and ``embedding_backward(ids, dY, padding_idx, g)``
    The gather-sum of every step's ids and its scatter-add (see :mod:`fastrnn.kernels.embedding`):
    numpy's on the ``numpy`` backend, Numba's on the others, except the forward of ``cython``,
    numpy's, so that its inference loads no Numba code.

The backends:

``numpy``
    The reference (:mod:`fastrnn.kernels.numpy_ref` under the general driver
    :mod:`fastrnn.kernels._driver`): always present, slow, used by the tests.
``numba``
    The default: JIT-compiled kernels; float32 layers run the fused, multithreaded fast driver
    (:mod:`fastrnn.kernels._fastdriver`), float64 layers the general driver.
``cython``
    Ahead-of-time compiled kernels (``fastrnn._cy``) under the general driver, a one-call kernel
    for the float32 inference of one sequence (:mod:`fastrnn._cy._single`), and bound
    one-call-per-layer streaming steps; present when the extension was built.
``cuda``
    numba-cuda kernels: a whole call stays on the device (:mod:`fastrnn.kernels.cuda._stack`);
    imported only when asked for. Its ``streams_on_device`` tells :meth:`fastrnn.nn.LSTM.init_state`
    to make a ``fastrnn.nn.streaming.DeviceStreamState``, whose states and weights stay on the
    device between steps (:mod:`fastrnn.kernels.cuda._stream`); in a stack with connections each
    layer steps with the host-level kernels (minGRU, minLSTM and IndRNN: numpy's).

A layer built with ``backend="auto"`` runs on ``$FASTRNN_BACKEND`` when that is set, else on the
default, ``numba`` (``cython`` where Numba is not installed), except for the calls listed in
:data:`AUTO_ROUTES`, which go to the backend named there when it is available.
``layer.last_backend_`` tells which backend ran a layer's last call.
"""

import contextlib
import functools
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from types import SimpleNamespace

from ._config import env_backend

KERNEL_NAMES = (
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward", "gru_v1_forward", "gru_v1_backward",
)
#: the kernels of the cells with an element-wise recurrence (see :mod:`fastrnn.kernels.minimal`)
MIN_KERNEL_NAMES = (
    "mingru_gates", "minlstm_gates", "mingru_grads", "minlstm_grads", "scan_range", "scan_local",
    "scan_apply", "indrnn_forward", "indrnn_backward",
    # optional: the fused kernels of the Numba backend (see fastrnn.kernels._mincells)
    "mingru_forward", "minlstm_forward", "mingru_backward", "minlstm_backward",
)
BACKENDS = ("numba", "cython", "cuda", "numpy")
DEFAULT = "numba"

#: the backends that have kernels for a cell (``CellSpec.kind``), where not all of them do (every
#: backend has kernels for every cell at present)
CELL_BACKENDS = {}
#: the cells with an element-wise recurrence (see :mod:`fastrnn.kernels.minimal`)
_ELEMENTWISE_KINDS = ("mingru", "minlstm", "indrnn")

#: Where ``backend="auto"`` sends a call of a given kind when that backend is available (every
#: other call runs on :data:`DEFAULT`). Kinds: ``"step"``, a streaming step
#: (:meth:`fastrnn.nn.LSTM.step`); ``"infer1"``, a forward in evaluation mode on a single
#: sequence. Both are a few microseconds of arithmetic per step, where the call overhead decides
#: and the Cython backend has the least; a fresh process then also predicts without loading
#: Numba's compiled kernels.
AUTO_ROUTES = {"step": "cython", "infer1": "cython"}

#: The compiled loops of training outside the layers, by name: the module that defines each.
#: :func:`training_kernel` imports them on first use, so that inference loads no Numba code.
TRAINING_KERNELS = {
    "dropout": "fastrnn.nn._dropout",  # the inverted-dropout mask, applied in one pass
    "adam_step": "fastrnn.optim._fused",  # Adam/AdamW over the buffer of all parameters
    "sum_squares": "fastrnn.optim._fused",  # the squared norm of that buffer's gradients
    "max_pool": "fastrnn.kernels.pooling",  # max pooling over the real steps, and its gradient
    "max_pool_backward": "fastrnn.kernels.pooling",
}

_cache = {}
_errors = {}
_blas = []
_training = {}


def _blas_controller():
    """threadpoolctl's controller of the loaded BLAS libraries (None without threadpoolctl)."""
    if not _blas:
        try:
            _load_cython_blas()  # the BLAS the kernels call, loaded now
            from threadpoolctl import ThreadpoolController

            _blas.append(ThreadpoolController().select(user_api="blas"))
        except ImportError:
            _blas.append(None)
    return _blas[0]


def one_blas_thread():
    """Context manager limiting every loaded BLAS library to one thread (a no-op without
    threadpoolctl).

    The layers run a backend's forward and backward inside it when they call BLAS (see
    ``calls_blas`` above). The general kernels call BLAS once per time step on small matrices
    between compiled loops, and on two cores the worker threads of a multithreaded BLAS call (even
    one made just before, for the all-steps input projection) keep spinning against those loops:
    measured 20 to 70 times slower at batch 1 (0.65 ms against 48 ms for an LSTM of T=100, H=128),
    3 to 7 times slower in training. Parallelism comes from the kernels' own threads instead: one
    form of parallelism per phase.
    """
    ctl = _blas_controller()
    return contextlib.nullcontext() if ctl is None else _OneThread(ctl.lib_controllers)


class _OneThread:
    """``one_blas_thread()`` over threadpoolctl's library controllers: their thread counts are
    read and set directly (a few microseconds; ``ThreadpoolController.limit`` takes about 35 us,
    a tenth of a one-sequence prediction), and only those not at one thread already are changed
    and restored."""

    __slots__ = ("libs", "saved")

    def __init__(self, libs):
        self.libs = libs
        self.saved = ()

    def __enter__(self):
        self.saved = [(lib, n) for lib in self.libs if (n := lib.num_threads) != 1]
        for lib, _ in self.saved:
            lib.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for lib, n in self.saved:
            lib.set_num_threads(n)
        return False


def training_kernel(name):
    """The compiled training loop ``name`` of :data:`TRAINING_KERNELS`, imported on first use."""
    fn = _training.get(name)
    if fn is None:
        fn = _training[name] = getattr(importlib.import_module(TRAINING_KERNELS[name]), name)
    return fn


def _kernels(module_names):
    ns = {}
    for name in module_names:
        mod = importlib.import_module(name)
        ns.update({k: getattr(mod, k) for k in KERNEL_NAMES + MIN_KERNEL_NAMES
                   if hasattr(mod, k)})
    return ns


def _numba_embedding_backward(ids, dY, padding_idx, g):
    """Numba's scatter-add of the embedding, imported on the first call (the Cython backend loads
    no Numba code until it trains)."""
    from .kernels.embedding import embedding_backward

    embedding_backward(ids, dY, padding_idx, g)


def _embedding_kernels(name):
    """The embedding's two kernels on backend ``name`` (see the module docstring)."""
    from .kernels import numpy_ref

    if name == "numpy":
        return dict(embedding_forward=numpy_ref.embedding_forward,
                    embedding_backward=numpy_ref.embedding_backward)
    if name == "cython":
        return dict(embedding_forward=numpy_ref.embedding_forward,
                    embedding_backward=_numba_embedding_backward)
    from .kernels import embedding

    return dict(embedding_forward=embedding.embedding_forward,
                embedding_backward=embedding.embedding_backward)


def _always(spec):
    return True


def _general(name, kernels, **extra):
    """A backend running the general driver over the per-step ``kernels``."""
    from .kernels import _driver

    k = SimpleNamespace(**kernels)
    entry = dict(forward=functools.partial(_driver.forward, k),
                 backward=functools.partial(_driver.backward, k),
                 stream=functools.partial(_driver.stream, k),
                 calls_blas=_always)
    entry.update(_embedding_kernels(name))
    entry.update(extra)
    return SimpleNamespace(name=name, **kernels, **entry)


def _numba_backend():
    from .kernels import _driver, _fastdriver

    kernels = _kernels(["fastrnn.kernels.rnn", "fastrnn.kernels.lstm", "fastrnn.kernels.gru",
                        "fastrnn.kernels.minimal"])
    k = SimpleNamespace(**kernels)

    def forward(spec, params, X, plan, h0, c0, hmasks, drops, tokens=None):
        if _fastdriver.applies(spec):
            *out, ctx = _fastdriver.forward(spec, params, X, plan, h0, c0, hmasks, drops, tokens)
            return (*out, ("fast", ctx))
        *out, ctx = _driver.forward(k, spec, params, X, plan, h0, c0, hmasks, drops)
        return (*out, ("general", ctx))

    def backward(spec, params, grads, plan, ctx, dY, dhn, dcn):
        which, ctx = ctx
        if which == "fast":
            return _fastdriver.backward(spec, params, grads, plan, ctx, dY, dhn, dcn)
        return _driver.backward(k, spec, params, grads, plan, ctx, dY, dhn, dcn)

    def calls_blas(spec):
        # the fast driver's products are its own (fastrnn.kernels._gemm)
        return not _fastdriver.applies(spec)

    def uses_tokens(ctx):
        # whether a forward given tokens projected through their table (its backward then
        # returns the table's gradient)
        return ctx[0] == "fast" and ctx[1]["tokens"]

    return _general("numba", kernels, forward=forward, backward=backward, calls_blas=calls_blas,
                    uses_tokens=uses_tokens)


def _load_cython_blas():
    """Load SciPy's BLAS function table, which the Cython kernels take their BLAS calls from,
    without importing ``scipy.linalg``.

    ``import scipy.linalg.cython_blas`` runs ``scipy/linalg/__init__.py`` first, which imports
    most of ``scipy.linalg`` (and through it ``numpy.testing``): about 0.3 s of a process that
    only loads a model and predicts. The table is one self-contained extension module, so it is
    loaded from its file under its own name; a later ``import scipy.linalg`` finds it in
    ``sys.modules``, and :class:`_BindBlasToLinalg` makes it the package's attribute as an
    ordinary import would. When ``scipy.linalg`` is already imported, or the file is not where
    SciPy installs it, the module is imported the usual way.
    """
    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "scipy.linalg" in sys.modules:
        return
    spec = importlib.util.find_spec("scipy")  # imports nothing
    folder = os.path.join(spec.submodule_search_locations[0], "linalg") if spec else None
    path = next((os.path.join(folder, "cython_blas" + suffix)
                 for suffix in importlib.machinery.EXTENSION_SUFFIXES
                 if folder and os.path.isfile(os.path.join(folder, "cython_blas" + suffix))), None)
    if path is None:
        importlib.import_module(name)
        return
    spec = importlib.util.spec_from_file_location(
        name, path, loader=importlib.machinery.ExtensionFileLoader(name, path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    sys.meta_path.insert(0, _BindBlasToLinalg())


class _BindBlasToLinalg:
    """Import hook of :func:`_load_cython_blas`: when ``scipy.linalg`` is imported, set its
    ``cython_blas`` attribute to the module loaded before it; then it takes itself off."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "scipy.linalg":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.cython_blas = sys.modules["scipy.linalg.cython_blas"]

        spec.loader.exec_module = exec_module
        return spec


def _load(name):
    if name == "numpy":
        return _general(name, _kernels(["fastrnn.kernels.numpy_ref"]))
    if name == "numba":
        return _numba_backend()
    if name == "cython":
        from .kernels import _driver

        _load_cython_blas()
        kernels = _kernels(["fastrnn._cy._kernels"])
        bound = importlib.import_module("fastrnn._cy._stream").stream
        k = SimpleNamespace(**kernels)

        def stream(spec, params, state):
            # the bound one-call-per-layer steps are those of the cells with a recurrent matrix
            if spec.kind in _ELEMENTWISE_KINDS:
                return _driver.stream(k, spec, params, state)
            return bound(spec, params, state)

        # one-sequence inference in one call (fastrnn._cy._single), the general driver otherwise
        # (and for everything where that one extension was not built)
        try:
            single = importlib.import_module("fastrnn._cy._single")
        except ImportError:
            return _general(name, kernels, stream=stream)
        return _general(name, kernels, stream=stream,
                        forward=functools.partial(single.forward, k),
                        backward=functools.partial(single.backward, k),
                        calls_blas=single.calls_blas)
    if name == "cuda":
        from .kernels import _driver as driver

        kernels = _kernels(["fastrnn.kernels.cuda"])
        stack = importlib.import_module("fastrnn.kernels.cuda._stack")
        host = SimpleNamespace(**_kernels(["fastrnn.kernels.numpy_ref"]))
        k = SimpleNamespace(**kernels)

        on_device = importlib.import_module("fastrnn.kernels.cuda._stream")

        def stream(spec, params, state):
            # the layer's own state (fastrnn.nn.streaming.DeviceStreamState) steps on the device;
            # a layer of a stack with connections steps with the host-level kernels (the
            # element-wise cells: numpy's, a few vector operations per step)
            if getattr(state, "_bind", None) is not None:
                return on_device.stream(spec, params, state)
            return driver.stream(host if spec.kind in _ELEMENTWISE_KINDS else k, spec, params,
                                 state)

        # besides the general entry points, the whole-layer driver that keeps a call on the device
        return _general(name, kernels, forward=stack.forward, backward=stack.backward,
                        stream=stream, streams_on_device=True, stack_forward=stack.stack_forward,
                        stack_backward=stack.stack_backward)
    raise ValueError(f"unknown backend {name!r}; choose one of 'auto', {', '.join(map(repr, BACKENDS))}.")


def check_name(name):
    """Validate a ``backend`` argument: ``"auto"``, ``None`` (same as ``"auto"``) or one of
    :data:`BACKENDS`. Returns the name (``"auto"`` for ``None``)."""
    if name is None:
        return "auto"
    if name != "auto" and name not in BACKENDS:
        raise ValueError(
            f"backend must be 'auto' or one of {', '.join(map(repr, BACKENDS))}, got {name!r}. "
            "Check the backend argument or the FASTRNN_BACKEND environment variable."
        )
    return name


def resolve_name(name="auto"):
    """Turn ``"auto"`` (or ``None``) into the backend that runs a call with no route of its own
    (``$FASTRNN_BACKEND``, else :data:`DEFAULT`, else, where Numba is not installed, as in a
    serving install of numpy, scipy and the wheel, the Cython kernels); validate any other
    name."""
    name = check_name(name)
    if name == "auto":
        name = env_backend()
        if name is None:
            name = DEFAULT
            if not _numba_installed() and has_backend("cython"):
                name = "cython"
        name = check_name(name)
    return name


def _numba_installed():
    """Whether Numba can be imported (looked up, not imported: that takes a second)."""
    if "numba" not in _installed:
        _installed["numba"] = importlib.util.find_spec("numba") is not None
    return _installed["numba"]


_installed = {}


def route(requested, call=None, kind=None):
    """The backend that runs a call.

    Parameters
    ----------
    requested : str
        The layer's ``backend`` argument.
    call : {"step", "infer1"} or None
        The kind of call (see :data:`AUTO_ROUTES`); ``None`` for any other.
    kind : str, optional
        The layer's cell (``CellSpec.kind``): a route of :data:`AUTO_ROUTES` to a backend without
        kernels for it (:data:`CELL_BACKENDS`) is not taken.

    Returns
    -------
    str
        A name of :data:`BACKENDS`.
    """
    if check_name(requested) == "auto" and env_backend() is None:
        routed = AUTO_ROUTES.get(call)
        if routed is not None and supports(routed, kind) and has_backend(routed):
            return routed
    return resolve_name(requested)


def supports(name, kind):
    """Whether backend ``name`` has kernels for the cell ``kind`` (``CellSpec.kind``; ``None``
    for any)."""
    return kind is None or name in CELL_BACKENDS.get(kind, BACKENDS)


def check_supports(name, kind, requested=None):
    """Raise ``ValueError`` naming the backend, the cell and the backends that run it when
    backend ``name`` has no kernels for the cell ``kind``; ``requested`` is the layer's
    ``backend`` argument (``"auto"`` names ``$FASTRNN_BACKEND`` as the cause)."""
    if supports(name, kind):
        return
    works = CELL_BACKENDS[kind]
    why = (f"FASTRNN_BACKEND={name!r} sends every call of a backend='auto' layer there"
           if check_name(requested) == "auto" and env_backend() is not None
           else f"the layer asks for backend={name!r}")
    raise ValueError(
        f"backend {name!r} has no kernels for the {kind!r} cell ({why}); it runs on "
        f"{' or '.join(map(repr, works))}. Build the layer with backend='auto' or "
        f"backend={works[0]!r}" + (", or unset FASTRNN_BACKEND." if "FASTRNN" in why else "."))


def get_backend(name="auto"):
    """Return backend ``name`` (see the module docstring); raise ``RuntimeError`` saying why if it
    is not available."""
    name = resolve_name(name)
    if name not in _cache:
        try:
            _cache[name] = _load(name)
        except Exception as exc:  # noqa: BLE001 - reported to the user below
            _errors[name] = f"{type(exc).__name__}: {exc}"
            raise RuntimeError(
                f"backend {name!r} is not available ({_errors[name]}). "
                "Run fastrnn.show_backends() for details, or choose another backend."
            ) from exc
    return _cache[name]


def has_backend(name):
    """Whether backend ``name`` loads (a failure is remembered, so a missing backend costs one
    import attempt per process)."""
    if name in _cache:
        return True
    if name in _errors:
        return False
    try:
        get_backend(name)
        return True
    except RuntimeError:
        return False


def available_backends():
    """Dict ``name -> (available, reason)`` for every backend."""
    out = {}
    for name in BACKENDS:
        try:
            get_backend(name)
            out[name] = (True, "available")
        except RuntimeError:
            out[name] = (False, _errors[name])
    return out


def numba_cache_is_warm():
    """Whether Numba's on-disk cache already holds fastrnn's compiled kernels (a fresh install, or
    a new machine, has none: the first training call then compiles them, once, for some seconds).
    Looks where Numba writes its cache: beside the kernels' sources, ``$NUMBA_CACHE_DIR``, or the
    user's cache folder."""
    import glob
    import os

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels", "__pycache__")
    roots = [here, os.environ.get("NUMBA_CACHE_DIR", ""),
             os.path.join(os.path.expanduser("~"), ".cache", "numba")]
    for root in filter(None, roots):
        if glob.glob(os.path.join(root, "**", "lstm.lstm_fast_forward*.nbi"), recursive=True):
            return True
    return False


def show_backends(file=None):
    """Print which backends are available, and where ``backend="auto"`` runs each kind of call.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).
    """
    default = resolve_name("auto")
    avail = available_backends()
    for name, (ok, why) in avail.items():
        print(f"{name:7s} {'yes' if ok else 'no '} {why if not ok else ''}".rstrip(), file=file)
    print(f"auto: {route('auto', None)} for training and batches", file=file)
    for call, what in (("infer1", "inference on one sequence"), ("step", "streaming steps")):
        print(f"auto: {route('auto', call)} for {what}", file=file)
    if env_backend() is not None:
        print(f"(FASTRNN_BACKEND={default} forces every call of an 'auto' layer)", file=file)
