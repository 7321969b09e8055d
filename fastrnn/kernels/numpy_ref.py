"""The numpy reference backend: the same kernels as :mod:`fastrnn.kernels.rnn`, ``lstm``, ``gru``
and ``minimal``, written with whole-array numpy operations and a Python loop over time.

Clear and slow; it exists so that every compiled backend can be checked against an independent
implementation of the same signatures. Conventions: see :mod:`fastrnn.kernels.rnn`.
"""

import numpy as np


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _recurrent_input(h, hmask, use_mask, n):
    return h[:n] * hmask[:n] if use_mask else h[:n]


def rnn_forward(xp, whh_t, batch_sizes, hmask, use_mask, relu, hs, hin, a):
    T = xp.shape[0]
    for t in range(T):
        n = batch_sizes[t]
        pre = xp[t, :n] + _recurrent_input(hs[t], hmask, use_mask, n) @ whh_t
        hs[t + 1] = hs[t]
        hs[t + 1, :n] = np.maximum(pre, 0) if relu else np.tanh(pre)


def rnn_backward(dy, hs, whh, batch_sizes, hmask, use_mask, relu, dgates, dh):
    T = dy.shape[0]
    dgates[...] = 0
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        h = hs[t + 1, :n]
        deriv = (h > 0).astype(h.dtype) if relu else 1 - h * h
        dgates[t, :n] = (dh[:n] + dy[t, :n]) * deriv
        dh[:n] = dgates[t, :n] @ whh
        if use_mask:
            dh[:n] *= hmask[:n]


def lstm_forward(xp, whh_t, batch_sizes, hmask, use_mask, peep, gates_on, hs, cs, acts, hin, a):
    T, B, G = xp.shape
    H = G // 4
    for t in range(T):
        n = batch_sizes[t]
        pre = xp[t, :n] + _recurrent_input(hs[t], hmask, use_mask, n) @ whh_t
        cp = cs[t, :n]
        i = _sigmoid(pre[:, :H] + peep[0] * cp) if gates_on[0] else np.ones_like(cp)
        f = _sigmoid(pre[:, H:2 * H] + peep[1] * cp) if gates_on[1] else np.ones_like(cp)
        g = np.tanh(pre[:, 2 * H:3 * H])
        c = f * cp + i * g
        o = _sigmoid(pre[:, 3 * H:] + peep[2] * c) if gates_on[2] else np.ones_like(cp)
        hs[t + 1], cs[t + 1] = hs[t], cs[t]
        hs[t + 1, :n] = o * np.tanh(c)
        cs[t + 1, :n] = c
        acts[t, :n] = np.concatenate([i, f, g, o], axis=1)


def lstm_backward(dy, cs, acts, whh, batch_sizes, hmask, use_mask, peep, gates_on,
                  dgates, dh, dc, dpeep):
    T, B, H = dy.shape
    dgates[...] = 0
    for t in range(T - 1, -1, -1):
        n = batch_sizes[t]
        i, f, g, o = (acts[t, :n, k * H:(k + 1) * H] for k in range(4))
        c, cp = cs[t + 1, :n], cs[t, :n]
        tc = np.tanh(c)
        dht = dh[:n] + dy[t, :n]
        dao = dht * tc * o * (1 - o) * gates_on[2]
        dct = dc[:n] + dht * o * (1 - tc * tc) + dao * peep[2]
        dai = dct * g * i * (1 - i) * gates_on[0]
        daf = dct * cp * f * (1 - f) * gates_on[1]
        dag = dct * i * (1 - g * g)
        dc[:n] = dct * f + dai * peep[0] + daf * peep[1]
        dpeep[0] += (dai * cp).sum(0)
        dpeep[1] += (daf * cp).sum(0)
        dpeep[2] += (dao * c).sum(0)
        dgates[t, :n] = np.concatenate([dai, daf, dag, dao], axis=1)
        dh[:n] = dgates[t, :n] @ whh
        if use_mask:
            dh[:n] *= hmask[:n]


def gru_forward(xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a):
    T, B, G = xp.shape
    H = G // 3
    for t in range(T):
        n_ = batch_sizes[t]
        hp = _recurrent_input(hs[t], hmask, use_mask, n_) @ whh_t + bhh
        x = xp[t, :n_]
        r = _sigmoid(x[:, :H] + hp[:, :H])
        z = _sigmoid(x[:, H:2 * H] + hp[:, H:2 * H])
        hn = hp[:, 2 * H:]
        n = np.tanh(x[:, 2 * H:] + r * hn)
        hs[t + 1] = hs[t]
        hs[t + 1, :n_] = (1 - z) * n + z * hs[t, :n_]
        acts[t, :n_] = np.concatenate([r, z, n, hn], axis=1)


