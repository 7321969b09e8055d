"""The cell mathematics compiled as CUDA device functions, and the host plumbing the kernels share.

The scalar functions come from :func:`fastrnn.kernels._cellmath.build`, compiled here with
``numba.cuda.jit(device=True)``: the CUDA kernels and the CPU kernels run the same source.
``fastmath`` stays off: on CUDA it swaps in approximate division and transcendental functions, which
would break float64 parity and the gradient checks.

Next to them, the device functions every element-wise cell kernel shares (which thread computes
which unit, the rows of finished sequences). The rest of the module is host-side help used by
:mod:`.rnn`, :mod:`.lstm`, :mod:`.gru`, :mod:`._stack` and :mod:`._stream`: checking the host
arrays, choosing launch shapes, and moving arrays to and from the device, every copy through
:func:`upload` and :func:`download`, which :func:`transfers` counts.
"""

import contextlib
import math

import numpy as np
from numba import cuda

from .._cellmath import build

#: options of the device functions (kept minimal so that the simulator accepts them too)
DEVICE_JIT_OPTS = dict(device=True)

cm = build(cuda.jit(**DEVICE_JIT_OPTS))

# Module-level names: kernels resolve their globals by name.
sigmoid = cm.sigmoid
rnn_act = cm.rnn_act
rnn_dact = cm.rnn_dact
lstm_fwd = cm.lstm_fwd
lstm_bwd = cm.lstm_bwd
gru_fwd = cm.gru_fwd
gru_bwd = cm.gru_bwd
gru_v1_gates = cm.gru_v1_gates
gru_v1_state = cm.gru_v1_state
gru_v1_bwd_zn = cm.gru_v1_bwd_zn
gru_v1_bwd_r = cm.gru_v1_bwd_r
mingru_ab = cm.mingru_ab
mingru_bwd = cm.mingru_bwd
minlstm_ab = cm.minlstm_ab
minlstm_bwd = cm.minlstm_bwd

#: most threads per block of the element-wise kernels
MAX_THREADS = 256


# ---------------------------------------------------------------------------- element-wise kernels
@cuda.jit(**DEVICE_JIT_OPTS)
def unit(B, H):
    """This thread's sequence ``b`` and hidden unit ``j`` in a launch over ``(B, H)``
    (:func:`launch`), and whether they exist: the grid is rounded up to whole blocks, so the last
    threads of a block may have nothing to do."""
    j, b = cuda.grid(2)
    return b, j, b < B and j < H


@cuda.jit(**DEVICE_JIT_OPTS)
def carry(hs, t, b, j):
    """A finished sequence keeps its state: ``hs[t + 1, b, j] = hs[t, b, j]``."""
    hs[t + 1, b, j] = hs[t, b, j]


@cuda.jit(**DEVICE_JIT_OPTS)
def masked_state(hs, t, b, j, hmask, use_mask):
    """``h_{t-1}[b, j]`` (``hs[t, b, j]``) as it enters the recurrent product: times the
    recurrent-dropout mask with ``use_mask``."""
    h = hs[t, b, j]
    if use_mask:
        h *= hmask[b, j]
    return h


@cuda.jit(**DEVICE_JIT_OPTS)
def zero_gates(a, t, b, j, count):
    """``a[t, b, k*H + j] = 0`` for the ``count`` blocks of ``H`` units of ``a`` (T, B, count*H):
    no gate is cached and no gradient flows for a finished sequence."""
    H = a.shape[2] // count
    for k in range(count):
        a[t, b, k * H + j] = 0


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---------------------------------------------------------------------------- launch shapes
def _pow2(n):
    """Smallest power of two ``>= n`` (1 for ``n <= 1``)."""
    p = 1
    while p < n:
        p *= 2
    return p


