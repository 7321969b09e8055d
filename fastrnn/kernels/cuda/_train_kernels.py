"""The device kernels of a training step (:class:`._train.DeviceSession`): the element-wise
and per-row pieces around the recurrent stack, one thread per element (or per row), on arrays
that stay on the device.

Copies and fills; the lengths, pooling (and its gradient), steps and rows of a batch; the
embedding's lookup and the scatter of its gradient; the losses (softmax cross-entropy, mean
squared error) with their gradients and per-row values; the global gradient norm (one block,
summed in float64) and the updates of Adam/AdamW, SGD (momentum, Nesterov) and AdaGrad, each
skipped when the step was not finite; the clamp of a bounded parameter. The arithmetic of every
element follows the host's (``fastrnn.optim``, ``fastrnn.losses``).
"""

import math
import sys

import numpy as np
from numba import cuda

from . import _device as dev


#: threads of the block that sums the squared gradients (a power of two); on the simulator every
#: thread is a Python thread, so it gets a small block
_NT = 8 if "numba.cuda.simulator_init" in sys.modules else 256


@cuda.jit
def _fill(a, value):
    """``a[i] = value`` for the 1-D array ``a``."""
    i, r = cuda.grid(2)
    if r == 0 and i < a.shape[0]:
        a[i] = value


@cuda.jit
def _copy(src, dst):
    """``dst[i] = src[i]`` for 1-D arrays (a device-to-device copy)."""
    i, r = cuda.grid(2)
    if r == 0 and i < dst.shape[0]:
        dst[i] = src[i]


@cuda.jit
def _lengths(src, lens):
    """``lens[b] = src[b]``: the lengths, packed as floats in the batch, as integers."""
    i, r = cuda.grid(2)
    if r == 0 and i < lens.shape[0]:
        lens[i] = int(src[i])


@cuda.jit
def _pool(y, lens, mode, D, mask, use_mask, out, arg):
    """``out[b, j]``: the pooling of ``y`` (T, B, D*H) (times the dropout ``mask`` with
    ``use_mask``) over sequence ``b``'s real steps. ``mode`` 0: the last one (the reverse
    direction's half: step 0, its final state); 1: their mean; 2: their maximum, whose step goes
    to ``arg[b, j]`` (the first one where several are equal)."""
    j, b = cuda.grid(2)
    B, F = out.shape
    if b >= B or j >= F:
        return
    n = lens[b]
    if mode == 0:
        t0 = 0 if D == 2 and j >= F // 2 else n - 1
        v = y[t0, b, j]
        if use_mask:
            v *= mask[t0, b, j]
        out[b, j] = v
        return
    best = y[0, b, j]
    if use_mask:
        best *= mask[0, b, j]
    acc = best
    at = 0
    for t in range(1, n):
        v = y[t, b, j]
        if use_mask:
            v *= mask[t, b, j]
        acc += v
        if v > best:
            best = v
            at = t
    if mode == 1:
        out[b, j] = acc / n
    else:
        out[b, j] = best
        arg[b, j] = at


@cuda.jit
def _pool_backward(dp, lens, mode, D, mask, use_mask, arg, dy):
    """The gradient of :func:`_pool`: ``dy`` (T, B, D*H) from ``dp`` (B, D*H), zero elsewhere."""
    j, r = cuda.grid(2)
    T, B, F = dy.shape
    t = r // B
    b = r - t * B
    if r >= T * B or j >= F:
        return
    n = lens[b]
    v = dp[b, j] * 0
    if mode == 1:
        if t < n:
            v = dp[b, j] / n
    elif mode == 2:
        if t == arg[b, j]:
            v = dp[b, j]
    elif D == 2 and j >= F // 2:
        if t == 0:
            v = dp[b, j]
    elif t == n - 1:
        v = dp[b, j]
    if use_mask:
        v *= mask[t, b, j]
    dy[t, b, j] = v


@cuda.jit
def _steps(y, lens, mask, use_mask, out):
    """No pooling: ``out[t, b, j] = y[t, b, j]`` (times the dropout ``mask`` with ``use_mask``)
    at sequence ``b``'s real steps, zero past its length (what the head reads, or the gradient
    of what it read)."""
    j, r = cuda.grid(2)
    T, B, F = out.shape
    t = r // B
    b = r - t * B
    if r >= T * B or j >= F:
        return
    v = y[t, b, j] * 0
    if t < lens[b]:
        v = y[t, b, j]
        if use_mask:
            v *= mask[t, b, j]
    out[t, b, j] = v


