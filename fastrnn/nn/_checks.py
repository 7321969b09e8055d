"""Input checks shared by the layers: each error names the problem, the value received and the fix."""

from collections.abc import Mapping

import numpy as np


def as_batch(X, input_size, dtype, name="X"):
    """Return ``X`` as a C-contiguous array of shape ``(B, T, input_size)`` in ``dtype``."""
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold numbers, got an array of dtype {X.dtype}.")
    if X.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D (batch, steps, features), got {X.ndim}-D with shape {X.shape}. "
            "For a single sequence use X[None]; for one feature per step use X[..., None]."
        )
    if X.shape[2] != input_size:
        raise ValueError(
            f"{name} has {X.shape[2]} features per step but the layer was built with "
            f"input_size={input_size}. Build the layer with input_size={X.shape[2]} or fix the input."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); it needs at least one sequence and one step.")
    if X.dtype == dtype:  # no cast, so no overflow (and no np.errstate, a microsecond a call)
        return np.ascontiguousarray(X)
    with np.errstate(over="ignore"):  # an overflow is reported by check_finite_steps
        return np.ascontiguousarray(X, dtype=dtype)


def as_lengths(lengths, batch, steps):
    """Return the sequence lengths as an int64 array of shape ``(batch,)``, each in ``[1, steps]``."""
    if lengths is None:
        return np.full(batch, steps, dtype=np.int64)
    raw = np.asarray(lengths)
    if raw.ndim != 1 or raw.shape[0] != batch:
        raise ValueError(
            f"lengths must hold one length per sequence: expected shape ({batch},), got {raw.shape}."
        )
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or not np.all(raw == np.round(raw)):
            raise ValueError(f"lengths must be whole numbers, got {raw}.")
    elif raw.dtype.kind not in "iu":
        raise ValueError(f"lengths must be integers, got dtype {raw.dtype}.")
    bad = np.flatnonzero((raw < 1) | (raw > steps))  # on the values given (an int64 cast may wrap)
    if bad.size:
        b = bad[0]
        value = raw[b].item()
        raise ValueError(
            f"lengths must lie in [1, {steps}] (the number of steps of X), got lengths[{b}] = "
            f"{int(value) if isinstance(value, float) else value}. Drop empty sequences, or pad X "
            "to the longest sequence."
        )
    return raw.astype(np.int64)


def check_finite_steps(X, lengths, name="X", source=None):
    """Raise if a real (unpadded) step of ``X`` holds NaN or Inf; padding may hold anything.

    ``lengths`` None means every step is real. ``source`` is the input before its conversion to the
    layer's dtype: a value that is finite there but overflows the dtype is reported as such (not as
    a missing value).
    """
    finite = np.isfinite(X)
    if lengths is None:
        bad = None if finite.all() else ~finite
    else:
        steps = np.arange(X.shape[1])[None, :] < lengths[:, None]
        bad = ~finite & steps[:, :, None]
        bad = bad if bad.any() else None
    if bad is not None:
        b, t, f = np.argwhere(bad)[0]
        if source is not None:
            given = np.asarray(source)[b, t, f]
            if np.isfinite(given):
                raise ValueError(
                    f"{name} holds {given.item()!r} at sequence {b}, step {t}, feature {f}: "
                    f"finite, but it overflows {X.dtype.name} (the layer's dtype, largest "
                    f"{float(np.finfo(X.dtype).max):.4g}). Rescale the input (e.g. standardise "
                    "it), or build the layer with dtype=np.float64."
                )
        raise ValueError(
            f"{name} holds a non-finite value ({X[b, t, f]}) at sequence {b}, step {t}, feature {f}. "
            "Remove or impute missing values before passing them to the network."
        )


def as_state(h, shape, dtype, name):
    """Return an initial state of exactly ``shape`` in ``dtype``, checked to be finite."""
    h = np.asarray(h)
    if h.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape} (num_layers * num_directions, batch, hidden_size), "
            f"got {h.shape}."
        )
    if not np.all(np.isfinite(h)):
        raise ValueError(f"{name} holds non-finite values; pass finite values.")
    return np.ascontiguousarray(h, dtype=dtype)


def check_state_dict(state, params, what, hint=""):
    """Check a state dict against the parameters ``params`` it is to be loaded into.

    Parameters
    ----------
    state : mapping of str to array-like
        Anything ``np.asarray`` turns into an array of real numbers (lists, PyTorch tensors).
    params : dict of str to ndarray
        The parameters (names and shapes) of the receiver.
    what : str
        ``"layer"`` or ``"network"``, for messages.
    hint : str
        How to build a matching receiver (appended to a key mismatch error).

    Returns
    -------
    values : dict of str to ndarray
        The arrays, checked: real numbers of the right shape, finite.
    """
    if not isinstance(state, Mapping):
        got = ("a list; for (name, array) pairs pass dict(pairs)"
               if isinstance(state, (list, tuple)) else type(state).__name__)
        raise TypeError(f"state dict must be a mapping (dict) of parameter names to arrays, got "
                        f"{got}.")
    missing = sorted(set(params) - set(state))
    extra = sorted(set(state) - set(params))
    if missing or extra:
        raise ValueError(f"state dict does not match this {what}: missing keys {missing}, "
                         f"unexpected keys {extra}.{' ' + hint if hint else ''}")
    values = {}
    for k, v in state.items():
        v = np.asarray(getattr(v, "detach", lambda: v)())
        if v.dtype.kind == "c":
            raise ValueError(f"state dict entry {k!r} holds complex numbers; parameters are real: "
                             "pass a real array (e.g. v.real if the imaginary part is zero).")
        if v.dtype.kind not in "biuf":
            if v.dtype == object and v.ndim == 0 and v.item() is None:
                got = "None"
            elif v.dtype.kind in "US":
                got = f"str values ({v.dtype})"
            else:
                got = f"values of dtype {v.dtype}"
            raise ValueError(f"state dict entry {k!r} holds {got}; pass an array of numbers.")
        if v.shape != params[k].shape:
            raise ValueError(f"state dict entry {k!r} has shape {v.shape}, expected "
                             f"{params[k].shape}.")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"state dict entry {k!r} holds non-finite values.")
        values[k] = v
    return values