def grid2(rows, cols):
    """Grid and block shapes covering a ``(rows, cols)`` array with one thread per element.

    ``x`` runs over the columns (consecutive threads touch consecutive addresses) and ``y`` over the
    rows. Small problems get small blocks, which also keeps the simulator fast.

    Returns
    -------
    grid, block : tuple of int of length 2
    """
    tx = min(32, _pow2(cols))
    ty = min(_pow2(rows), max(1, MAX_THREADS // tx))
    return (math.ceil(cols / tx), math.ceil(rows / ty)), (tx, ty)


def launch(kernel, rows, cols, *args):
    """Launch ``kernel`` over a ``(rows, cols)`` thread grid; nothing to do when it is empty."""
    if rows <= 0 or cols <= 0:
        return
    grid, block = grid2(rows, cols)
    kernel[grid, block](*args)


# ---------------------------------------------------------------------------- host arrays
def compute_dtype(arr, name, func):
    """The dtype the kernel computes in: that of ``arr`` (float32 or float64), else ValueError."""
    dt = np.asarray(arr).dtype
    if dt not in _FLOATS:
        raise ValueError(
            f"cuda {func}: {name} must be float32 or float64, got dtype {dt}. Convert the inputs "
            "with .astype(np.float32) (fast) or .astype(np.float64) (exact gradients)."
        )
    return dt


def sizes(func, arr, name, gates=1):
    """The dtype of a call (that of its first array ``arr``, see :func:`compute_dtype`) and the
    sizes ``T, B, H`` of the problem, read from ``arr`` of shape (T, B, gates*H)."""
    dt = compute_dtype(arr, name, func)
    T, B, G = np.shape(arr)
    return dt, T, B, G // gates


def check_shape(arr, shape, name, func, hint=""):
    """Raise ``ValueError`` naming ``name``, the expected and the received shape."""
    got = np.shape(arr)
    if tuple(got) != tuple(shape):
        raise ValueError(
            f"cuda {func}: {name} must have shape {tuple(shape)}, got {tuple(got)}."
            + (f" {hint}" if hint else "")
        )


def check_out(arr, shape, dt, name, func):
    """Check an output (or in-out) host array: writeable numpy, of ``shape`` and dtype ``dt``."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(
            f"cuda {func}: {name} must be a numpy array that receives the result in place, got "
            f"{type(arr).__name__}. Preallocate it with np.empty(..., dtype)."
        )
    check_shape(arr, shape, name, func)
    if arr.dtype != dt:
        raise ValueError(
            f"cuda {func}: {name} has dtype {arr.dtype} but the inputs are {dt}. Allocate every "
            "array of one call in the same dtype (the layer's dtype)."
        )
    if not arr.flags.writeable:
        raise ValueError(
            f"cuda {func}: {name} is read-only; pass a writeable array for the result.")


def gates_hint(count):
    """What the last axis of a cell's pre-activations holds, for a shape error."""
    return f"The last axis holds the {count} gates, {count}*hidden_size."


def check_args(func, dt, batch_sizes, T, B, inputs=(), outputs=()):
    """Check the host arrays of a call before anything moves to the device: the shape of every
    input ``(array, shape, name[, hint])``, every output ``(array, shape, name)`` (a writeable
    numpy array of dtype ``dt``, see :func:`check_out`) and the batch sizes
    (:func:`check_batch_sizes`, whose int64 copy is returned)."""
    for arr, shape, name, *hint in inputs:
        check_shape(arr, shape, name, func, *hint)
    for arr, shape, name in outputs:
        check_out(arr, shape, dt, name, func)
    return check_batch_sizes(batch_sizes, T, B, func)


def check_batch_sizes(batch_sizes, T, B, func):
    """Return ``batch_sizes`` as an int64 host array after checking ``0 <= batch_sizes[t] <= B``.

    The kernels index rows ``b < batch_sizes[t]`` without bounds checks, so a bad value would write
    outside the arrays on a GPU; it is rejected here instead.
    """
    bs = np.asarray(batch_sizes)
    if bs.shape != (T,) or (T and not np.issubdtype(bs.dtype, np.integer)):
        raise ValueError(
            f"cuda {func}: batch_sizes must be an integer array of shape ({T},) (one count per "
            f"step), got shape {bs.shape} and dtype {bs.dtype}."
        )
    bs = bs.astype(np.int64)
    if T and (bs.min() < 0 or bs.max() > B):
        raise ValueError(
            f"cuda {func}: batch_sizes must lie in [0, B={B}], got values from {bs.min()} to "
            f"{bs.max()}. batch_sizes[t] counts the sequences still running at step t (the batch "
            "sorted longest first)."
        )
    return bs


# ---------------------------------------------------------------------------- host-device copies
class Transfers:
    """Counts of the host-device copies made while a :func:`transfers` block runs.

    Attributes
    ----------
    uploads, downloads : int
        Copies host to device and device to host.
    upload_bytes, download_bytes : int
        Bytes they moved.
    """

    def __init__(self):
        self.uploads = self.upload_bytes = self.downloads = self.download_bytes = 0

    def __repr__(self):
        return (f"Transfers(uploads={self.uploads}, upload_bytes={self.upload_bytes}, "
                f"downloads={self.downloads}, download_bytes={self.download_bytes})")


#: the :class:`Transfers` of the :func:`transfers` blocks now open (nested blocks all count)
_counting = []


@contextlib.contextmanager
def transfers():
    """Count the host-device copies of the backend made inside the ``with`` block.

    Every copy of the CUDA backend goes through :func:`upload` and :func:`download`, so the counts
    are complete for everything the package moves (a kernel is never launched with a host array,
    which numba-cuda would copy implicitly).

    Yields
    ------
    Transfers
        Updated as the copies happen; read it inside or after the block.

    Examples
    --------
    >>> with transfers() as moved:  # doctest: +SKIP
    ...     y, state = layer.step(x, state)
    >>> moved.uploads, moved.downloads  # doctest: +SKIP
    (1, 1)
    """
    counts = Transfers()
    _counting.append(counts)
    try:
        yield counts
    finally:
        _counting.remove(counts)


def _count(up, nbytes):
    for counts in _counting:
        if up:
            counts.uploads += 1
            counts.upload_bytes += nbytes
        else:
            counts.downloads += 1
            counts.download_bytes += nbytes


def upload(host, out=None):
    """Copy the C-contiguous host array ``host`` to the device: into the device array ``out`` of
    the same shape and dtype, or into a new one. The one place where the backend copies to the
    device (counted by :func:`transfers`).

    Returns
    -------
    device array
        ``out``, or the new array.
    """
    _count(True, host.nbytes)
    if out is None:
        return cuda.to_device(host)
    out.copy_to_device(host)
    return out


def download(dev, host):
    """Copy the device array ``dev`` into the C-contiguous host array ``host`` of the same shape
    and dtype. The one place where the backend copies from the device (counted by
    :func:`transfers`). Returns ``host``."""
    _count(False, host.nbytes)
    dev.copy_to_host(host)
    return host


def to_device(arr, dt):
    """Copy a host array to the device (made C-contiguous in dtype ``dt`` first)."""
    return upload(np.ascontiguousarray(arr, dtype=dt))


def to_device_t(arr, dt):
    """Copy the transpose of a host matrix to the device (the host functions take ``W_hh^T``, the
    ``*_device`` functions ``W_hh``)."""
    return to_device(np.transpose(arr), dt)


def mask_to_device(hmask, use_mask, B, H, dt, func):
    """The recurrent-dropout mask on the device, or ``None`` when ``use_mask`` is false."""
    if not use_mask:
        return None
    check_shape(hmask, (B, H), "hmask", func,
                "With use_mask=True the mask has one row per sequence.")
    return to_device(hmask, dt)


def states_to_device(hs, dt):
    """A device buffer shaped like ``hs`` (T+1, B, H) whose step 0 is copied from the host.

    Only ``hs[0]`` is an input; the other steps are written by the kernels, so they are not copied.
    """
    d = empty(hs.shape, dt)
    if hs.shape[1] and hs.shape[2]:
        upload(np.ascontiguousarray(hs[0], dtype=dt), d[0])
    return d


def empty(shape, dt):
    """Uninitialised device scratch (each kernel writes it before reading it); allocating copies
    nothing."""
    return cuda.device_array(shape, dt)


def copy_back(*pairs):
    """Copy each device array of the ``(device, host)`` pairs into its host array, in place."""
    for d, host in pairs:
        if host.size == 0:
            continue
        if host.flags.c_contiguous:
            download(d, host)
        else:
            host[...] = download(d, np.empty(host.shape, host.dtype))