def gru_backward(dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect):
    T, B, H = dy.shape
    dxp[...] = 0
    dhp[...] = 0
    for t in range(T - 1, -1, -1):
        n_ = batch_sizes[t]
        r, z, n, hn = (acts[t, :n_, k * H:(k + 1) * H] for k in range(4))
        hp = hs[t, :n_]
        dht = dh[:n_] + dy[t, :n_]
        dan = dht * (1 - z) * (1 - n * n)
        dar = dan * hn * r * (1 - r)
        daz = dht * (hp - n) * z * (1 - z)
        dxp[t, :n_] = np.concatenate([dar, daz, dan], axis=1)
        dhp[t, :n_] = np.concatenate([dar, daz, dan * r], axis=1)
        back = dhp[t, :n_] @ whh
        if use_mask:
            back *= hmask[:n_]
        dh[:n_] = back + dht * z


def gru_v1_forward(xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an):
    T, B, G = xp.shape
    H = G // 3
    rh[...] = 0
    for t in range(T):
        n_ = batch_sizes[t]
        hin_ = _recurrent_input(hs[t], hmask, use_mask, n_)
        x = xp[t, :n_]
        rz = _sigmoid(x[:, :2 * H] + hin_ @ whh_rz_t)
        r, z = rz[:, :H], rz[:, H:]
        rh[t, :n_] = r * hin_
        n = np.tanh(x[:, 2 * H:] + rh[t, :n_] @ whh_n_t)
        hs[t + 1] = hs[t]
        hs[t + 1, :n_] = (1 - z) * n + z * hs[t, :n_]
        acts[t, :n_] = np.concatenate([r, z, n], axis=1)


def gru_v1_backward(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh,
                    dn, drz, drh, dhin, ddirect):
    T, B, H = dy.shape
    dgates[...] = 0
    for t in range(T - 1, -1, -1):
        n_ = batch_sizes[t]
        r, z, n = (acts[t, :n_, k * H:(k + 1) * H] for k in range(3))
        hp = hs[t, :n_]
        hin_ = _recurrent_input(hs[t], hmask, use_mask, n_)
        dht = dh[:n_] + dy[t, :n_]
        dan = dht * (1 - z) * (1 - n * n)
        daz = dht * (hp - n) * z * (1 - z)
        drh_ = dan @ whh_n
        dar = drh_ * hin_ * r * (1 - r)
        dgates[t, :n_] = np.concatenate([dar, daz, dan], axis=1)
        back = dgates[t, :n_, :2 * H] @ whh_rz + drh_ * r
        if use_mask:
            back *= hmask[:n_]
        dh[:n_] = back + dht * z


# The cells with an element-wise recurrence: same signatures as :mod:`fastrnn.kernels.minimal`.

def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _candidate(x, cand):
    return np.where(x >= 0, x + 0.5, _sigmoid(x)) if cand else x


def _dcandidate(x, cand):
    if not cand:
        return np.ones_like(x)
    s = _sigmoid(x)
    return np.where(x >= 0, 1.0, s * (1 - s))


def _carry_rows(a, b, t, n):
    a[t, n:] = 1.0
    b[t, n:] = 0.0


def mingru_gates(xp, batch_sizes, cand, a, b, t0, t1):
    H = a.shape[2]
    for t in range(t0, t1):
        n = batch_sizes[t]
        z = _sigmoid(xp[t, :n, :H])
        a[t, :n] = 1 - z
        b[t, :n] = z * _candidate(xp[t, :n, H:], cand)
        _carry_rows(a, b, t, n)


def minlstm_gates(xp, batch_sizes, cand, a, b, t0, t1):
    H = a.shape[2]
    for t in range(t0, t1):
        n = batch_sizes[t]
        af, ai, ah = xp[t, :n, :H], xp[t, :n, H:2 * H], xp[t, :n, 2 * H:]
        fn = _sigmoid(_softplus(-ai) - _softplus(-af))  # f / (f + i), finite for every input
        a[t, :n] = fn
        b[t, :n] = (1 - fn) * _candidate(ah, cand)
        _carry_rows(a, b, t, n)


