"""Derive the rational approximation of tanh used by ``fastrnn/kernels/_vmath.py``.

``tanh(x) ~ x P(x^2) / Q(x^2)`` on ``[0, XMAX]`` with ``Q(0) = 1``, minimising the maximum relative
error. The problem is made linear by fixing the denominator of the relative error at the previous
iterate (Loeb's method): minimise ``e`` subject to

    | x P(u) - tanh(x) Q(u) | <= e * tanh(x) Q_prev(u),    u = x^2, on a grid of x,

a linear programme in the coefficients and ``e`` (scipy's HiGHS), repeated a dozen times.
Prints the coefficients and the error of the float32 evaluation (Horner's scheme, as the kernels).

Usage: ``python benchmarks/fit_tanh.py [deg_P deg_Q XMAX]`` (default ``5 3 9``).
"""

import sys

import numpy as np
from scipy.optimize import linprog


def fit(deg_p, deg_q, xmax, iterations=12):
    x = np.concatenate([np.linspace(1e-4, 1, 3000), np.linspace(1, xmax, 6000)])
    y = np.tanh(x)
    u = x * x
    P = np.vander(u, deg_p + 1, increasing=True)
    Q = np.vander(u, deg_q + 1, increasing=True)
    q = np.zeros(deg_q + 1)
    q[0] = 1.0
    err = np.inf
    for _ in range(iterations):
        w = 1.0 / (y * (Q @ q))
        A = np.hstack([x[:, None] * P, -(y[:, None] * Q[:, 1:])]) * w[:, None]
        b = y * Q[:, 0] * w
        n = A.shape[1]
        c = np.zeros(n + 1)
        c[-1] = 1.0
        ones = np.ones((len(x), 1))
        res = linprog(c, A_ub=np.vstack([np.hstack([A, -ones]), np.hstack([-A, -ones])]),
                      b_ub=np.concatenate([b, -b]), bounds=[(None, None)] * n + [(0, None)],
                      method="highs")
        p = res.x[:deg_p + 1]
        q = np.concatenate([[1.0], res.x[deg_p + 1:n]])
        err = res.x[-1]
    return p, q, err


def evaluate_f32(p, q, x):
    x = x.astype(np.float32)
    u = x * x
    num = np.zeros_like(x)
    for coef in p[::-1]:
        num = num * u + np.float32(coef)
    den = np.zeros_like(x)
    for coef in q[::-1]:
        den = den * u + np.float32(coef)
    return x * num / den


def main(argv):
    deg_p, deg_q, xmax = (int(argv[0]), int(argv[1]), float(argv[2])) if argv else (5, 3, 9.0)
    p, q, err = fit(deg_p, deg_q, xmax)
    print("P =", [float(v) for v in p])
    print("Q =", [float(v) for v in q])
    xs = np.linspace(-xmax, xmax, 400_001)
    exact = np.tanh(xs.astype(np.float32).astype(np.float64))
    approx = evaluate_f32(p, q, xs)
    rel = np.abs(approx - exact) / np.maximum(np.abs(exact), 1e-30)
    print(f"linearised error {err:.2e}; float32 evaluation: max relative error {rel.max():.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
