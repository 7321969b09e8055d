"""The fast path of the recurrent layers: float32 on the Numba backend.

:meth:`_Recurrent.forward` and :meth:`~_Recurrent.backward` hand over to :func:`forward` and
:func:`backward` here after validating their inputs. Same mathematics, parameters, gradients, caches
and random streams as the general path; what differs is how the data moves:

* the kernels read the layer input and write its output in the caller's batch-first layout
  through row-offset tables (:mod:`fastrnn.kernels._fastpath`): no time-major copy of ``X``, no
  gathered copy for the reverse direction, no concatenation of the directions, no scatter into
  ``Y``;
* the input projection, the recurrence and the cell are fused in one kernel per part of the batch,
  with matrix products from :mod:`fastrnn.kernels._gemm` (single-threaded, AVX-512 where available)
  and vectorized activations (:mod:`fastrnn.kernels._vmath`);
* the work is split over ``fastrnn._config.num_threads()`` threads: rows of the batch for the
  recurrent sweeps and the input gradients (independent sequences need no synchronisation), rows
  of the weight gradients for the large products after the backward sweep.
"""

import numpy as np

from .._config import fast_path_enabled, min_rows_per_thread, num_threads

F32 = np.dtype(np.float32)


def applies(layer):
    """Whether ``layer`` runs on the fast path."""
    return (layer.backend == "numba" and layer.dtype == F32 and fast_path_enabled()
            and _kind(layer) in _UNIT_FORWARD)


def _kernels():
    """The kernel modules, imported on first use (importing them imports Numba)."""
    global fp, KC, NR, pack_b, pack_bt, packed_size, run_parts
    from ..kernels import _fastpath as fp
    from ..kernels._gemm import KC, NR, pack_b, pack_bt, packed_size
    from ..kernels._parallel import run_parts


def _iota(n, step=1):
    return np.arange(n, dtype=np.int64) * step


def _pack_t(w):
    """Pack ``w.T`` (``w`` of shape (N, K)) as the ``K x N`` right operand of a product."""
    w = np.ascontiguousarray(w)
    N, K = w.shape
    out = np.empty(packed_size(K, N), F32)
    pack_bt(w.reshape(-1), K, K, N, KC, out)
    return out


def _pack(w):
    """Pack ``w`` (shape (K, N)) as the right operand of a product."""
    w = np.ascontiguousarray(w)
    K, N = w.shape
    out = np.empty(packed_size(K, N), F32)
    pack_b(w.reshape(-1), _iota(K, N), 0, 1, K, N, KC, out)
    return out


def _row_table(order, tidx, real, T, width):
    """Offsets of the rows read at each step: sequence ``order[b]``, time ``tidx[t, b]``, in a
    batch-first array of ``width`` columns; ``-1`` for padded steps."""
    return np.where(real, order[None, :] * (T * width) + tidx * width, -1).astype(np.int64).ravel()


