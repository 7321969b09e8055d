"""Gate statistics: how saturated the gates of a recurrent layer are on some data, how long its
memory lasts (the forget gate's time constant) and the range of the LSTM's cell state."""

import numpy as np

from .._backend import get_backend
from ._chain import Stack, reading_order, resolve, unit_layers

__all__ = ["GateStatistics", "gate_statistics", "SATURATION"]

#: A sigmoid gate counts as saturated below ``SATURATION[0]`` or above ``SATURATION[1]``; a tanh
#: activation when its absolute value is above ``SATURATION[1]``.
SATURATION = (0.05, 0.95)

#: the gates of each cell: (name, activation) in the order the reference kernels keep them
GATES = {
    "rnn": [("h", "tanh")],
    "lstm": [("input", "sigmoid"), ("forget", "sigmoid"), ("cell", "tanh"), ("output", "sigmoid")],
    "gru": [("reset", "sigmoid"), ("update", "sigmoid"), ("new", "tanh")],
}


def _reference_forward(u, Zu, lengths, h0):
    """Run unit ``u`` (a one-layer unidirectional float64 layer) on ``Zu`` (B, T, I) with the
    numpy reference kernels.

    Returns
    -------
    acts : ndarray of shape (T, B, G * H) or None
        The gate activations (LSTM: i, f, g, o; GRU: r, z, n), in the batch order of ``Zu``.
    hs : ndarray of shape (T, B, H)
    cs : ndarray of shape (T, B, H) or None (LSTM only)
    real : bool ndarray of shape (T, B)
        The real steps.
    """
    k = get_backend("numpy")
    spec, p = u._spec, u.params
    B, T, _ = Zu.shape
    H = u.hidden_size
    order = np.argsort(-lengths, kind="stable")  # the kernels want the longest sequences first
    L = lengths[order]
    batch_sizes = np.array([(L > t).sum() for t in range(T)], np.int64)
    x = np.ascontiguousarray(Zu[order].transpose(1, 0, 2))
    mask = (np.ones((B, H)), False)
    hs = np.zeros((T + 1, B, H))
    cs = acts = None
    if h0 is not None:
        if u.has_cell:
            hs[0], c0 = h0[0][order], h0[1][order]
        else:
            hs[0] = h0[order]
    xp = x @ p["weight_ih_l0"].T + p["bias_ih_l0"]
    whh = p["weight_hh_l0"]
    if spec.kind == "rnn":
        xp += p["bias_hh_l0"]
        k.rnn_forward(xp, np.ascontiguousarray(whh.T), batch_sizes, *mask, spec.relu, hs,
                      np.empty((B, H)), np.empty((B, H)))
    elif spec.kind == "lstm":
        xp += p["bias_hh_l0"]
        cs = np.zeros((T + 1, B, H))
        if h0 is not None:
            cs[0] = c0
        acts = np.empty((T, B, 4 * H))
        peep = p.get("weight_peephole_l0", np.zeros((3, H)))
        k.lstm_forward(xp, np.ascontiguousarray(whh.T), batch_sizes, *mask, peep, spec.gates_on,
                       hs, cs, acts, np.empty((B, H)), np.empty((B, 4 * H)))
    elif spec.kind == "gru":
        acts = np.empty((T, B, 4 * H))
        k.gru_forward(xp, np.ascontiguousarray(whh.T), p["bias_hh_l0"], batch_sizes, *mask, hs,
                      acts, np.empty((B, H)), np.empty((B, 3 * H)))
        acts = acts[:, :, :3 * H]
    else:  # gru_v1: reset gate before the recurrent product
        xp += p["bias_hh_l0"]
        acts = np.empty((T, B, 3 * H))
        k.gru_v1_forward(xp, np.ascontiguousarray(whh[:2 * H].T),
                         np.ascontiguousarray(whh[2 * H:].T), batch_sizes, *mask, hs, acts,
                         np.empty((T, B, H)), np.empty((B, H)), np.empty((B, 2 * H)),
                         np.empty((B, H)))
    back = np.argsort(order)
    real = (np.arange(T)[:, None] < L[None, :])[:, back]
    return (None if acts is None else acts[:, back], hs[1:, back],
            None if cs is None else cs[1:, back], real)


