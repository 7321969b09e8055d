"""Naive twins of the kernels: one sequence at a time, one step at a time, straight from the equations of docs/math.rst.

Nothing here is shared with fastrnn's code; these functions take the PyTorch-layout parameters of one
layer and direction and return the outputs of a single unpadded sequence.
"""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rnn_sequence(x, h0, p, relu=False):
    """x (L, I), h0 (H,) -> outputs (L, H)."""
    h, out = h0, []
    for xt in x:
        a = p["weight_ih"] @ xt + p["bias_ih"] + p["weight_hh"] @ h + p["bias_hh"]
        h = np.maximum(a, 0) if relu else np.tanh(a)
        out.append(h)
    return np.array(out), h


def lstm_sequence(x, h0, c0, p, peep=None, gates=(True, True, True)):
    """x (L, I), h0, c0 (H,) -> outputs (L, H), h_n, c_n. ``peep`` is (3, H) or None."""
    H = h0.shape[0]
    w = peep if peep is not None else np.zeros((3, H))
    h, c, out = h0, c0, []
    for xt in x:
        a = p["weight_ih"] @ xt + p["bias_ih"] + p["weight_hh"] @ h + p["bias_hh"]
        ai, af, ag, ao = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        i = sigmoid(ai + w[0] * c) if gates[0] else np.ones(H)
        f = sigmoid(af + w[1] * c) if gates[1] else np.ones(H)
        g = np.tanh(ag)
        c = f * c + i * g
        o = sigmoid(ao + w[2] * c) if gates[2] else np.ones(H)
        h = o * np.tanh(c)
        out.append(h)
    return np.array(out), h, c


def gru_sequence(x, h0, p, reset_after=True):
    """x (L, I), h0 (H,) -> outputs (L, H), h_n."""
    H = h0.shape[0]
    W, U, bi, bh = p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]
    h, out = h0, []
    for xt in x:
        r = sigmoid(W[:H] @ xt + bi[:H] + U[:H] @ h + bh[:H])
        z = sigmoid(W[H:2 * H] @ xt + bi[H:2 * H] + U[H:2 * H] @ h + bh[H:2 * H])
        if reset_after:
            n = np.tanh(W[2 * H:] @ xt + bi[2 * H:] + r * (U[2 * H:] @ h + bh[2 * H:]))
        else:
            n = np.tanh(W[2 * H:] @ xt + bi[2 * H:] + U[2 * H:] @ (r * h) + bh[2 * H:])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.array(out), h


def mingru_sequence(x, h0, p, g=False):
    """minGRU (Feng et al. 2024): x (L, I), h0 (H,) -> outputs (L, H), h_n. ``g`` puts the
    candidate through g(v) = v + 0.5 (v >= 0), sigmoid(v) (v < 0)."""
    H = h0.shape[0]
    W, b = p["weight_ih"], p["bias_ih"]
    h, out = h0, []
    for xt in x:
        z = sigmoid(W[:H] @ xt + b[:H])
        v = W[H:] @ xt + b[H:]
        cand = np.where(v >= 0, v + 0.5, sigmoid(v)) if g else v
        h = (1 - z) * h + z * cand
        out.append(h)
    return np.array(out), h


def minlstm_sequence(x, h0, p, g=False):
    """minLSTM (Feng et al. 2024), gate blocks f, i, candidate: x (L, I), h0 (H,) -> outputs
    (L, H), h_n."""
    H = h0.shape[0]
    W, b = p["weight_ih"], p["bias_ih"]
    h, out = h0, []
    for xt in x:
        f = sigmoid(W[:H] @ xt + b[:H])
        i = sigmoid(W[H:2 * H] @ xt + b[H:2 * H])
        v = W[2 * H:] @ xt + b[2 * H:]
        cand = np.where(v >= 0, v + 0.5, sigmoid(v)) if g else v
        h = f / (f + i) * h + i / (f + i) * cand
        out.append(h)
    return np.array(out), h


