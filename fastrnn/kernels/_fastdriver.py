"""The fast driver of the Numba backend: float32 layers.

Same mathematics, parameters, gradients and random streams as the general driver
(:mod:`fastrnn.kernels._driver`); what differs is how the data moves:

* the kernels read the layer input and write its output in the caller's batch-first layout
  through row-offset tables (:mod:`fastrnn.kernels._fastpath`): no time-major copy of ``X``, no
  gathered copy for the reverse direction, no concatenation of the directions, no scatter into
  ``Y``;
* the input projection, the recurrence and the cell are fused in one kernel per part of the batch,
  with matrix products from :mod:`fastrnn.kernels._gemm` (single-threaded, AVX-512 where available)
  and vectorized activations (:mod:`fastrnn.kernels._vmath`);
* the work is split over ``fastrnn._config.num_threads()`` threads: rows of the batch for the
  recurrent sweeps and the input gradients (independent sequences need no synchronisation), rows
  of the weight gradients for the large products after the backward sweep;
* an input that is a lookup in a table of ``V`` token vectors (``tokens``) is projected through the
  table when ``V`` is at most half the real steps: ``X W_ih^T`` is a lookup in ``table W_ih^T``,
  and the backward sums the gate gradients of each token first (``S``, ``V x G``), so that
  ``dW_ih = S^T table`` and the table's gradient is ``S W_ih``: three products of ``V`` rows
  instead of the number of steps.

The large arrays of a call (the cache of the forward, the scratch of the backward, the outputs of
the inner layers) come from :mod:`fastrnn._workspace`, which writes over those of the layer's
previous call where nothing refers to them any more; the arrays returned to the caller are new.
"""

import numpy as np

from .. import _workspace as ws
from .._config import fast_path_enabled, min_rows_per_thread, num_threads
from .._parallel import run_parts
from . import _bf16
from . import _fastpath as fp
from . import gru as kg
from .embedding import embedding_backward, embedding_forward
from ._gemm import KC, KC_LONG, NR, gemm, long_kc, pack_b, pack_bt, packed_size
from .lstm import lstm_fast_backward, lstm_fast_forward
from .rnn import rnn_fast_backward, rnn_fast_forward

F32 = np.dtype(np.float32)
#: the cells the fast driver runs
FAST_KINDS = ("rnn", "lstm", "gru", "gru_v1")


def applies(spec):
    """Whether a layer of ``spec`` runs on the fast driver (float32, not switched off; the cells
    with a recurrent matrix: rnn, lstm, gru, gru_v1). ``precision="bf16"`` always does: its
    products are this driver's."""
    return (spec.dtype == F32 and spec.kind in FAST_KINDS
            and (fast_path_enabled() or _bf16_on(spec)))


def _bf16_on(spec):
    """Whether the matrix products run in bf16 (:mod:`fastrnn.kernels._bf16`)."""
    return spec.precision == "bf16"


def _projected(spec, p, sfx, inp, xrow, width, xg, tok):
    """For a token input ``tok`` (see :func:`_token_rows`), the input projections of all steps
    into ``xg`` now (the sweep then finds them there: it is given no input features); returns the
    width the sweep reads (else the sweep projects blocks of steps itself, in either
    precision)."""
    if tok is not None:  # a lookup in the projected table (float32 in either precision)
        rows, table = tok
        V, G = table.shape[0], xg.shape[2]
        proj = ws.aligned_empty((V, G), F32)
        _product(table, _pack_t(p["weight_ih" + sfx]), proj, False)
        xg2 = xg.reshape(-1, G)
        run_parts(embedding_forward, [(proj, rows[r0:r1], xg2[r0:r1])
                                      for r0, r1 in fp.split_range(len(rows), num_threads())])
        return 0
    return width


def _pack_ih(spec, p, sfx, tok):
    """``W_ih^T`` packed for the sweep's input projections (bf16 in that precision), or an empty
    array of the same type when the sweep projects nothing (a token input)."""
    if tok is not None:
        return np.empty(0, np.uint16 if _bf16_on(spec) else F32)
    return _pack_t(p["weight_ih" + sfx], _bf16_on(spec))


def _iota(n, step=1):
    return np.arange(n, dtype=np.int64) * step