@cuda.jit
def _exclude(out, cols):
    """``out[r, cols[c]] = -inf``: output ids that never get probability (``cols`` as floats)."""
    c, r = cuda.grid(2)
    if r < out.shape[0] and c < cols.shape[0]:
        out[r, int(cols[c])] = -math.inf


@cuda.jit
def _carry_rows(carry, src, out):
    """The initial state of the rows of a window: ``out[u, i] = carry[u, src[i]]``, zero where
    ``src[i] < 0`` (a row that starts a document); ``src`` as floats."""
    j, r = cuda.grid(2)
    U, B, H = out.shape
    u = r // B
    i = r - u * B
    if r >= U * B or j >= H:
        return
    k = int(src[i])
    out[u, i, j] = carry[u, k, j] if k >= 0 else out[u, i, j] * 0


@cuda.jit
def _select(hn, sel, out):
    """The state carried to the next window: ``out[u, s] = hn[u, sel[s]]`` (the final state of
    stream ``s``'s last row; ``sel`` as floats)."""
    j, r = cuda.grid(2)
    U, S, H = out.shape
    u = r // S
    s = r - u * S
    if r >= U * S or j >= H:
        return
    out[u, s, j] = hn[u, int(sel[s]), j]


@cuda.jit
def _gather(W, ids, lens, mask, use_mask, x):
    """The token input: ``x[t, b, e] = sum_k W[ids[t, b, k], e]`` (times the dropout ``mask``
    with ``use_mask``) at sequence ``b``'s real steps, zero past its length; ``ids`` (T, B, K)
    holds the ids as floats."""
    e, r = cuda.grid(2)
    T, B, E = x.shape
    t = r // B
    b = r - t * B
    if r >= T * B or e >= E:
        return
    v = x[t, b, e] * 0
    if t < lens[b]:
        for k in range(ids.shape[2]):
            v += W[int(ids[t, b, k]), e]
        if use_mask:
            v *= mask[t, b, e]
    x[t, b, e] = v


@cuda.jit
def _scatter(dx, uniq, starts, pos, lens, mask, use_mask, dfull, off, bag, accumulate, g):
    """The gradient of :func:`_gather` (and of the bag of embeddings with ``bag``): row
    ``uniq[u]`` of ``g`` gets the sum, over the flat steps ``p = t * B + b`` listed in
    ``pos[starts[u]:starts[u + 1]]`` (in that order: deterministic), of the step's input gradient
    ``dx[t, b]`` plus, with ``bag``, ``dfull[b, off:] / sqrt(lens[b])``, times the dropout
    ``mask`` with ``use_mask``; with ``accumulate`` the row's value is added to (a head tied to
    the embedding wrote its gradient there). The other rows are left alone."""
    e, u = cuda.grid(2)
    T, B, E = dx.shape
    if u >= uniq.shape[0] or e >= E:
        return
    acc = dx[0, 0, e] * 0
    for j in range(int(starts[u]), int(starts[u + 1])):
        p = int(pos[j])
        t = p // B
        b = p - t * B
        v = dx[t, b, e]
        if bag:
            v += dfull[b, off + e] / math.sqrt(lens[b])
        if use_mask:
            v *= mask[t, b, e]
        acc += v
    row = int(uniq[u])
    if accumulate:
        acc = g[row, e] + acc
    g[row, e] = acc


@cuda.jit
def _concat_bag(pooled, x, lens, full):
    """``full[b]`` = ``pooled[b]`` followed by the bag of embeddings of sequence ``b``: ``x``
    (T, B, E) summed over its real steps and divided by the square root of its length."""
    j, b = cuda.grid(2)
    B, F = full.shape
    P = pooled.shape[1]
    if b >= B or j >= F:
        return
    if j < P:
        full[b, j] = pooled[b, j]
        return
    e = j - P
    n = lens[b]
    acc = x[0, b, e] * 0
    for t in range(n):
        acc += x[t, b, e]
    full[b, j] = acc / math.sqrt(n)


