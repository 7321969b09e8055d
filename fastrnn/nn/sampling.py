"""Drawing the next token from a softmax: temperature, top-k and nucleus (top-p) sampling."""

import math
from numbers import Integral, Real

import numpy as np

from ..losses import softmax
from .init import check_random_state

__all__ = ["sample_token", "check_sampling_options"]


def check_sampling_options(temperature, top_k, top_p):
    """Raise ``ValueError`` naming a sampling option that :func:`sample_token` cannot use."""
    if (isinstance(temperature, bool) or not isinstance(temperature, Real)
            or not (math.isfinite(temperature) and temperature >= 0)):
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got "
                         f"{temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, Integral)
                              or top_k < 1):
        raise ValueError(f"top_k must be None or a positive integer, got {top_k!r}.")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, Real)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}.")


def sample_token(logits, temperature=1.0, top_k=None, top_p=None, greedy=False, rng=None):
    """Draw the next token id from a vector of logits.

    The logits are divided by ``temperature``, cut to the ``top_k`` largest, then to the smallest
    set whose probability reaches ``top_p`` (nucleus sampling, Holtzman et al. 2020), and one id is
    drawn from the renormalised softmax. ``greedy=True`` or ``temperature=0`` returns the argmax.

    Parameters
    ----------
    logits : ndarray of shape (V,)
        ``-inf`` marks ids that must never be drawn.
    temperature : float, default 1.0
    top_k : int, optional
    top_p : float in (0, 1], optional
    greedy : bool, default False
    rng : numpy RandomState, optional

    Returns
    -------
    token_id : int
    """
    check_sampling_options(temperature, top_k, top_p)
    z = np.asarray(logits, np.float64).ravel()
    if greedy or temperature == 0:
        return int(np.argmax(z))
    z = z / float(temperature)
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, z.size - top_k)[z.size - top_k]
        z = np.where(z >= kth, z, -np.inf)
        if np.count_nonzero(z > -np.inf) > top_k:
            # ties at the k-th value: keep exactly k, the lowest ids first
            keep = np.argsort(-z, kind="stable")[:top_k]
            mask = np.full(z.size, -np.inf)
            mask[keep] = 0.0
            z = z + mask
    p = softmax(z)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        n_keep = int(np.searchsorted(cum, top_p) + 1)
        cut = np.zeros_like(p)
        cut[order[:n_keep]] = p[order[:n_keep]]
        p = cut / cut.sum()
    rng = check_random_state(rng)
    cdf = np.cumsum(p)
    idx = int(np.searchsorted(cdf, rng.random_sample() * cdf[-1], side="right"))
    idx = min(idx, z.size - 1)
    while p[idx] == 0.0 and idx > 0:  # rounding at the end of the cdf
        idx -= 1
    return idx