def _pack_t(w, bf16=False):
    """Pack ``w.T`` (``w`` of shape (N, K)) as the ``K x N`` right operand of a product: float32
    (:func:`fastrnn.kernels._gemm.pack_bt`), or with ``bf16`` rounded to bf16 for the sweeps'
    bf16 product (:func:`fastrnn.kernels._bf16.pack`)."""
    if bf16:
        return _bf16.pack(np.asarray(w).T)
    w = np.ascontiguousarray(w)
    N, K = w.shape
    out = ws.aligned_empty(packed_size(K, N), F32)
    pack_bt(w.reshape(-1), K, K, N, KC, out)
    return out


def _pack(w, bf16=False, kc=KC):
    """Pack ``w`` (shape (K, N)) as the right operand of a product, in blocks of ``kc`` rows
    (``bf16`` as in :func:`_pack_t`)."""
    if bf16:
        return _bf16.pack(w)
    w = np.ascontiguousarray(w)
    K, N = w.shape
    out = ws.aligned_empty(packed_size(K, N), F32)
    pack_b(w.reshape(-1), _iota(K, N), 0, 1, K, N, kc, out)
    return out


def _pack_input_grads(w_ih, width):
    """``W_ih`` (G x F; its first ``width`` columns) packed for the input gradient ``dg W_ih``
    (:func:`fastrnn.kernels._fastpath.input_grads`: blocks of ``long_kc(G)`` rows)."""
    return _pack(w_ih[:, :width], kc=long_kc(w_ih.shape[0]))


def _grads_buffers(parts, width, H):
    """One packing buffer per part for the weight gradients (see
    :func:`fastrnn.kernels._fastpath.weight_grad2`)."""
    return [ws.aligned_empty(KC_LONG * (width + H + 2 * NR), F32) for _ in parts]


def _row_table(order, tidx, real, T, width):
    """Offsets of the rows read at each step: sequence ``order[b]``, time ``tidx[t, b]`` (``tidx``
    of shape (Tm, B), or (Tm, 1) for the same times in every sequence), in a batch-first array of
    ``width`` columns; ``-1`` for padded steps."""
    return np.where(real, order[None, :] * (T * width) + tidx * width, -1).astype(np.int64).ravel()


def _row_tables(plan, d, width):
    """Row offsets of direction ``d`` (1: reversed in each sequence's length) in a batch-first
    array of ``width`` columns (see :func:`_row_table`), kept in ``plan.memo``: a plan serves every
    call of its shape, and the kernels only read these tables."""
    key = ("rows", d, width)
    rows = plan.memo.get(key)
    if rows is None:
        tidx = plan.rev if d else np.arange(plan.Tm)[:, None]  # (Tm, 1): broadcast over the batch
        rows = plan.memo[key] = _row_table(plan.order, tidx, plan.real, plan.T, width)
    return rows


def _parts(plan):
    """The parts of the batch, one per thread (:func:`fastrnn.kernels._fastpath.split_rows`), kept
    in ``plan.memo`` for the thread settings of the call."""
    key = ("parts", num_threads(), min_rows_per_thread())
    parts = plan.memo.get(key)
    if parts is None:
        parts = plan.memo[key] = tuple(fp.split_rows(plan.Ls, key[1], key[2]))
    return parts


def _takes_tokens(plan, tokens):
    """Whether the first layer projects through the token table: it has at most half as many rows
    as there are real steps (else the products of the steps are the cheaper ones)."""
    return tokens is not None and 2 * tokens[1].shape[0] <= int(plan.batch_sizes.sum())