# ------------------------------------------------------------------------------------------ forward
def forward(layer, X, lengths, h0, c0):
    """Fast-path body of :meth:`_Recurrent.forward` (inputs already validated)."""
    _kernels()
    B, T, F = X.shape
    D, H, L = layer.num_directions, layer.hidden_size, layer.num_layers
    order = np.argsort(-lengths, kind="stable")
    Ls = lengths[order]
    Tm = int(Ls[0])
    steps = np.arange(Tm)
    batch_sizes = (Ls[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)
    real = steps[:, None] < Ls[None, :]
    rev = np.where(real, Ls[None, :] - 1 - steps[:, None], steps[:, None])
    fwd_t = np.broadcast_to(steps[:, None], (Tm, B))
    parts = fp.split_rows(Ls, num_threads(), min_rows_per_thread())
    cache = dict(order=order, B=B, T=T, Tm=Tm, batch_sizes=batch_sizes, real=real, rev=rev,
                 units=[], drop=[], parts=parts, fast=True)
    hn = np.empty((L * D, B, H), F32)
    cn = np.empty_like(hn) if layer.has_cell else None
    # the backward reads the input again (dW_ih = dg^T X): keep a private copy, so that the caller
    # may reuse its array between forward and backward, as with the general path
    inp, width = X.copy(), F
    for li in range(L):
        out = np.zeros((B, T, D * H), F32)
        for d in range(D):
            k = li * D + d
            sfx = f"_l{li}" + ("_reverse" if d else "")
            tidx = rev if d else fwd_t
            xrow = _row_table(order, tidx, real, T, width)
            yrow = _row_table(order, tidx, real, T, D * H)
            hmask = layer._recurrent_mask(B)
            unit = _UNIT_FORWARD[_kind(layer)](
                layer, sfx, inp, xrow, width, out, yrow, d * H, h0[k][order],
                None if c0 is None else c0[k][order], batch_sizes, hmask, parts)
            unit.update(sfx=sfx, x=inp, xrow=xrow, width=width, yrow=yrow, ycol=d * H, hmask=hmask)
            cache["units"].append(unit)
            hn[k][order] = unit["hs"][Tm]
            if layer.has_cell:
                cn[k][order] = unit["cs"][Tm]
        if li < L - 1 and layer.training and layer.dropout > 0:
            keep = 1.0 - layer.dropout
            # drawn time-major and sorted, exactly as the general path draws it
            m = (layer.rng_.random_sample((Tm, B, D * H)) < keep).astype(F32) / keep
            mask = np.zeros((B, T, D * H), F32)
            mask[order, :Tm] = m.transpose(1, 0, 2)
            out = out * mask
            cache["drop"].append(mask)
        else:
            cache["drop"].append(None)
        inp, width = out, D * H
    layer._cache = cache
    return inp, hn, cn


# ----------------------------------------------------------------------------------------- backward
def backward(layer, dY, dhn, dcn):
    """Fast-path body of :meth:`_Recurrent.backward` (``dY`` already checked for its shape)."""
    _kernels()
    c = layer._cache
    B, T, order, parts = c["B"], c["T"], c["order"], c["parts"]
    D, H, L = layer.num_directions, layer.hidden_size, layer.num_layers
    dout = np.ascontiguousarray(dY, dtype=F32)
    dh0 = np.empty((L * D, B, H), F32)
    dc0 = np.empty_like(dh0) if layer.has_cell else None
    for li in range(L - 1, -1, -1):
        if c["drop"][li] is not None:
            dout = dout * c["drop"][li]
        width = c["units"][li * D]["width"]
        dinp = np.zeros((B, T, width), F32)
        for d in range(D):
            k = li * D + d
            unit = c["units"][k]
            dh = np.ascontiguousarray(dhn[k][order])
            dc = None if dcn is None else np.ascontiguousarray(dcn[k][order])
            _UNIT_BACKWARD[_kind(layer)](layer, unit, dout, dh, dc, dinp, d > 0, c["batch_sizes"],
                                         parts)
            dh0[k][order] = dh
            if layer.has_cell:
                dc0[k][order] = dc
        dout = dinp
    return dout, dh0, dc0


def _kind(layer):
    if layer.G == 4:
        return "lstm"
    if layer.G == 3:
        return "gru" if layer.reset_after else "gru_v1"
    return "rnn"


def _mask_args(hmask, B, H):
    if hmask is None:
        return np.zeros((0, 0), F32), False
    return hmask, True


# --------------------------------------------------------------------------------------------- LSTM
def _lstm_forward(layer, sfx, inp, xrow, width, out, yrow, ycol, h0, c0, batch_sizes, hmask, parts):
    from ..kernels.lstm import lstm_fast_forward

    p = layer.params
    Tm, B = batch_sizes.shape[0], h0.shape[0]
    H = layer.hidden_size
    G = 4 * H
    xg = np.empty((Tm, B, G), F32)
    hs = np.empty((Tm + 1, B, H), F32)
    cs = np.empty_like(hs)
    hs[0], cs[0] = h0, c0
    hin = np.empty((B, H), F32)
    m, use = _mask_args(hmask, B, H)
    wih_p = _pack_t(p["weight_ih" + sfx])
    whh_p = _pack_t(p["weight_hh" + sfx])
    bias = (p["bias_ih" + sfx] + p["bias_hh" + sfx]).astype(F32)
    peep = layer._peep(sfx)
    xf, of = inp.reshape(-1), out.reshape(-1)
    run_parts(lstm_fast_forward, [
        (xf, xrow, wih_p, whh_p, bias, batch_sizes, r0, r1, m, use, peep, layer.peephole,
         layer.gates_on, xg, hs, cs, hin, of, yrow, ycol) for r0, r1 in parts])
    return dict(hs=hs, cs=cs, acts=xg)


def _lstm_backward(layer, unit, dout, dh, dc, dinp, accumulate, batch_sizes, parts):
    from ..kernels.lstm import lstm_fast_backward

    sfx = unit["sfx"]
    p, g = layer.params, layer.grads
    H = layer.hidden_size
    G = 4 * H
    xg, cs, hs = unit["acts"], unit["cs"], unit["hs"]
    Tm, B = xg.shape[0], xg.shape[1]
    n = len(parts)
    dg = np.empty((Tm, B, G), F32)
    db = np.empty((n, G), F32)
    dpeep = np.empty((n, 3, H), F32)
    m, use = _mask_args(unit["hmask"], B, H)
    whh_p = _pack(p["weight_hh" + sfx])
    run_parts(lstm_fast_backward, [
        (dout.reshape(-1), unit["yrow"], unit["ycol"], xg, cs, whh_p, batch_sizes, r0, r1, m, use,
         layer._peep(sfx), layer.peephole, layer.gates_on, dg, dh, dc, db[q], dpeep[q])
        for q, (r0, r1) in enumerate(parts)])
    _weight_and_input_grads(layer, unit, dg, G, hs, dinp, accumulate, batch_sizes, parts)
    gb = db.sum(axis=0)
    g["bias_ih" + sfx][...] = gb
    g["bias_hh" + sfx][...] = gb
    if layer.peephole:
        g["weight_peephole" + sfx][...] = dpeep.sum(axis=0)


def _weight_and_input_grads(layer, unit, dg, G, hs, dinp, accumulate, batch_sizes, parts):
    """``dW_ih = dg^T X``, ``dW_hh = dg^T h_{t-1}`` (rows split over the parts) and
    ``dX (+)= dg W_ih`` (rows split over the parts)."""
    sfx = unit["sfx"]
    p, g = layer.params, layer.grads
    H = layer.hidden_size
    Tm, B = dg.shape[0], dg.shape[1]
    K = Tm * B
    width = unit["width"]
    hin = hs[:-1] if unit["hmask"] is None else hs[:-1] * unit["hmask"]
    hin = np.ascontiguousarray(hin).reshape(-1)
    wih_p = _pack(p["weight_ih" + sfx])
    rows = fp.split_range(G, len(parts))
    bufs = [np.empty(KC * (width + H + 2 * NR), F32) for _ in parts]
    run_parts(fp.grads_part, [
        (dg.reshape(-1), G, K, unit["x"].reshape(-1), unit["xrow"], width, hin, _iota(K, H), H,
         g["weight_ih" + sfx].reshape(-1), g["weight_hh" + sfx].reshape(-1), rows[q][0], rows[q][1],
         wih_p, batch_sizes, B, r0, r1, dinp.reshape(-1), accumulate, bufs[q])
        for q, (r0, r1) in enumerate(parts)])


# ---------------------------------------------------------------------------------------------- RNN
def _rnn_forward(layer, sfx, inp, xrow, width, out, yrow, ycol, h0, c0, batch_sizes, hmask, parts):
    from ..kernels.rnn import rnn_fast_forward

    p = layer.params
    Tm, B = batch_sizes.shape[0], h0.shape[0]
    H = layer.hidden_size
    xg = np.empty((Tm, B, H), F32)
    hs = np.empty((Tm + 1, B, H), F32)
    hs[0] = h0
    hin = np.empty((B, H), F32)
    m, use = _mask_args(hmask, B, H)
    bias = (p["bias_ih" + sfx] + p["bias_hh" + sfx]).astype(F32)
    relu = layer.nonlinearity == "relu"
    wih_p, whh_p = _pack_t(p["weight_ih" + sfx]), _pack_t(p["weight_hh" + sfx])
    xf, of = inp.reshape(-1), out.reshape(-1)
    run_parts(rnn_fast_forward, [
        (xf, xrow, wih_p, whh_p, bias, batch_sizes, r0, r1, m, use, relu, xg, hs, hin, of, yrow,
         ycol) for r0, r1 in parts])
    return dict(hs=hs)


def _rnn_backward(layer, unit, dout, dh, dc, dinp, accumulate, batch_sizes, parts):
    from ..kernels.rnn import rnn_fast_backward

    sfx = unit["sfx"]
    H = layer.hidden_size
    hs = unit["hs"]
    Tm, B = hs.shape[0] - 1, hs.shape[1]
    dg = np.empty((Tm, B, H), F32)
    db = np.empty((len(parts), H), F32)
    m, use = _mask_args(unit["hmask"], B, H)
    whh_p = _pack(layer.params["weight_hh" + sfx])
    run_parts(rnn_fast_backward, [
        (dout.reshape(-1), unit["yrow"], unit["ycol"], hs, whh_p, batch_sizes, r0, r1, m, use,
         layer.nonlinearity == "relu", dg, dh, db[q]) for q, (r0, r1) in enumerate(parts)])
    _weight_and_input_grads(layer, unit, dg, H, hs, dinp, accumulate, batch_sizes, parts)
    gb = db.sum(axis=0)
    layer.grads["bias_ih" + sfx][...] = gb
    layer.grads["bias_hh" + sfx][...] = gb


# ---------------------------------------------------------------------------------------------- GRU
def _gru_forward(layer, sfx, inp, xrow, width, out, yrow, ycol, h0, c0, batch_sizes, hmask, parts):
    from ..kernels import gru as kg

    p = layer.params
    Tm, B = batch_sizes.shape[0], h0.shape[0]
    H = layer.hidden_size
    xg = np.empty((Tm, B, 3 * H), F32)
    cache = np.empty((Tm, B, H), F32)  # W_hn h + b_hn (reset after) or r * h (reset before)
    hs = np.empty((Tm + 1, B, H), F32)
    hs[0] = h0
    hin = np.empty((B, H), F32)
    m, use = _mask_args(hmask, B, H)
    w = p["weight_hh" + sfx]
    wih_p, wrz_p, wn_p = _pack_t(p["weight_ih" + sfx]), _pack_t(w[:2 * H]), _pack_t(w[2 * H:])
    bi, bh = p["bias_ih" + sfx], p["bias_hh" + sfx]
    xf, of = inp.reshape(-1), out.reshape(-1)
    if layer.reset_after:
        bias = bi.astype(F32)
        bias[:2 * H] += bh[:2 * H]
        bhn = np.ascontiguousarray(bh[2 * H:], dtype=F32)
        run_parts(kg.gru_fast_forward, [
            (xf, xrow, wih_p, wrz_p, wn_p, bias, bhn, batch_sizes, r0, r1, m, use, xg, cache, hs,
             hin, of, yrow, ycol) for r0, r1 in parts])
        return dict(hs=hs, acts=xg, hn=cache)
    bias = (bi + bh).astype(F32)
    run_parts(kg.gru_v1_fast_forward, [
        (xf, xrow, wih_p, wrz_p, wn_p, bias, batch_sizes, r0, r1, m, use, xg, cache, hs, hin, of,
         yrow, ycol) for r0, r1 in parts])
    return dict(hs=hs, acts=xg, rh=cache)


def _gru_backward(layer, unit, dout, dh, dc, dinp, accumulate, batch_sizes, parts):
    from ..kernels import gru as kg

    sfx = unit["sfx"]
    p, g = layer.params, layer.grads
    H = layer.hidden_size
    xg, hs = unit["acts"], unit["hs"]
    Tm, B = xg.shape[0], xg.shape[1]
    K = Tm * B
    n = len(parts)
    m, use = _mask_args(unit["hmask"], B, H)
    w = p["weight_hh" + sfx]
    wrz_p, wn_p = _pack(w[:2 * H]), _pack(w[2 * H:])
    dg = np.empty((Tm, B, 3 * H), F32)
    dd = np.empty((B, H), F32)
    dbi = np.empty((n, 3 * H), F32)
    dY, yrow, ycol = dout.reshape(-1), unit["yrow"], unit["ycol"]
    if layer.reset_after:
        dgn = np.empty((Tm, B, H), F32)
        dbh = np.empty((n, 3 * H), F32)
        run_parts(kg.gru_fast_backward, [
            (dY, yrow, ycol, xg, unit["hn"], hs, wrz_p, wn_p, batch_sizes, r0, r1, m, use, dg, dgn,
             dh, dd, dbi[q], dbh[q]) for q, (r0, r1) in enumerate(parts)])
        gbi = dbi.sum(axis=0)
        gbh = dbh.sum(axis=0)
        gbh[:2 * H] = gbi[:2 * H]
    else:
        drh = np.empty((B, H), F32)
        run_parts(kg.gru_v1_fast_backward, [
            (dY, yrow, ycol, xg, hs, wrz_p, wn_p, batch_sizes, r0, r1, m, use, dg, dh, dd, drh,
             dbi[q]) for q, (r0, r1) in enumerate(parts)])
        gbi = gbh = dbi.sum(axis=0)
    width = unit["width"]
    hin = hs[:-1] if unit["hmask"] is None else hs[:-1] * unit["hmask"]
    hin = np.ascontiguousarray(hin).reshape(-1)
    wih_p = _pack(p["weight_ih" + sfx])
    rows = fp.split_range(3 * H, len(parts))
    bufs = [np.empty(KC * (width + H + 2 * NR), F32) for _ in parts]
    x, xrow, hrow = unit["x"].reshape(-1), unit["xrow"], _iota(K, H)
    gwih, gwhh = g["weight_ih" + sfx].reshape(-1), g["weight_hh" + sfx].reshape(-1)
    dx = dinp.reshape(-1)
    if layer.reset_after:
        run_parts(kg.gru_fast_grads, [
            (dg.reshape(-1), dgn.reshape(-1), K, x, xrow, width, hin, hrow, H, gwih, gwhh,
             rows[q][0], rows[q][1], wih_p, batch_sizes, B, r0, r1, dx, accumulate, bufs[q])
            for q, (r0, r1) in enumerate(parts)])
    else:
        run_parts(kg.gru_v1_fast_grads, [
            (dg.reshape(-1), K, x, xrow, width, hin, hrow, unit["rh"].reshape(-1), H, gwih, gwhh,
             rows[q][0], rows[q][1], wih_p, batch_sizes, B, r0, r1, dx, accumulate, bufs[q])
            for q, (r0, r1) in enumerate(parts)])
    g["bias_ih" + sfx][...] = gbi
    g["bias_hh" + sfx][...] = gbh


_UNIT_FORWARD = {"lstm": _lstm_forward, "rnn": _rnn_forward, "gru": _gru_forward,
                 "gru_v1": _gru_forward}
_UNIT_BACKWARD = {"lstm": _lstm_backward, "rnn": _rnn_backward, "gru": _gru_backward,
                  "gru_v1": _gru_backward}
