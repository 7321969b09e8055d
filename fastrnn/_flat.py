"""Arrays that live side by side in one contiguous buffer.

A network's parameters (and, separately, its gradients) are many small arrays. An optimiser step,
weight decay, the global gradient norm, clipping and zeroing each touch all of them, and with a
numpy call per array and operation that costs more than the recurrent kernels on small batches.
:class:`FlatArrays` keeps the arrays as views into one 1-D buffer, so that those operations are one
call over the buffer each, while every array keeps its name, its shape and its identity.
"""

from operator import is_

import numpy as np

from ._workspace import ALIGN, aligned_zeros

__all__ = ["FlatArrays", "flat_buffer", "ALIGN"]


class FlatArrays(dict):
    """A dict of named arrays that are views into one contiguous 1-D buffer, in the dict's order.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        The arrays to lay out; their values are copied into the buffer (in its dtype).
    dtype : dtype
        The buffer's dtype.

    Attributes
    ----------
    flat : ndarray of shape (n,)
        The buffer: the arrays one after the other, each starting :data:`ALIGN` bytes into it
        times a whole number, with zeros in the gaps (that no array covers).
    views : tuple of ndarray
        The views, in the dict's order.
    offsets : tuple of int
        Where each view starts in ``flat`` (``views[i]`` is ``flat[offsets[i]:][:size_i]``).

    Notes
    -----
    Assigning to an existing name copies the value into its view (the array keeps its identity, so
    a layer holding it sees the new values); a value of another shape raises ``ValueError``. Any
    other change of the dict (a new name, ``del``, ``pop``) is allowed, but the dict is then no
    longer one buffer: :meth:`contiguous` returns ``None`` and the callers fall back to one call
    per array. A copy (pickle, :func:`copy.deepcopy`) is not one buffer either.
    """

    def __init__(self, arrays, dtype):
        arrays = {name: np.asarray(a) for name, a in arrays.items()}
        dtype = np.dtype(dtype)
        unit = max(1, ALIGN // dtype.itemsize)
        offsets, n = [], 0
        for a in arrays.values():
            offsets.append(n)
            n += -(-a.size // unit) * unit
        flat = aligned_zeros(n, dtype)  # every array on an ALIGN-byte boundary, gaps of zeros
        views = {}
        for (name, a), offset in zip(arrays.items(), offsets):
            view = flat[offset:offset + a.size].reshape(a.shape)
            np.copyto(view, a, casting="unsafe")
            views[name] = view
        super().__init__(views)
        self.flat = flat
        self.views = tuple(views.values())
        self.offsets = tuple(offsets)
        self._owner = flat.base

    def __setitem__(self, name, value):
        view = dict.get(self, name)
        if view is not None and view is value:
            return
        if view is not None and view.base is getattr(self, "_owner", None):
            value = np.asarray(value)
            if value.shape != view.shape:
                raise ValueError(
                    f"array {name!r} has shape {view.shape}, got a value of shape {value.shape}; "
                    "assign an array of the same shape (it is copied into the parameter).")
            np.copyto(view, value, casting="same_kind")
            return
        dict.__setitem__(self, name, value)

    def update(self, *args, **kwargs):
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def contiguous(self):
        """The buffer, if every value is still its view, in order; else ``None``."""
        owner = getattr(self, "_owner", None)
        views = getattr(self, "views", ())
        # a copy (pickle, deepcopy) keeps the identities but not the views: one base tells
        if owner is None or not views or dict.__len__(self) != len(views) \
                or views[0].base is not owner or not all(map(is_, dict.values(self), views)):
            return None
        return self.flat


def flat_buffer(arrays):
    """The one buffer behind ``arrays`` (a :class:`FlatArrays` still laid out as built), or
    ``None`` for any other dict or sequence of arrays."""
    contiguous = getattr(arrays, "contiguous", None)
    return contiguous() if contiguous is not None else None