@cuda.jit
def _first_columns(src, dst):
    """``dst[b, j] = src[b, j]`` for the columns of ``dst`` (the recurrent part of the head's
    input gradient)."""
    j, b = cuda.grid(2)
    if b < dst.shape[0] and j < dst.shape[1]:
        dst[b, j] = src[b, j]


@cuda.jit
def _add(out, a):
    """``out[b, k] += a[b, k]`` (the logits of the linear part)."""
    k, b = cuda.grid(2)
    if b < out.shape[0] and k < out.shape[1]:
        out[b, k] += a[b, k]


@cuda.jit
def _softmax_ce(z, y, coef, dz, rowloss):
    """Row ``b`` of the weighted softmax cross-entropy: ``rowloss[b] = coef[b] * (-log p[b, y_b])``
    (float64) and ``dz[b, c] = coef[b] * (p[b, c] - [c = y_b])``, ``coef`` being each row's weight
    over the batch's total weight and ``y`` (B, 1) the labels (stored as floats)."""
    b, r = cuda.grid(2)
    B, C = z.shape
    if r > 0 or b >= B:
        return
    label = int(y[b, 0])
    m = z[b, 0]
    for c in range(1, C):
        if z[b, c] > m:
            m = z[b, c]
    s = m * 0  # (the max: finite where the first logit is an excluded id's -inf)
    for c in range(C):
        s += math.exp(z[b, c] - m)
    lse = math.log(s)
    w = coef[b]
    rowloss[b] = float(w) * float(lse - (z[b, label] - m))
    for c in range(C):
        p = math.exp((z[b, c] - m) - lse)
        if c == label:
            p -= 1
        dz[b, c] = p * w


@cuda.jit
def _mse(pred, target, coef, dpred, rowloss):
    """Row ``b`` of the weighted mean squared error over the ``K`` outputs: ``rowloss[b] =
    coef[b] * mean_k (pred - target)^2`` (float64) and ``dpred = coef[b] * 2 / K * (pred -
    target)``."""
    b, r = cuda.grid(2)
    B, K = pred.shape
    if r > 0 or b >= B:
        return
    acc = 0.0
    w = coef[b]
    scale = w * (2.0 / K)
    for k in range(K):
        d = pred[b, k] - target[b, k]
        acc += float(d * d)
        dpred[b, k] = d * scale
    rowloss[b] = float(w) * (acc / K)


@cuda.jit
def _sum_rows(rowloss, res):
    """``res[0] = sum_b rowloss[b]`` in order (deterministic): the batch loss."""
    i, r = cuda.grid(2)
    if r > 0 or i > 0:
        return
    acc = 0.0
    for b in range(rowloss.shape[0]):
        acc += rowloss[b]
    res[0] = acc