class GateStatistics:
    """The result of :func:`gate_statistics`.

    ``L`` is the number of stacked layers and ``D`` the number of directions. Every statistic is
    over the real steps of the sequences given and over the ``H`` units of a layer-direction.

    Attributes
    ----------
    cell : str
        ``"rnn"``, ``"lstm"`` or ``"gru"``.
    gates : list of str
        The gates reported: LSTM ``input``, ``forget``, ``cell`` (the candidate ``g``),
        ``output``; GRU ``reset``, ``update``, ``new``; simple RNN ``h`` (the hidden state).
    activations : dict of str to str
        ``"sigmoid"``, ``"tanh"`` or ``"relu"`` for each gate.
    saturation : dict of str to ndarray of shape (L, D)
        Share of the activations that are saturated: a sigmoid below 0.05 or above 0.95, a tanh
        of absolute value above 0.95, a ReLU at 0 (inactive). NaN for an LSTM gate switched off.
    mean : dict of str to ndarray of shape (L, D)
        Mean activation of each gate.
    forget_mean : ndarray of shape (L, D) or None
        Mean of the gate that keeps the previous state: the LSTM's forget gate ``f``, the GRU's
        update gate ``z`` (``h_t = (1 - z) n + z h_{t-1}``); None for the simple RNN.
    unit_forget_mean : ndarray of shape (L, D, H) or None
        The same mean for each of the ``H`` units.
    time_constant : ndarray of shape (L, D) or None
        ``1 / (1 - forget_mean)``: the number of steps over which a state decays by a factor
        ``e`` when the gate holds its mean value (inf for a gate at 1).
    unit_time_constant : ndarray of shape (L, D, H) or None
        ``1 / (1 - unit_forget_mean)``: a few units with a long time constant can hold a memory
        that the mean over the units hides.
    cell_range : ndarray of shape (L, D, 2) or None
        Minimum and maximum of the LSTM's cell state ``c_t``.
    n_steps : int
        Number of real steps read (summed over the sequences).
    """

    def __init__(self, cell, gates, activations, saturation, mean, unit_forget_mean, cell_range,
                 n_steps):
        self.cell, self.gates, self.activations = cell, gates, activations
        self.saturation, self.mean = saturation, mean
        self.unit_forget_mean = unit_forget_mean
        if unit_forget_mean is None:
            self.forget_mean = self.time_constant = self.unit_time_constant = None
        else:
            self.forget_mean = unit_forget_mean.mean(axis=2)
            with np.errstate(divide="ignore"):
                self.time_constant = 1.0 / (1.0 - self.forget_mean)
                self.unit_time_constant = 1.0 / (1.0 - unit_forget_mean)
        self.cell_range = cell_range
        self.n_steps = n_steps

    def __repr__(self):
        L, D = next(iter(self.saturation.values())).shape
        return (f"GateStatistics(cell={self.cell!r}, num_layers={L}, num_directions={D}, "
                f"n_steps={self.n_steps})")

    def to_text(self):
        """A table: one line per layer-direction and gate."""
        L, D = next(iter(self.saturation.values())).shape
        lines = ["layer dir  gate     activation  saturated      mean"]
        for layer in range(L):
            for d in range(D):
                for g in self.gates:
                    lines.append(f"{layer:>5} {'rev' if d else 'fwd':>3}  {g:<8} "
                                 f"{self.activations[g]:<10} {self.saturation[g][layer, d]:>10.1%}"
                                 f" {self.mean[g][layer, d]:>9.3f}")
        if self.forget_mean is not None:
            gate = "forget" if self.cell == "lstm" else "update"
            lines.append("")
            lines.append(f"layer dir  mean {gate} gate  time constant (steps)  longest of a unit"
                         + ("  cell state range" if self.cell_range is not None else ""))
            for layer in range(L):
                for d in range(D):
                    line = (f"{layer:>5} {'rev' if d else 'fwd':>3}  "
                            f"{self.forget_mean[layer, d]:>16.3f}  "
                            f"{self.time_constant[layer, d]:>21.3g}  "
                            f"{self.unit_time_constant[layer, d].max():>16.3g}")
                    if self.cell_range is not None:
                        lo, hi = self.cell_range[layer, d]
                        line += f"  [{lo:.3g}, {hi:.3g}]"
                    lines.append(line)
        return "\n".join(lines)


