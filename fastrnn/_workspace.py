"""Large buffers recycled between the calls of a layer.

A training forward of a long batch keeps ``T x B x 4H`` activated gates and the states of every
step for the backward (at ``T`` 1,400, ``B`` 32, ``H`` 256 about 275 MB), and the backward needs
as much again for the gate gradients. Freshly allocated, every such array is new memory from the
operating system, which is cleared page by page on first touch, each call again; on a machine whose
memory is under pressure (or a virtual machine whose host has taken the pages back) that costs as
much as the arithmetic. A layer therefore hands its previous cache (for the forward) or the scratch
of its previous backward (for the backward) to a :class:`Pool`, and the drivers that allocate
through :func:`empty` and :func:`zeros` take their buffers from it.

Safety: an array is recycled only when the pool holds the last reference to it, checked with the
reference count against that of an array referenced by the pool alone (measured the same way, so
that the check does not depend on how the interpreter counts). A caller that still holds the
previous cache (a decoder that keeps every step's cache for a later backward), a view of one of
its arrays or the array itself keeps that array out of the pool, and its values stay as they were.

Alignment: every array handed out here starts on a multiple of :data:`ALIGN` bytes. numpy aligns
its data to 16 bytes only; a 64-byte vector load from a packed matrix or an array of gates that
straddles two cache lines costs two: on an Intel Xeon (Ice Lake server) core the recurrent
products of the fast kernels ran 20-30 % slower with their packed weights and gates at an offset
of 16 bytes than at 0.
"""

import math
import sys
import threading
from contextlib import contextmanager

import numpy as np

__all__ = ["ALIGN", "Pool", "arrays_of", "using", "empty", "zeros", "copy", "aligned_empty",
           "aligned_zeros", "aligned_copy", "as_aligned"]

#: smaller arrays are left to the allocator (they are reused there, page faults are rare)
MIN_BYTES = 1 << 20
#: a pooled array serves a request of at least this share of its size (so at most twice the
#: memory needed is held for the request)
MIN_SHARE = 0.5
#: the data of every array from this module starts on a multiple of this many bytes (a cache line,
#: the width of an AVX-512 vector)
ALIGN = 64

_local = threading.local()


def _root(a):
    """The array that owns the memory of ``a`` (``a`` itself when it owns it)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _recyclable(a):
    """Whether ``a`` may be written over for another call: it owns its memory (not a buffer of
    another object), is C-contiguous, writeable and large enough to matter."""
    return (a.base is None and a.flags.owndata and a.flags.c_contiguous and a.flags.writeable
            and a.nbytes >= MIN_BYTES)


def _nbytes(shape, dtype):
    n = math.prod(shape) if isinstance(shape, tuple) else int(np.prod(shape, dtype=np.int64))
    return n * dtype.itemsize


def _address(a):
    return a.__array_interface__["data"][0]


def _room(root):
    """Bytes of ``root`` usable from its first :data:`ALIGN`-byte boundary on."""
    return root.nbytes - (-_address(root) % ALIGN)


def _carve(root, shape, dtype, need):
    """An array of ``shape`` and ``dtype`` (``need`` bytes) in the memory of the C-contiguous
    ``root``, starting at its first :data:`ALIGN`-byte boundary (the caller checked the room)."""
    raw = root.reshape(-1).view(np.uint8)
    off = -_address(raw) % ALIGN
    return raw[off:off + need].view(dtype).reshape(shape)


def aligned_empty(shape, dtype):
    """A new uninitialised array, its data on a multiple of :data:`ALIGN` bytes.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : data-type

    Returns
    -------
    ndarray
        C-contiguous; a view of a byte buffer ``ALIGN`` bytes longer than the data.
    """
    dtype = np.dtype(dtype)
    need = _nbytes(shape, dtype)
    return _carve(np.empty(need + ALIGN, np.uint8), shape, dtype, need)


def aligned_zeros(shape, dtype):
    """:func:`aligned_empty` filled with zeros (new memory: the operating system clears it)."""
    dtype = np.dtype(dtype)
    need = _nbytes(shape, dtype)
    return _carve(np.zeros(need + ALIGN, np.uint8), shape, dtype, need)


def aligned_copy(a, dtype=None):
    """A C-contiguous copy of ``a`` (in ``dtype``, default its own) in new memory aligned as
    :func:`aligned_empty`'s."""
    a = np.asarray(a)
    out = aligned_empty(a.shape, a.dtype if dtype is None else dtype)
    np.copyto(out, a, casting="unsafe")
    return out


