"""fastrnn.diagnostics: gradient flow against finite differences, gate statistics against a
direct computation, memory length, the plots (headless) and the command line."""

import numpy as np
import pytest

from fastrnn.diagnostics import gradient_flow
from fastrnn.nn import GRU, LSTM, RNN

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


# ------------------------------------------------------------------ an independent forward
def _direction(layer, l, d):
    """A one-layer unidirectional float64 copy of direction ``d`` of layer ``l``."""
    sfx = f"_l{l}" + ("_reverse" if d else "")
    size = layer.input_size if l == 0 else layer.num_directions * layer.hidden_size
    kw = {"reset_after": layer.reset_after} if isinstance(layer, GRU) else {}
    u = type(layer)(size, layer.hidden_size, dtype=np.float64, backend="numpy", **kw)
    u.load_state_dict({k: layer.params[k.replace("_l0", sfx)] for k in u.params})
    return u


def _run_direction(u, X, perturb=None):
    """Outputs (T, H) of ``u`` reading ``X`` (T, I) in order, with ``delta`` added to the hidden
    state after step ``s`` when ``perturb = (s, delta)``."""
    T = len(X)
    if perturb is None:
        return u.infer(X[None])[0][0]
    s, delta = perturb
    Y1, st = u.infer(X[None, :s + 1])
    Y1 = Y1[0].copy()
    Y1[s] += delta
    if s + 1 == T:
        return Y1
    if u.has_cell:
        h0 = (st[0] + delta, st[1])
    else:
        h0 = st + delta
    Y2, _ = u.infer(X[None, s + 1:], h0=h0)
    return np.concatenate([Y1, Y2[0]])


def _stack(layer, X, where=None):
    """The top outputs (T, D*H) of ``layer`` on one sequence ``X`` (T, I), built direction by
    direction; ``where = (l, d, t, delta)`` adds ``delta`` to the hidden state of layer ``l``,
    direction ``d`` at time ``t``."""
    below = X
    for l in range(layer.num_layers):
        outs = []
        for d in range(layer.num_directions):
            u = _direction(layer, l, d)
            inp = below[::-1] if d else below
            p = None
            if where is not None and where[:2] == (l, d):
                t, delta = where[2], where[3]
                p = (len(X) - 1 - t if d else t, delta)
            Y = _run_direction(u, inp, p)
            outs.append(Y[::-1] if d else Y)
        below = np.concatenate(outs, axis=1)
    return below


def _final_state(layer, X, l, d, t, delta):
    """The last hidden state that direction ``d`` of layer ``l`` reads, after ``delta`` is added
    to its state at time ``t`` (lower layers unperturbed)."""
    below = X
    for k in range(l):
        below = np.concatenate([(lambda Y: Y[::-1] if j else Y)(
            _run_direction(_direction(layer, k, j), below[::-1] if j else below))
            for j in range(layer.num_directions)], axis=1)
    inp = below[::-1] if d else below
    Y = _run_direction(_direction(layer, l, d), inp, (len(X) - 1 - t if d else t, delta))
    return Y[-1]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_gradient_flow_matches_finite_differences(cell, num_layers, bidirectional):
    rng = np.random.RandomState(1)
    layer = CELLS[cell](3, 4, num_layers=num_layers, bidirectional=bidirectional,
                        dtype=np.float64, random_state=2)
    B, T = 2, 6
    X = rng.randn(B, T, 3)
    lengths = np.array([6, 4])
    R = rng.randn(B, T, layer.num_directions * 4)

    def loss(Y, b):  # a nonlinear loss of every output of sequence b
        return float(np.sum(R[b, :len(Y)] * Y) + 0.25 * np.sum(Y ** 4))

    flow = gradient_flow(layer, X, lengths=lengths,
                         output_grad=lambda Y: (R + Y ** 3) * (np.arange(T)[None, :, None]
                                                              < lengths[:, None, None]))
    eps, H = 1e-6, 4
    for b in range(B):
        x = X[b, :lengths[b]]
        n = len(x)
        for l in range(num_layers):
            for d in range(layer.num_directions):
                for t in range(n):
                    grad = np.empty(H)
                    jac = np.empty((H, H))
                    for j in range(H):
                        e = np.zeros(H)
                        e[j] = eps
                        grad[j] = (loss(_stack(layer, x, (l, d, t, e)), b)
                                   - loss(_stack(layer, x, (l, d, t, -e)), b)) / (2 * eps)
                        jac[:, j] = (_final_state(layer, x, l, d, t, e)
                                     - _final_state(layer, x, l, d, t, -e)) / (2 * eps)
                    dist = t if d else n - 1 - t
                    np.testing.assert_allclose(flow.loss_grad_per_sequence[l, d, b, dist],
                                               np.linalg.norm(grad), rtol=1e-6, atol=1e-9)
                    np.testing.assert_allclose(flow.jacobian_per_sequence[l, d, b, dist],
                                               np.linalg.norm(jac, 2), rtol=1e-6, atol=1e-9)
        assert np.isnan(flow.loss_grad_per_sequence[:, :, b, lengths[b]:]).all()
    # the means and counts over the sequences that reach each distance
    np.testing.assert_array_equal(flow.counts, [2, 2, 2, 2, 1, 1])
    np.testing.assert_allclose(flow.loss_grad[..., 5], flow.loss_grad_per_sequence[..., 0, 5])
    np.testing.assert_allclose(flow.jacobian[..., 0], 1.0)
