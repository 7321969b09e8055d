"""The call of a Cython kernel, and readable errors for its arguments.

Every kernel is a function over fused float types; :func:`call` picks its float32 or float64
specialisation from the first array. The kernels take typed memoryviews; when Python objects do not
convert (wrong dtype, layout or number of dimensions, a read-only output) Cython's own message names
no argument. :func:`call` then calls :func:`explain`, which finds the offending argument and raises
a ``ValueError`` naming the kernel, the argument, what it received and the fix. It runs only on
that error path.
"""

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: what a Python object that does not convert to a kernel's memoryview raises
CONVERSION_ERRORS = (ValueError, TypeError, BufferError, AttributeError)


def call(kernel, spec, fused, args, shown=None):
    """Run the specialisation of the fused function ``fused`` for the dtype of ``args[0]``
    (float64 when its items have 8 bytes, float32 otherwise) on ``args``.

    A conversion error goes to :func:`explain`, with ``kernel``, ``spec`` and the arguments the
    caller received, ``shown`` (default ``args``), when the kernel takes them in another form.
    """
    try:
        fused["double" if args[0].dtype.itemsize == 8 else "float"](*args)
    except CONVERSION_ERRORS as exc:
        explain(kernel, spec, args if shown is None else shown, exc)


def _describe(a):
    if isinstance(a, np.ndarray):
        return f"a {a.dtype} array of shape {a.shape}"
    return f"an object of type {type(a).__name__}"


def _problem(name, kind, a, dtype, dtype_from):
    """The problem with argument ``a``, or ``None``. ``kind`` is ``"f<ndim>"`` for a float array in
    the kernel's dtype (``"f<ndim>w"`` when the kernel writes it), ``"i1"`` for a 1-D int64 array,
    ``"flag"`` for a boolean."""
    if kind == "flag":
        return None
    if not isinstance(a, np.ndarray):
        return (f"{name} must be a numpy array, got {_describe(a)}. Convert it with "
                f"np.ascontiguousarray({name}).")
    if kind == "i1":
        if a.ndim != 1 or a.dtype != np.int64:
            return (f"batch_sizes must be a 1-D int64 array, got {_describe(a)}. Convert it with "
                    "np.ascontiguousarray(batch_sizes, dtype=np.int64).")
    else:
        ndim = int(kind[1])
        if a.ndim != ndim:
            return f"{name} must have {ndim} dimensions, got {_describe(a)}."
        if a.dtype != dtype:
            return (f"{name} must have the dtype of {dtype_from} ({dtype}), got {_describe(a)}. "
                    f"Allocate every float array of one call in one dtype (float32 or float64).")
    if not a.flags.c_contiguous:
        return (f"{name} must be C-contiguous, got a strided view of shape {a.shape}. Pass "
                f"np.ascontiguousarray({name})" + (" and read the results from that copy." if
                                                   kind.endswith("w") else "."))
    if kind.endswith("w") and not a.flags.writeable:
        return f"{name} is written by the kernel but is read-only. Pass a writeable array."
    return None


def explain(kernel, spec, args, exc):
    """Raise a ``ValueError`` naming the argument of ``kernel`` that failed to convert.

    Parameters
    ----------
    kernel : str
        The kernel's name.
    spec : sequence of (str, str)
        ``(name, kind)`` of every argument, in order (see :func:`_problem` for the kinds).
    args : tuple
        The arguments received.
    exc : Exception
        The conversion error; re-raised as it is when no argument is found at fault.
    """
    first = next(k for k, (_, kind) in enumerate(spec) if kind.startswith("f"))
    lead_name, lead = spec[first][0], args[first]
    if not isinstance(lead, np.ndarray) or lead.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{kernel}: {lead_name} must be a float32 or float64 numpy array (it sets the kernel's "
            f"dtype), got {_describe(lead)}."
        ) from exc
    for (name, kind), a in zip(spec, args):
        msg = _problem(name, kind, a, lead.dtype, lead_name)
        if msg is not None:
            raise ValueError(f"{kernel}: {msg}") from exc
    raise exc
