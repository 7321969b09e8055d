"""Gradient norm and clipping by global norm (see :mod:`fastrnn.optim`)."""

import math
import numbers

import numpy as np

from .._backend import training_kernel
from .._flat import flat_buffer

__all__ = ["global_norm", "clip_grad_norm"]


# ---------------------------------------------------------------------------
# gradient norm and clipping
# ---------------------------------------------------------------------------

#: from this many values on, the buffer of a network's gradients is summed by the compiled loop
#: (below it the call's overhead is larger than numpy's)
_COMPILED_MIN = 4096


def _sum_squares64(g):
    """Sum of squares of ``g`` accumulated in float64 without a float64 copy."""
    flat = np.ravel(g)
    if flat.dtype == np.float64:
        return float(np.dot(flat, flat))
    return float(np.einsum("i,i->", flat, flat, dtype=np.float64))


def global_norm(grads):
    r"""Euclidean norm of all gradients taken together.

    .. math:: \|g\| = \sqrt{\textstyle\sum_{k} \sum_{j} g_{k,j}^2}

    Accumulated in float64 whatever the gradients' dtype (a float64 copy is
    never made), with rescaling if the squares overflow. The gradients of a
    network (``fastrnn._flat.FlatArrays``, one buffer) are summed in one
    call over the buffer, whose rounding may differ in the last bits from a sum
    array by array.

    Parameters
    ----------
    grads : dict of str to ndarray, or iterable of ndarray
        Gradient arrays of any shapes.

    Returns
    -------
    norm : float
        The global norm; ``inf`` or ``nan`` if any gradient is non-finite
        (``nan`` whenever a NaN is present).
    """
    flat = flat_buffer(grads)
    arrays = [flat] if flat is not None else (
        list(grads.values()) if isinstance(grads, dict) else list(grads))
    return _global_norm(arrays, flat)


def _global_norm(arrays, flat):
    """:func:`global_norm` of ``arrays``, which is ``[flat]`` for the buffer ``flat`` of a
    network's gradients (``None`` otherwise)."""
    if flat is not None and flat.size >= _COMPILED_MIN:
        total = float(training_kernel("sum_squares")(flat))  # compiled: no floating-point warnings to silence
    else:
        total = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for g in arrays:
                total += _sum_squares64(g)
    if math.isfinite(total):
        return math.sqrt(total)
    if math.isnan(total):
        return math.nan
    # total is inf: either a gradient is inf / nan, or the squares overflowed.
    scale = 0.0
    for g in arrays:
        if np.size(g):
            m = float(np.max(np.abs(g)))
            if not math.isfinite(m):
                return math.nan if any(np.isnan(a).any() for a in arrays) else math.inf
            scale = max(scale, m)
    total = 0.0
    for g in arrays:
        flat = np.ravel(g).astype(np.float64) / scale
        total += float(np.dot(flat, flat))
    return scale * math.sqrt(total)


def clip_grad_norm(grads, max_norm):
    r"""Clip gradients in place by their global norm; return the norm before clipping.

    If :math:`\|g\| > \text{max\_norm}`, every gradient is scaled in place,

    .. math:: g \leftarrow g \cdot \frac{\text{max\_norm}}{\|g\|},

    so the new global norm equals ``max_norm`` (to rounding; there is no
    epsilon in the denominator, unlike ``torch.nn.utils.clip_grad_norm_``).

    Parameters
    ----------
    grads : dict of str to ndarray, or iterable of ndarray
        Gradients; modified in place when clipped.
    max_norm : float or None
        Threshold > 0 (1-20 is common, 5 a good default).  ``None`` or
        ``inf`` disables clipping (the norm is still returned).

    Returns
    -------
    norm : float
        Global norm before clipping (see :func:`global_norm`).  If it is not
        finite the gradients are left untouched, so that the caller can detect
        the explosion and recover (roll back to the last good parameters).

    Raises
    ------
    ValueError
        If ``max_norm`` is not a positive number, ``inf`` or ``None``.
    """
    if max_norm is not None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) \
                or not float(max_norm) > 0.0:
            raise ValueError(
                f"max_norm must be a positive number, inf or None, got {max_norm!r}; "
                "use e.g. max_norm=5.0, or None to disable clipping."
            )
        max_norm = float(max_norm)
    flat = flat_buffer(grads)
    arrays = [flat] if flat is not None else (
        list(grads.values()) if isinstance(grads, dict) else list(grads))
    norm = _global_norm(arrays, flat)
    if max_norm is None or max_norm == math.inf or not math.isfinite(norm):
        return norm
    if norm > max_norm:
        scale = max_norm / norm
        for g in arrays:
            g *= scale
    return norm