@cuda.jit
def _norm(g, max_norm, clip, res, scale):
    """One block of :data:`_NT` threads: ``res[1]`` = the Euclidean norm of ``g`` accumulated in
    float64 (each thread a strided share, then a tree in shared memory: a fixed order), and with
    ``clip`` the clipping factor ``scale[0] = max_norm / norm`` (1 when the norm is within
    ``max_norm``), in ``g``'s dtype."""
    part = cuda.shared.array(_NT, np.float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for i in range(tid, g.shape[0], _NT):
        v = float(g[i])
        acc += v * v
    part[tid] = acc
    cuda.syncthreads()
    half = _NT // 2
    while half > 0:
        if tid < half:
            part[tid] += part[tid + half]
        cuda.syncthreads()
        half //= 2
    if tid == 0:
        norm = math.sqrt(part[0])
        res[1] = norm
        scale[0] = 1
        if clip and norm > max_norm:
            scale[0] = max_norm / norm


@cuda.jit(device=True)
def _apply(res, limit):
    """Whether the step's update applies: a finite loss within ``limit`` and a finite norm."""
    loss = res[0]
    norm = res[1]
    return math.isfinite(loss) and loss <= limit and math.isfinite(norm)


@cuda.jit(device=True)
def _clipped(g, i, scale, clip):
    """Gradient ``g[i]``, scaled in place by the clipping factor ``scale[0]`` with ``clip``."""
    gi = g[i]
    if clip:
        gi *= scale[0]
        g[i] = gi
    return gi


@cuda.jit
def _adam(p, g, m, v, res, scale, limit, clip, decoupled, shrink, l2, decay, b1, one_b1, b2,
          one_b2, bc2_sqrt, eps, step_size):
    """Clipping and one Adam (AdamW with ``decoupled``) step over the 1-D buffers, element ``i``
    as ``fastrnn.optim._fused.adam_step`` computes it; nothing when the step failed
    (:func:`_apply`)."""
    i, r = cuda.grid(2)
    if r > 0 or i >= p.shape[0] or not _apply(res, limit):
        return
    gi = _clipped(g, i, scale, clip)
    pi = p[i]
    if decoupled:
        pi = pi * shrink
    elif l2:
        gi = pi * decay + gi
    mi = m[i] * b1 + gi * one_b1
    vi = v[i] * b2 + (gi * gi) * one_b2
    m[i] = mi
    v[i] = vi
    p[i] = pi - (mi / (math.sqrt(vi) / bc2_sqrt + eps)) * step_size


@cuda.jit
def _sgd(p, g, buf, res, scale, limit, clip, decay, lr, mu, first, nesterov, lr_mu):
    """Clipping and one SGD step (momentum ``mu`` > 0: with the buffer ``buf``, started at the
    gradient when ``first``; Nesterov with ``nesterov``) over the 1-D buffers, element ``i`` as
    ``fastrnn.optim.SGD`` computes it; nothing when the step failed (:func:`_apply`)."""
    i, r = cuda.grid(2)
    if r > 0 or i >= p.shape[0] or not _apply(res, limit):
        return
    gi = _clipped(g, i, scale, clip)
    pi = p[i]
    if decay != 0:
        gi = pi * decay + gi
    if mu == 0:
        p[i] = pi - gi * lr
        return
    if first:
        b = gi
    else:
        b = buf[i] * mu + gi
    buf[i] = b
    if nesterov:
        pi = pi - gi * lr
        p[i] = pi - b * lr_mu
    else:
        p[i] = pi - b * lr


@cuda.jit
def _adagrad(p, s, g, res, scale, limit, clip, decay, lr, eps):
    """Clipping and one AdaGrad step over the 1-D buffers (``s`` the sum of squared gradients),
    element ``i`` as ``fastrnn.optim.AdaGrad`` computes it; nothing when the step failed
    (:func:`_apply`)."""
    i, r = cuda.grid(2)
    if r > 0 or i >= p.shape[0] or not _apply(res, limit):
        return
    gi = _clipped(g, i, scale, clip)
    pi = p[i]
    if decay != 0:
        gi = pi * decay + gi
    si = s[i] + gi * gi
    s[i] = si
    p[i] = pi - (gi / (math.sqrt(si) + eps)) * lr


@cuda.jit
def _clamp(p, bound):
    """``p[i] = min(max(p[i], -bound), bound)``: a parameter's constraint after the update."""
    i, r = cuda.grid(2)
    if r == 0 and i < p.shape[0]:
        p[i] = min(max(p[i], -bound), bound)


@cuda.jit
def _broadcast(p, out):
    """A learned initial state for every sequence: ``out[u, b, j] = p[u, j]``."""
    j, r = cuda.grid(2)
    U, B, H = out.shape
    u = r // B
    b = r - u * B
    if r < U * B and j < H:
        out[u, b, j] = p[u, j]


@cuda.jit
def _sum_batch(d, out):
    """The gradient of :func:`_broadcast`: ``out[u, j] = sum_b d[u, b, j]`` (in order)."""
    j, u = cuda.grid(2)
    U, B, H = d.shape
    if u >= U or j >= H:
        return
    acc = d[u, 0, j] * 0
    for b in range(B):
        acc += d[u, b, j]
    out[u, j] = acc


def _launch1(kernel, n, *args):
    """Launch an element-wise kernel over ``n`` elements of 1-D arrays."""
    dev.launch(kernel, 1, n, *args)


def _zeros(shape, dt):
    """A device array of zeros (filled on the device: nothing is copied)."""
    a = dev.empty(shape, dt)
    n = int(np.prod(shape, dtype=np.int64))
    _launch1(_fill, n, a.reshape((n,)), dt.type(0))
    return a
