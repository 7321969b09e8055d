"""Vectorized float32 activations for the fast kernels: tanh and the logistic function on 16 lanes.

``np.tanh``/``math.tanh`` inside a Numba loop is a call into libm per element (about 20-30 ns in
float32, not vectorized), more than the matrix product of a recurrent step costs. Here tanh is a
rational function evaluated with vector FMAs and one division (0.1-0.15 ns per element), the
approach of ONNX Runtime's MLAS and of Eigen for float32:

.. math:: \\tanh x \\approx x \\, P(x^2) / Q(x^2), \\qquad |x| \\le 9,

with ``P`` of degree 5 and ``Q`` of degree 3 in ``x^2``. The coefficients are our own fit: a
minimax fit of the relative error of ``tanh`` on ``[0, 9]``, solved as a linear programme on the
linearised error ``|x P(u) - tanh(x) Q(u)| / (tanh(x) Q_prev(u))`` and iterated (Loeb's method;
``benchmarks/fit_tanh.py`` reproduces it). Its relative error is ``8e-8`` in exact arithmetic and
below ``4e-7`` (a few float32 units in the last place) when evaluated in float32. Beyond
``|x| = 9`` the input is clamped (``1 - tanh 9 = 3e-8``, below float32 resolution) and the result is
clamped to ``[-1, 1]``. The clamps are ordered comparisons, so a NaN input gives a NaN output:
divergence stays visible.

``sigmoid(x) = (1 + tanh(x/2)) / 2``, the identity the numpy reference uses too.

The float32 kernels of the Cython backend evaluate the same rational function; a ``.pxd`` cannot
import Python constants, so ``fastrnn/_cy/_cellmath.pxd`` writes these coefficients out as C
literals, and ``tests/test_cython_build.py`` reads them from its source and compares each with the
constants here, exactly.

``vexp`` is the exponential with a relative error of a few float32 units in the last place (for
the cells that need relative accuracy where the logistic function above is only accurate in
absolute terms): ``exp x = 2**n exp r`` with ``n = floor(x / ln 2 + 1/2)`` and
``r = x - n ln 2`` (``|r| <= ln(2)/2``; ``ln 2`` split in two parts, the second correcting the
float32 rounding of the first), ``exp r`` by its Taylor polynomial of degree 7 (truncation error
below ``6e-9`` relative) and ``2**n`` written into the exponent bits. The input is clamped to
``[-87, 88]``, so that ``2**n`` stays a normal number: results below ``exp(-87) = 1.6e-38`` come
out as that, and above ``exp(88)`` as that; a NaN stays NaN.

float64 kernels keep the exact library functions.
"""

import math

from ._jit import njit_inline
from ._simd import vfloor, vfma, vgt_select, vpow2i, vsplat

_P0 = 0.999999950038826
_P1 = 0.12913561011303934
_P2 = 0.002914718542505523
_P3 = 9.214284242774527e-06
_P4 = -1.2631788156694172e-08
_P5 = 1.7907569119775997e-11
_Q1 = 0.46246845127699604
_Q2 = 0.023738263470305637
_Q3 = 0.00022727670254344686
_XMAX = 9.0


@njit_inline
def vtanh(x):
    """tanh of 16 float32 lanes (relative error < 4e-7; NaN in, NaN out)."""
    hi = vsplat(_XMAX)
    lo = vsplat(-_XMAX)
    x = vgt_select(x, hi, hi, x)
    x = vgt_select(lo, x, lo, x)
    u = x * x
    p = vfma(vsplat(_P5), u, vsplat(_P4))
    p = vfma(p, u, vsplat(_P3))
    p = vfma(p, u, vsplat(_P2))
    p = vfma(p, u, vsplat(_P1))
    p = vfma(p, u, vsplat(_P0))
    q = vfma(vsplat(_Q3), u, vsplat(_Q2))
    q = vfma(q, u, vsplat(_Q1))
    q = vfma(q, u, vsplat(1.0))
    t = (x * p) / q
    one = vsplat(1.0)
    mone = vsplat(-1.0)
    t = vgt_select(t, one, one, t)
    return vgt_select(mone, t, mone, t)


@njit_inline
def vsigmoid(x):
    """Logistic function of 16 float32 lanes, as ``(1 + tanh(x/2)) / 2``."""
    half = vsplat(0.5)
    return vfma(half, vtanh(x * half), half)


_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375  # ln 2 rounded to 10 significant bits: n * _LN2_HI is exact in float32
_LN2_LO = math.log(2.0) - _LN2_HI  # the rest of ln 2
_EXP_HI = 88.0
_EXP_LO = -87.0


@njit_inline
def vexp(x):
    """exp of 16 float32 lanes (relative error of a few units in the last place; the input
    clamped to ``[-87, 88]``, NaN in, NaN out)."""
    hi = vsplat(_EXP_HI)
    lo = vsplat(_EXP_LO)
    x = vgt_select(x, hi, hi, x)
    x = vgt_select(lo, x, lo, x)
    n = vfloor(vfma(x, vsplat(_LOG2E), vsplat(0.5)))
    r = vfma(n, vsplat(-_LN2_HI), x)
    r = vfma(n, vsplat(-_LN2_LO), r)
    p = vfma(vsplat(1.0 / 5040.0), r, vsplat(1.0 / 720.0))
    p = vfma(p, r, vsplat(1.0 / 120.0))
    p = vfma(p, r, vsplat(1.0 / 24.0))
    p = vfma(p, r, vsplat(1.0 / 6.0))
    p = vfma(p, r, vsplat(0.5))
    p = vfma(p, r, vsplat(1.0))
    p = vfma(p, r, vsplat(1.0))
    return p * vpow2i(n)