def as_aligned(a, dtype):
    """``a`` itself when it is a C-contiguous array of ``dtype`` starting on an :data:`ALIGN`-byte
    boundary, else :func:`aligned_copy` of it in ``dtype`` (as ``np.ascontiguousarray`` does for
    contiguity)."""
    if (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
            and _address(a) % ALIGN == 0):
        return a
    return aligned_copy(a, dtype)


def arrays_of(obj):
    """The recyclable arrays (see :func:`_recyclable`) that own the memory of the arrays found in
    ``obj``, a structure of dicts, lists and tuples (a layer's cache), each once.

    Parameters
    ----------
    obj : object

    Returns
    -------
    list of ndarray
    """
    found, stack = {}, [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, np.ndarray):
            r = _root(o)
            if _recyclable(r):
                found[id(r)] = r
        elif isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
    return list(found.values())


def _unshared(arrays):
    """The arrays of the list ``arrays`` that nothing but that list refers to (the list is changed:
    ``arrays`` must be a list that the caller alone holds)."""
    arrays.append(np.empty(0, np.uint8))  # the probe: held by the list alone
    counts = [sys.getrefcount(a) for a in arrays]
    probe = counts.pop()
    arrays.pop()
    return [a for a, n in zip(arrays, counts) if n <= probe]


class Pool:
    """Arrays that may be written over, handed out by :func:`empty` while :func:`using` the pool.

    Parameters
    ----------
    arrays : list of ndarray
        Candidates, in a list that the caller hands over (it keeps no reference to the list or to
        the arrays): those that something else still refers to are left alone.
    """

    def __init__(self, arrays):
        mine = [a for a in arrays if _recyclable(a)]
        del arrays[:]
        self._free = _unshared(mine)
        #: every array handed out (recycled or new), for :meth:`free_after`
        self._handed = []

    def __len__(self):
        return len(self._free)

    def empty(self, shape, dtype):
        """An uninitialised array of ``shape`` and ``dtype``, aligned (:data:`ALIGN`): a view of
        the smallest free array, of any dtype, with room for at least that many bytes and holding
        at most ``1 / MIN_SHARE`` times as many (an array handed out earlier in the call is free
        again once nothing refers to it), else a new array."""
        dtype = np.dtype(dtype)
        need = _nbytes(shape, dtype)
        if need < MIN_BYTES:
            return aligned_empty(shape, dtype)
        i = self._fit(need)
        if i is None and self._handed:
            self._reclaim()
            i = self._fit(need)
        if i is not None:
            out = _carve(self._free.pop(i), shape, dtype, need)
        else:
            out = aligned_empty(shape, dtype)
        self._handed.append(_root(out))
        return out

    def _fit(self, need):
        """Index in the free list of the smallest array that serves ``need`` bytes, or None."""
        fits = [i for i, a in enumerate(self._free)
                if need <= _room(a) and need >= MIN_SHARE * a.nbytes]
        return min(fits, key=lambda i: self._free[i].nbytes) if fits else None

    def _reclaim(self):
        """Move the arrays handed out that nothing refers to any more back to the free list."""
        handed, self._handed = self._handed, []
        free = {id(a) for a in _unshared(handed)}
        for a in handed:
            (self._free if id(a) in free else self._handed).append(a)

    def free_after(self):
        """The arrays handed out by this pool that nothing else refers to any more (a call's
        scratch, to hand to the next call's pool); the pool forgets every array."""
        handed, self._handed, self._free = self._handed, [], []
        return _unshared(handed)


@contextmanager
def using(pool):
    """Make ``pool`` (a :class:`Pool` or None) the one :func:`empty` draws from in this thread."""
    previous = getattr(_local, "pool", None)
    _local.pool = pool
    try:
        yield pool
    finally:
        _local.pool = previous


def empty(shape, dtype):
    """``np.empty(shape, dtype)``, aligned (:data:`ALIGN`), from the pool of :func:`using` where
    there is one."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return aligned_empty(shape, dtype)
    return pool.empty(shape, dtype)


def zeros(shape, dtype):
    """``np.zeros(shape, dtype)``, aligned (:data:`ALIGN`), from the pool of :func:`using` where
    there is one."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return aligned_zeros(shape, dtype)
    out = pool.empty(shape, dtype)
    out.fill(0)
    return out


def copy(a):
    """A C-contiguous copy of ``a``, aligned (:data:`ALIGN`), from the pool of :func:`using` where
    there is one."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return aligned_copy(a)
    out = pool.empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out