def indrnn_sequence(x, h0, p, relu=True, mask=None):
    """IndRNN (Li et al. 2018): x (L, I), h0 (H,) -> outputs (L, H), h_n; ``mask`` (H,) multiplies
    h_{t-1} where it meets the recurrent weight (recurrent dropout)."""
    m = np.ones_like(h0) if mask is None else mask
    h, out = h0, []
    for xt in x:
        a = p["weight_ih"] @ xt + p["bias_ih"] + p["weight_hh"] * (m * h) + p["bias_hh"]
        h = np.maximum(a, 0) if relu else np.tanh(a)
        out.append(h)
    return np.array(out), h


def unit_params(params, suffix):
    """The parameters of one layer-direction with the suffix stripped (``weight_ih_l0`` -> ``weight_ih``)."""
    return {k[: -len(suffix)]: v.astype(np.float64) for k, v in params.items() if k.endswith(suffix)}


def network_sequence(layer, x, h0=None, c0=None):
    """Run a whole (stacked, possibly bidirectional) layer object's parameters over one sequence
    ``x`` (L, I) naively. Returns outputs (L, D*H) and final states (num_layers*D, H) (and cells)."""
    kind = type(layer).__name__
    D, H = (2 if layer.bidirectional else 1), layer.hidden_size
    hn, cn = [], []
    inp = x.astype(np.float64)
    for l in range(layer.num_layers):
        outs = []
        for d in range(D):
            k = l * D + d
            sfx = f"_l{l}" + ("_reverse" if d else "")
            p = unit_params(layer.params, sfx)
            xi = inp[::-1] if d else inp
            hi = np.zeros(H) if h0 is None else h0[k].astype(np.float64)
            if kind == "LSTM":
                ci = np.zeros(H) if c0 is None else c0[k].astype(np.float64)
                y, h, c = lstm_sequence(xi, hi, ci, p, p.get("weight_peephole"),
                                        tuple(bool(g) for g in layer.gates_on))
                cn.append(c)
            elif kind == "GRU":
                y, h = gru_sequence(xi, hi, p, layer.reset_after)
            elif kind == "MinGRU":
                y, h = mingru_sequence(xi, hi, p, layer.candidate == "g")
            elif kind == "MinLSTM":
                y, h = minlstm_sequence(xi, hi, p, layer.candidate == "g")
            elif kind == "IndRNN":
                y, h = indrnn_sequence(xi, hi, p, layer.nonlinearity == "relu")
            else:
                y, h = rnn_sequence(xi, hi, p, layer.nonlinearity == "relu")
            hn.append(h)
            outs.append(y[::-1] if d else y)
        inp = np.concatenate(outs, axis=1)
    return inp, np.array(hn), (np.array(cn) if cn else None)


def embedding_bag(weight, ids):
    """Step vectors of token ids ``(B, T)`` or ``(B, T, K)``: each step's vector is the sum, in
    float64, of the rows of ``weight`` of its ids. Returns (B, T, E)."""
    ids = np.asarray(ids)
    if ids.ndim == 2:
        ids = ids[:, :, None]
    B, T, K = ids.shape
    out = np.zeros((B, T, weight.shape[1]))
    for b in range(B):
        for t in range(T):
            for k in range(K):
                for e in range(weight.shape[1]):
                    out[b, t, e] += float(weight[ids[b, t, k], e])
    return out


def embedding_bag_grad(ids, dY, vocab_size, padding_idx):
    """Gradient of ``sum(embedding_bag(W, ids) * dY)`` with respect to ``W`` (float64), with the
    row ``padding_idx`` (an index of ``W``, or None) held at zero."""
    ids = np.asarray(ids)
    if ids.ndim == 2:
        ids = ids[:, :, None]
    B, T, K = ids.shape
    g = np.zeros((vocab_size, dY.shape[-1]))
    pad = None if padding_idx is None else range(vocab_size)[padding_idx]
    for b in range(B):
        for t in range(T):
            for k in range(K):
                v = int(ids[b, t, k])
                if v == pad:
                    continue
                for e in range(dY.shape[-1]):
                    g[v, e] += float(dY[b, t, e])
    return g
