"""Weight initialisation schemes (see :doc:`/math`, "Layers and networks").

Every function fills and returns a new array of the given ``shape`` and ``dtype`` drawn from ``rng``
(a :class:`numpy.random.RandomState`).
"""

import numpy as np

from .._backend import one_blas_thread


def check_random_state(seed):
    """Turn ``None``, an int or a ``RandomState`` into a ``RandomState`` (without importing sklearn)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (int, np.integer)):
        if not 0 <= seed <= 2 ** 32 - 1:
            raise ValueError(
                f"random_state must be None, an int in [0, 2**32 - 1] or a numpy RandomState, got "
                f"{seed!r}. Pass a seed in that range, e.g. random_state=0."
            )
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(
        f"random_state must be None, an int in [0, 2**32 - 1] or a numpy RandomState, got "
        f"{seed!r}."
    )


def glorot_uniform(shape, rng, dtype=np.float64):
    """Glorot & Bengio (2010): uniform on ``±sqrt(6 / (fan_in + fan_out))`` with ``shape = (fan_out, fan_in)``."""
    fan_out, fan_in = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape, rng, dtype=np.float64, gain=1.0):
    """Saxe et al. (2014): a (semi-)orthogonal matrix from the QR decomposition of a Gaussian matrix."""
    rows, cols = shape
    a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    # one LAPACK thread: on two busy cores a threaded QR of a 1024 x 256 matrix took 2 to 10 s
    # instead of 0.05 s (the same result: each column's reflector is computed in one order)
    with one_blas_thread():
        q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # make the decomposition unique, so the result is uniformly distributed
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).astype(dtype)


def identity(shape, rng=None, dtype=np.float64, gain=1.0):
    """Le, Jaitly & Hinton (2015), the IRNN: identity recurrent matrix (use with ``relu``)."""
    return (gain * np.eye(*shape)).astype(dtype)


def uniform(shape, rng, dtype=np.float64, bound=None):
    """PyTorch's default for recurrent layers: uniform on ``±1/sqrt(hidden_size)``; ``bound`` overrides."""
    if bound is None:
        bound = 1.0 / np.sqrt(shape[-1])
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