def _saturated(a, activation):
    lo, hi = SATURATION
    if activation == "sigmoid":
        return float(np.mean((a < lo) | (a > hi)))
    if activation == "tanh":
        return float(np.mean(np.abs(a) > hi))
    return float(np.mean(a <= 0.0))


def gate_statistics(model, X, lengths=None, max_sequences=256):
    """Saturation and mean value of every gate, the forget gate's time constant and the range of
    the LSTM's cell state, on a batch of data.

    The model's weights are run over ``X`` by the numpy reference kernels in float64 (dropout
    off), layer by layer; the statistics are over the real steps of every sequence.

    Parameters
    ----------
    model : fitted estimator, SequenceNetwork, or RNN / LSTM / GRU layer
        As for :func:`gradient_flow`.
    X : input
        As for :func:`gradient_flow`.
    lengths : array-like of shape (B,), optional
        Networks and layers: the real length of each sequence (default all ``T``).
    max_sequences : int or None, default 256
        Use the first ``max_sequences`` sequences of ``X``.

    Returns
    -------
    GateStatistics
        Arrays of shape (num_layers, num_directions) per gate (see its attributes).

    Notes
    -----
    A saturated sigmoid gate is nearly closed (below 0.05) or open (above 0.95); its derivative
    is then below 0.05, so little gradient passes it. A forget gate near 1 keeps the cell state
    for many steps (time constant ``1 / (1 - f)``); a cell state that grows without bound
    (a wide range) is a sign of an LSTM that saturates ``tanh(c)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.nn import LSTM
    >>> from fastrnn.diagnostics import gate_statistics
    >>> X = np.random.RandomState(0).randn(4, 20, 2)
    >>> stats = gate_statistics(LSTM(2, 8, random_state=0), X)
    >>> stats.gates
    ['input', 'forget', 'cell', 'output']
    >>> bool(0 < stats.forget_mean[0, 0] < 1), stats.cell_range.shape
    (True, (1, 1, 2))
    """
    chain = resolve(model, X, None, lengths=lengths, output_grad=None,
                    max_sequences=max_sequences)
    rnn, Z, lens = chain.rnn, chain.Z, chain.lengths
    cell = type(rnn).__name__.lower()
    if cell not in GATES:
        raise ValueError(
            f"gate_statistics reads the gates of {', '.join(GATES)} layers; this model's layer is "
            f"a {type(rnn).__name__}, whose gates it does not know. gradient_flow works for "
            "every cell.")
    gates = [g for g, _ in GATES[cell]]
    activations = dict(GATES[cell])
    if cell == "rnn" and rnn.nonlinearity == "relu":
        activations["h"] = "relu"
    L, D = rnn.num_layers, rnn.num_directions
    sat = {g: np.full((L, D), np.nan) for g in gates}
    mean = {g: np.full((L, D), np.nan) for g in gates}
    H = rnn.hidden_size
    keep = None if cell == "rnn" else np.full((L, D, H), np.nan)
    crange = np.full((L, D, 2), np.nan) if cell == "lstm" else None
    stack, outs = Stack(rnn, Z), []
    for k, (layer, d, u) in enumerate(unit_layers(rnn)):
        acts, hs, cs, real = _reference_forward(u, reading_order(stack.layer_input(layer), lens,
                                                                 d == 1), lens,
                                                chain.unit_h0(k))
        for j, g in enumerate(gates):
            if cell == "rnn":
                a = hs[real]
            elif cell == "lstm" and j != 2 and not rnn.gates_on[[0, 1, None, 2][j]]:
                continue  # a gate switched off is the constant 1
            else:
                a = acts[:, :, j * H:(j + 1) * H][real]
            sat[g][layer, d] = _saturated(a, activations[g])
            mean[g][layer, d] = float(a.mean())
        if keep is not None:
            if cell == "lstm" and not rnn.gates_on[1]:
                keep[layer, d] = 1.0
            else:
                keep[layer, d] = acts[:, :, H:2 * H][real].mean(axis=0)
        if crange is not None:
            c = cs[real]
            crange[layer, d] = c.min(), c.max()
        outs.append(reading_order(hs.transpose(1, 0, 2), lens, d == 1))
        if d == D - 1:
            stack.add_layer(layer, np.concatenate(outs, axis=2))
            outs = []
    return GateStatistics(cell, gates, activations, sat, mean, keep, crange, int(lens.sum()))
