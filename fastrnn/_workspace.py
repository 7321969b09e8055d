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
"""

import math
import sys
import threading
from contextlib import contextmanager

import numpy as np

__all__ = ["Pool", "arrays_of", "using", "empty", "zeros", "copy"]

#: smaller arrays are left to the allocator (they are reused there, page faults are rare)
MIN_BYTES = 1 << 20
#: a pooled array serves a request of at least this share of its size (so at most twice the
#: memory needed is held for the request)
MIN_SHARE = 0.5

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
        """An uninitialised array of ``shape`` and ``dtype``: a view of the smallest free array of
        the dtype holding at least that many bytes and at most ``1 / MIN_SHARE`` times as many
        (an array handed out earlier in the call is free again once nothing refers to it), else a
        new array."""
        dtype = np.dtype(dtype)
        n = math.prod(shape) if isinstance(shape, tuple) else int(np.prod(shape, dtype=np.int64))
        need = n * dtype.itemsize
        if need < MIN_BYTES:
            return np.empty(shape, dtype)
        i = self._fit(dtype, need)
        if i is None and self._handed:
            self._reclaim()
            i = self._fit(dtype, need)
        if i is not None:
            a = self._free.pop(i)
            out = a.reshape(-1)[:n].reshape(shape)
        else:
            a = out = np.empty(shape, dtype)
        self._handed.append(a)
        return out

    def _fit(self, dtype, need):
        """Index in the free list of the smallest array that serves ``need`` bytes, or None."""
        fits = [i for i, a in enumerate(self._free)
                if a.dtype == dtype and need <= a.nbytes and need >= MIN_SHARE * a.nbytes]
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
    """``np.empty(shape, dtype)``, from the pool of :func:`using` where there is one."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return np.empty(shape, dtype)
    return pool.empty(shape, dtype)


def zeros(shape, dtype):
    """``np.zeros(shape, dtype)``, from the pool of :func:`using` where there is one."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return np.zeros(shape, dtype)
    out = pool.empty(shape, dtype)
    out.fill(0)
    return out


def copy(a):
    """A C-contiguous copy of ``a``, from the pool of :func:`using` where there is one."""
    out = empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out
