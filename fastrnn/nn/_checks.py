"""Input checks shared by the layers: each error names the problem, the value received and the fix."""

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
    lengths = raw.astype(np.int64)
    bad = np.flatnonzero((lengths < 1) | (lengths > steps))
    if bad.size:
        b = bad[0]
        raise ValueError(
            f"lengths must lie in [1, {steps}] (the number of steps of X), got lengths[{b}] = "
            f"{lengths[b]}. Drop empty sequences, or pad X to the longest sequence."
        )
    return lengths


def check_finite_steps(X, lengths, name="X"):
    """Raise if a real (unpadded) step of ``X`` holds NaN or Inf; padding may hold anything."""
    steps = np.arange(X.shape[1])[None, :] < lengths[:, None]
    bad = ~np.isfinite(X) & steps[:, :, None]
    if bad.any():
        b, t, f = np.argwhere(bad)[0]
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
        raise ValueError(f"{name} holds non-finite values; pass a finite initial state.")
    return np.ascontiguousarray(h, dtype=dtype)