def _token_rows(tokens, xrow, width):
    """``(rows, table)`` for a unit whose input is ``table[ids]`` (``tokens = (ids, table)``):
    ``rows`` (T*B, 1) holds the token of each row that the unit reads (0 for a padded row, whose
    gate gradients are zero)."""
    ids, table = tokens
    flat = ids.reshape(-1)
    rows = np.where(xrow >= 0, flat[np.maximum(xrow, 0) // width], 0)
    return rows.astype(np.intp).reshape(-1, 1), table


def _token_grads(p, g, unit, dg, dtable, accumulate):
    """The input side of a token unit's gradients: ``S`` (V x G) sums the gate gradients ``dg``
    of the rows of each token; ``dW_ih = S^T table`` and ``dtable (+)= S W_ih``."""
    rows, table = unit["tok"]
    G = dg.shape[2]
    dg2 = dg.reshape(-1, G)
    # the rows split over the threads, each part summed apart, then the parts in order
    parts = fp.split_range(len(rows), num_threads())
    S = ws.aligned_empty((len(parts), table.shape[0], G), F32)
    run_parts(embedding_backward, [(rows[r0:r1], dg2[r0:r1], -1, S[q])
                                   for q, (r0, r1) in enumerate(parts)])
    S = S[0] if len(parts) == 1 else S.sum(axis=0)
    w_ih = p["weight_ih" + unit["sfx"]]
    _product(S.T, _pack(table), g["weight_ih" + unit["sfx"]], False)
    _product(S, _pack(w_ih), dtable, accumulate)


def _product(A, Bp, C, accumulate):
    """``C (+)= A B`` in this thread (:func:`fastrnn.kernels._gemm.gemm`: the same sums in the
    same order on every call): ``A`` (M x K) C-contiguous or its transpose, ``Bp`` the packed
    ``B`` (K x N), ``C`` (M x N) C-contiguous float32."""
    M, K = A.shape
    N = C.shape[1]
    if A.flags.c_contiguous:
        base, a_rows, a_cs = A, _iota(M, K), 1
    else:  # the transpose of a C-contiguous array: its rows are the columns of that array
        base, a_rows, a_cs = A.T, _iota(M), M
    gemm(M, N, K, base.reshape(-1), a_rows, 0, a_cs, Bp, KC, C.reshape(-1), _iota(M, N), 0,
         accumulate)


def _peep(spec, params, sfx):
    p = params.get("weight_peephole" + sfx)
    return p if p is not None else ws.aligned_zeros((3, spec.hidden_size), F32)


# ------------------------------------------------------------------------------------------ forward
def forward(spec, params, X, plan, h0, c0, hmasks, drops, tokens=None):
    """Forward of every layer and direction (arguments and results as
    :func:`fastrnn.kernels._driver.forward`, without the kernel namespace).

    ``tokens``, optional: ``(ids, table)`` with ``X == table[ids]`` (``ids`` intp of shape (B, T),
    ``table`` float32 of shape (V, F)). The first layer then projects its input through the table
    when that is cheaper (see :func:`_takes_tokens`), and :func:`backward` returns the gradient of
    ``table`` instead of ``dX`` (``ctx["tokens"]``).
    """
    B, T, F = X.shape
    D, H, L = spec.num_directions, spec.hidden_size, spec.num_layers
    order, Tm = plan.order, plan.Tm
    parts = _parts(plan)
    ctx = dict(units=[], drop=[], parts=parts, bf16=_bf16_on(spec),
               tokens=_takes_tokens(plan, tokens))
    hn = ws.aligned_empty((L * D, B, H), F32)
    cn = ws.aligned_empty(hn.shape, F32) if c0 is not None else None
    run_unit = _UNIT_FORWARD[spec.kind]
    # the backward reads the input again (dW_ih = dg^T X): keep a private copy, so that the caller
    # may reuse its array between forward and backward, as with the general driver (a layer that
    # projects through the token table reads X neither in its sweep nor in its backward)
    inp, width = (X if ctx["tokens"] else ws.copy(X)), F
    for li in range(L):
        # the last layer's output is the caller's: a new array
        out = (ws.aligned_zeros if li == L - 1 else ws.zeros)((B, T, D * H), F32)
        for d in range(D):
            u = li * D + d
            sfx = spec.units[u]
            xrow = _row_tables(plan, d, width)
            yrow = _row_tables(plan, d, D * H)
            tok = _token_rows(tokens, xrow, width) if li == 0 and ctx["tokens"] else None
            unit = run_unit(spec, params, sfx, inp, xrow, width, out, yrow, d * H, h0[u][order],
                            None if c0 is None else c0[u][order], plan.batch_sizes, hmasks[u],
                            parts, tok)
            # a token unit's weight gradients read no input features (see _token_grads)
            unit.update(sfx=sfx, x=inp, xrow=xrow, width=0 if tok is not None else width,
                        yrow=yrow, ycol=d * H, hmask=hmasks[u], tok=tok)
            ctx["units"].append(unit)
            hn[u][order] = unit["hs"][Tm]
            if cn is not None:
                cn[u][order] = unit["cs"][Tm]
        if drops[li] is not None:
            # the mask is drawn time-major and sorted (as the general driver uses it)
            mask = ws.aligned_zeros((B, T, D * H), F32)
            mask[order, :Tm] = drops[li].transpose(1, 0, 2)
            out = np.multiply(out, mask, out=ws.empty(out.shape, F32))
            ctx["drop"].append(mask)
        else:
            ctx["drop"].append(None)
        inp, width = out, D * H
    return inp, hn, cn, ctx


# ----------------------------------------------------------------------------------------- backward
def backward(spec, params, grads, plan, ctx, dY, dhn, dcn):
    """Backward of :func:`forward`: fills ``grads``; returns ``(dX, dh0, dc0)``, with the
    gradient of the token table (V, F) for ``dX`` when the forward projected through it. Its
    products are in bf16 when the forward's were."""
    spec = spec._replace(precision="bf16" if ctx["bf16"] else "float32")
    B, order, parts = plan.B, plan.order, ctx["parts"]
    D, H, L = spec.num_directions, spec.hidden_size, spec.num_layers
    dout = ws.as_aligned(dY, F32)
    dh0 = ws.aligned_empty((L * D, B, H), F32)
    dc0 = ws.aligned_empty(dh0.shape, F32) if dcn is not None else None
    run_unit = _UNIT_BACKWARD[spec.kind]
    for li in range(L - 1, -1, -1):
        if ctx["drop"][li] is not None:
            dout = np.multiply(dout, ctx["drop"][li], out=ws.empty(dout.shape, F32))
        width = ctx["units"][li * D]["width"]
        # the first layer's input gradient is the caller's: a new array
        if li == 0 and ctx["tokens"]:
            dinp = ws.aligned_zeros(ctx["units"][0]["tok"][1].shape, F32)
        else:
            dinp = (ws.aligned_zeros if li == 0 else ws.zeros)((B, plan.T, width), F32)
        for d in range(D):
            u = li * D + d
            unit = ctx["units"][u]
            dh = ws.aligned_copy(dhn[u][order])
            dc = None if dcn is None else ws.aligned_copy(dcn[u][order])
            run_unit(spec, params, grads, unit, dout, dh, dc, dinp, d > 0, plan.batch_sizes, parts)
            dh0[u][order] = dh
            if dc0 is not None:
                dc0[u][order] = dc
        dout = dinp
    return dout, dh0, dc0


def _mask_args(hmask):
    if hmask is None:
        return np.zeros((0, 0), F32), False
    return hmask, True


# --------------------------------------------------------------------------------------------- LSTM
def _lstm_forward(spec, p, sfx, inp, xrow, width, out, yrow, ycol, h0, c0, batch_sizes, hmask,
                  parts, tok):
    Tm, B = batch_sizes.shape[0], h0.shape[0]
    H = spec.hidden_size
    G = 4 * H
    xg = ws.empty((Tm, B, G), F32)
    hs = ws.empty((Tm + 1, B, H), F32)
    cs = ws.empty((Tm + 1, B, H), F32)
    hs[0], cs[0] = h0, c0
    hin = ws.aligned_empty((B, H), F32)
    m, use = _mask_args(hmask)
    wih_p = _pack_ih(spec, p, sfx, tok)
    whh_p = _pack_t(p["weight_hh" + sfx], _bf16_on(spec))
    bias = ws.aligned_copy(p["bias_ih" + sfx] + p["bias_hh" + sfx], F32)
    peep = _peep(spec, p, sfx)
    xf, of = inp.reshape(-1), out.reshape(-1)
    width = _projected(spec, p, sfx, inp, xrow, width, xg, tok)
    run_parts(lstm_fast_forward, [
        (xf, xrow, width, wih_p, whh_p, bias, batch_sizes, r0, r1, m, use, peep, spec.peephole,
         spec.gates_on, xg, hs, cs, hin, of, yrow, ycol) for r0, r1 in parts])
    return dict(hs=hs, cs=cs, acts=xg)


def _lstm_backward(spec, p, g, unit, dout, dh, dc, dinp, accumulate, batch_sizes, parts):
    sfx = unit["sfx"]
    H = spec.hidden_size
    G = 4 * H
    xg, cs, hs = unit["acts"], unit["cs"], unit["hs"]
    Tm, B = xg.shape[0], xg.shape[1]
    n = len(parts)
    dg = ws.empty((Tm, B, G), F32)
    db = ws.aligned_empty((n, G), F32)
    dpeep = ws.aligned_empty((n, 3, H), F32)
    m, use = _mask_args(unit["hmask"])
    whh_p = _pack(p["weight_hh" + sfx], _bf16_on(spec))
    run_parts(lstm_fast_backward, [
        (dout.reshape(-1), unit["yrow"], unit["ycol"], xg, cs, whh_p, batch_sizes, r0, r1, m, use,
         _peep(spec, p, sfx), spec.peephole, spec.gates_on, dg, dh, dc, db[q], dpeep[q])
        for q, (r0, r1) in enumerate(parts)])
    _weight_and_input_grads(spec, p, g, unit, dg, G, hs, dinp, accumulate, batch_sizes, parts)
    gb = db.sum(axis=0)
    g["bias_ih" + sfx][...] = gb
    g["bias_hh" + sfx][...] = gb
    if spec.peephole:
        g["weight_peephole" + sfx][...] = dpeep.sum(axis=0)


def _weight_and_input_grads(spec, p, g, unit, dg, G, hs, dinp, accumulate, batch_sizes, parts):
    """``dW_ih = dg^T X``, ``dW_hh = dg^T h_{t-1}`` (rows split over the parts) and
    ``dX (+)= dg W_ih`` (rows split over the parts)."""
    sfx = unit["sfx"]
    H = spec.hidden_size
    Tm, B = dg.shape[0], dg.shape[1]
    K = Tm * B
    width = unit["width"]
    hin = hs[:-1] if unit["hmask"] is None else hs[:-1] * unit["hmask"]
    hin = np.ascontiguousarray(hin).reshape(-1)
    if _bf16_on(spec):
        _bf16.weight_and_input_grads(dg, unit["x"].reshape(-1), unit["xrow"], width, hin, H,
                                     p["weight_ih" + sfx], g["weight_ih" + sfx],
                                     g["weight_hh" + sfx], dinp.reshape(-1), accumulate)
    else:
        wih_p = _pack_input_grads(p["weight_ih" + sfx], width)
        rows = fp.split_range(G, len(parts))
        bufs = _grads_buffers(parts, width, H)
        run_parts(fp.grads_part, [
            (dg.reshape(-1), G, K, unit["x"].reshape(-1), unit["xrow"], width, hin, _iota(K, H), H,
             g["weight_ih" + sfx].reshape(-1), g["weight_hh" + sfx].reshape(-1), rows[q][0],
             rows[q][1], wih_p, batch_sizes, B, r0, r1, dinp.reshape(-1), accumulate, bufs[q])
            for q, (r0, r1) in enumerate(parts)])
    if unit["tok"] is not None:
        _token_grads(p, g, unit, dg, dinp, accumulate)


# ---------------------------------------------------------------------------------------------- RNN
def _rnn_forward(spec, p, sfx, inp, xrow, width, out, yrow, ycol, h0, c0, batch_sizes, hmask,
                 parts, tok):
    Tm, B = batch_sizes.shape[0], h0.shape[0]
    H = spec.hidden_size
    xg = ws.empty((Tm, B, H), F32)
    hs = ws.empty((Tm + 1, B, H), F32)
    hs[0] = h0
    hin = ws.aligned_empty((B, H), F32)
    m, use = _mask_args(hmask)
    bias = ws.aligned_copy(p["bias_ih" + sfx] + p["bias_hh" + sfx], F32)
    relu = spec.relu
    wih_p = _pack_ih(spec, p, sfx, tok)
    whh_p = _pack_t(p["weight_hh" + sfx], _bf16_on(spec))
    xf, of = inp.reshape(-1), out.reshape(-1)
    width = _projected(spec, p, sfx, inp, xrow, width, xg, tok)
    run_parts(rnn_fast_forward, [
        (xf, xrow, width, wih_p, whh_p, bias, batch_sizes, r0, r1, m, use, relu, xg, hs, hin, of,
         yrow, ycol) for r0, r1 in parts])
    return dict(hs=hs)


def _rnn_backward(spec, p, g, unit, dout, dh, dc, dinp, accumulate, batch_sizes, parts):
    sfx = unit["sfx"]
    H = spec.hidden_size
    hs = unit["hs"]
    Tm, B = hs.shape[0] - 1, hs.shape[1]
    dg = ws.empty((Tm, B, H), F32)
    db = ws.aligned_empty((len(parts), H), F32)
    m, use = _mask_args(unit["hmask"])
    whh_p = _pack(p["weight_hh" + sfx], _bf16_on(spec))
    run_parts(rnn_fast_backward, [
        (dout.reshape(-1), unit["yrow"], unit["ycol"], hs, whh_p, batch_sizes, r0, r1, m, use,
         spec.relu, dg, dh, db[q]) for q, (r0, r1) in enumerate(parts)])
    _weight_and_input_grads(spec, p, g, unit, dg, H, hs, dinp, accumulate, batch_sizes, parts)
    gb = db.sum(axis=0)
    g["bias_ih" + sfx][...] = gb
    g["bias_hh" + sfx][...] = gb


# ---------------------------------------------------------------------------------------------- GRU
def _gru_forward(spec, p, sfx, inp, xrow, width, out, yrow, ycol, h0, c0, batch_sizes, hmask,
                 parts, tok):
    Tm, B = batch_sizes.shape[0], h0.shape[0]
    H = spec.hidden_size
    xg = ws.empty((Tm, B, 3 * H), F32)
    cache = ws.empty((Tm, B, H), F32)  # W_hn h + b_hn (reset after) or r * h (reset before)
    hs = ws.empty((Tm + 1, B, H), F32)
    hs[0] = h0
    hin = ws.aligned_empty((B, H), F32)
    m, use = _mask_args(hmask)
    w = p["weight_hh" + sfx]
    wih_p = _pack_ih(spec, p, sfx, tok)
    wrz_p, wn_p = _pack_t(w[:2 * H], _bf16_on(spec)), _pack_t(w[2 * H:], _bf16_on(spec))
    bi, bh = p["bias_ih" + sfx], p["bias_hh" + sfx]
    xf, of = inp.reshape(-1), out.reshape(-1)
    width = _projected(spec, p, sfx, inp, xrow, width, xg, tok)
    if spec.kind == "gru":
        bias = ws.aligned_copy(bi, F32)
        bias[:2 * H] += bh[:2 * H]
        bhn = ws.aligned_copy(bh[2 * H:], F32)
        run_parts(kg.gru_fast_forward, [
            (xf, xrow, width, wih_p, wrz_p, wn_p, bias, bhn, batch_sizes, r0, r1, m, use, xg, cache,
             hs, hin, of, yrow, ycol) for r0, r1 in parts])
        return dict(hs=hs, acts=xg, hn=cache)
    bias = ws.aligned_copy(bi + bh, F32)
    run_parts(kg.gru_v1_fast_forward, [
        (xf, xrow, width, wih_p, wrz_p, wn_p, bias, batch_sizes, r0, r1, m, use, xg, cache, hs, hin,
         of, yrow, ycol) for r0, r1 in parts])
    return dict(hs=hs, acts=xg, rh=cache)


def _gru_backward(spec, p, g, unit, dout, dh, dc, dinp, accumulate, batch_sizes, parts):
    sfx = unit["sfx"]
    H = spec.hidden_size
    xg, hs = unit["acts"], unit["hs"]
    Tm, B = xg.shape[0], xg.shape[1]
    K = Tm * B
    n = len(parts)
    m, use = _mask_args(unit["hmask"])
    w = p["weight_hh" + sfx]
    wrz_p, wn_p = _pack(w[:2 * H], _bf16_on(spec)), _pack(w[2 * H:], _bf16_on(spec))
    dg = ws.empty((Tm, B, 3 * H), F32)
    dd = ws.aligned_empty((B, H), F32)
    dbi = ws.aligned_empty((n, 3 * H), F32)
    dY, yrow, ycol = dout.reshape(-1), unit["yrow"], unit["ycol"]
    if spec.kind == "gru":
        dgn = ws.empty((Tm, B, H), F32)
        dbh = ws.aligned_empty((n, 3 * H), F32)
        run_parts(kg.gru_fast_backward, [
            (dY, yrow, ycol, xg, unit["hn"], hs, wrz_p, wn_p, batch_sizes, r0, r1, m, use, dg, dgn,
             dh, dd, dbi[q], dbh[q]) for q, (r0, r1) in enumerate(parts)])
        gbi = dbi.sum(axis=0)
        gbh = dbh.sum(axis=0)
        gbh[:2 * H] = gbi[:2 * H]
    else:
        drh = ws.aligned_empty((B, H), F32)
        run_parts(kg.gru_v1_fast_backward, [
            (dY, yrow, ycol, xg, hs, wrz_p, wn_p, batch_sizes, r0, r1, m, use, dg, dh, dd, drh,
             dbi[q]) for q, (r0, r1) in enumerate(parts)])
        gbi = gbh = dbi.sum(axis=0)
    width = unit["width"]
    hin = hs[:-1] if unit["hmask"] is None else hs[:-1] * unit["hmask"]
    hin = np.ascontiguousarray(hin).reshape(-1)
    if _bf16_on(spec):
        n_part = ((dgn, 0, H, hin, 2 * H) if spec.kind == "gru"
                  else (dg, 2 * H, H, unit["rh"].reshape(-1), 2 * H))
        _bf16.weight_and_input_grads(dg, unit["x"].reshape(-1), unit["xrow"], width, hin, H,
                                     p["weight_ih" + sfx], g["weight_ih" + sfx],
                                     g["weight_hh" + sfx], dinp.reshape(-1), accumulate,
                                     [(dg, 0, 2 * H, hin, 0), n_part])
        _gru_finish(p, g, unit, dg, dinp, accumulate, gbi, gbh)
        return
    wih_p = _pack_input_grads(p["weight_ih" + sfx], width)
    rows = fp.split_range(3 * H, len(parts))
    bufs = _grads_buffers(parts, width, H)
    x, xrow, hrow = unit["x"].reshape(-1), unit["xrow"], _iota(K, H)
    gwih, gwhh = g["weight_ih" + sfx].reshape(-1), g["weight_hh" + sfx].reshape(-1)
    dx = dinp.reshape(-1)
    if spec.kind == "gru":
        run_parts(kg.gru_fast_grads, [
            (dg.reshape(-1), dgn.reshape(-1), K, x, xrow, width, hin, hrow, H, gwih, gwhh,
             rows[q][0], rows[q][1], wih_p, batch_sizes, B, r0, r1, dx, accumulate, bufs[q])
            for q, (r0, r1) in enumerate(parts)])
    else:
        run_parts(kg.gru_v1_fast_grads, [
            (dg.reshape(-1), K, x, xrow, width, hin, hrow, unit["rh"].reshape(-1), H, gwih, gwhh,
             rows[q][0], rows[q][1], wih_p, batch_sizes, B, r0, r1, dx, accumulate, bufs[q])
            for q, (r0, r1) in enumerate(parts)])
    _gru_finish(p, g, unit, dg, dinp, accumulate, gbi, gbh)


def _gru_finish(p, g, unit, dg, dinp, accumulate, gbi, gbh):
    """The end of a GRU unit's backward: a token input's gradients and the biases'."""
    if unit["tok"] is not None:
        _token_grads(p, g, unit, dg, dinp, accumulate)
    g["bias_ih" + unit["sfx"]][...] = gbi
    g["bias_hh" + unit["sfx"]][...] = gbh


_UNIT_FORWARD = {"lstm": _lstm_forward, "rnn": _rnn_forward, "gru": _gru_forward,
                 "gru_v1": _gru_forward}
_UNIT_BACKWARD = {"lstm": _lstm_backward, "rnn": _rnn_backward, "gru": _gru_backward,
                  "gru_v1": _gru_backward}