def mingru_grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1):
    H = g.shape[2]
    for t in range(t0, t1):
        n = batch_sizes[t]
        az, ah = xp[t, :n, :H], xp[t, :n, H:]
        z = _sigmoid(az)
        dxp[t, :n, :H] = g[t, :n] * (_candidate(ah, cand) - hs[t, :n]) * z * (1 - z)
        dxp[t, :n, H:] = g[t, :n] * z * _dcandidate(ah, cand)
        dxp[t, n:] = 0.0


def minlstm_grads(xp, hs, g, batch_sizes, cand, dxp, t0, t1):
    H = g.shape[2]
    for t in range(t0, t1):
        n = batch_sizes[t]
        af, ai, ah = xp[t, :n, :H], xp[t, :n, H:2 * H], xp[t, :n, 2 * H:]
        fn = _sigmoid(_softplus(-ai) - _softplus(-af))
        dd = g[t, :n] * (hs[t, :n] - _candidate(ah, cand)) * fn * (1 - fn)
        dxp[t, :n, :H] = dd * (1 - _sigmoid(af))
        dxp[t, :n, H:2 * H] = -dd * (1 - _sigmoid(ai))
        dxp[t, :n, 2 * H:] = g[t, :n] * (1 - fn) * _dcandidate(ah, cand)
        dxp[t, n:] = 0.0


def scan_range(a, b, hs, t0, t1, l0, l1):
    for t in range(t0, t1):
        hs[t + 1, l0:l1] = a[t, l0:l1] * hs[t, l0:l1] + b[t, l0:l1]


def scan_local(a, b, hs, prod, t0, t1):
    hs[t0 + 1] = b[t0]
    prod[...] = a[t0]
    for t in range(t0 + 1, t1):
        hs[t + 1] = a[t] * hs[t] + b[t]
        prod *= a[t]


def scan_apply(a, hs, carry, run, t0, t1):
    run[...] = 1.0
    for t in range(t0, t1):
        run *= a[t]
        hs[t + 1] += run * carry


def indrnn_forward(xp, u, batch_sizes, relu, hs, b0, b1):
    for t in range(xp.shape[0]):
        n = min(max(batch_sizes[t], b0), b1)
        pre = xp[t, b0:n] + u[b0:n] * hs[t, b0:n]
        hs[t + 1, b0:n] = np.maximum(pre, 0) if relu else np.tanh(pre)
        hs[t + 1, n:b1] = hs[t, n:b1]


def indrnn_backward(dy, hs, u, batch_sizes, relu, dxp, dh, du, b0, b1):
    du[b0:b1] = 0.0
    for t in range(dy.shape[0] - 1, -1, -1):
        n = min(max(batch_sizes[t], b0), b1)
        h = hs[t + 1, b0:n]
        deriv = (h > 0).astype(h.dtype) if relu else 1 - h * h
        d = (dh[b0:n] + dy[t, b0:n]) * deriv
        dxp[t, b0:n] = d
        dxp[t, n:b1] = 0.0
        du[b0:n] += d * hs[t, b0:n]
        dh[b0:n] = d * u[b0:n]


# The token embedding: same signatures as :mod:`fastrnn.kernels.embedding`.

def embedding_forward(weight, ids, out):
    """``out[r] = sum_k weight[ids[r, k]]`` (``ids`` of shape (R, K); ``out`` of shape (R, E),
    overwritten)."""
    np.take(weight, ids, axis=0).sum(axis=1, out=out)


def embedding_backward(ids, dY, padding_idx, g):
    """``g[v] = sum of dY[r]`` over every ``(r, k)`` with ``ids[r, k] == v`` (``padding_idx``, or
    ``-1`` for none, gets nothing); ``g`` of shape (V, E) is overwritten."""
    g[...] = 0.0
    K = ids.shape[1]
    ids = ids.reshape(-1)
    rows = np.repeat(dY, K, axis=0) if K > 1 else dY  # every id of a step gets the step's gradient
    if len(ids):
        # rows of equal id summed by reduceat over the rows sorted by id: a tenth of the time
        # of np.add.at's element-wise scatter (4096 rows of 64: 0.2 against 1.8 ms)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        g[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    if padding_idx >= 0:
        g[padding_idx] = 0.0
