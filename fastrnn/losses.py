"""Loss functions that return the loss and its gradient in one pass.

Every loss returns ``(loss, grad)``: ``loss`` is a Python float accumulated in
float64, ``grad`` is the gradient of ``loss`` with respect to the network
output, with the output's dtype and shape (float32 stays float32).  The
softmax losses use the log-sum-exp shift, so logits of any finite size
(1e4, 1e30) give finite losses and gradients; non-finite logits give a
non-finite loss, which the training loop detects.

Weighting convention (all losses): with a non-negative weight :math:`w_i` per
term and unweighted term losses :math:`\\ell_i`,

.. math:: J = \\frac{\\sum_i w_i \\ell_i}{\\sum_i w_i},

the weighted mean.  For class weights this is exactly PyTorch's
``cross_entropy(..., weight=class_weight, reduction="mean")``.  If the total
weight is zero (no terms, or all weights zero) the loss is ``0.0`` and the
gradient is zero.

Examples
--------
>>> import numpy as np
>>> from fastrnn.losses import softmax_cross_entropy
>>> loss, dlogits = softmax_cross_entropy(np.array([[0.0, 0.0]]), np.array([1]))
>>> round(loss, 6)  # log 2
0.693147
>>> dlogits
array([[ 0.5, -0.5]])
"""

import numpy as np

from ._config import num_threads
from ._parallel import run_parts

__all__ = [
    "log_softmax",
    "softmax",
    "softmax_cross_entropy",
    "sequence_softmax_cross_entropy",
    "blocked_softmax_cross_entropy",
    "blocked_log_probs",
    "mean_squared_error",
]

#: Elements of one block of logits in :func:`blocked_softmax_cross_entropy`: 2**20 values (4 MiB in
#: float32). A block has ``max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // vocab_size)`` rows.
BLOCK_ELEMENTS = 2 ** 20
#: The fewest rows of a block: with fewer, the products of a large vocabulary are too thin for
#: BLAS and the gradient of the weights is rewritten too often (a 28,450-word softmax over 1,024
#: rows of 256 features, one thread: 1.26 s in blocks of 36 rows, 0.68 s in blocks of 128)
MIN_BLOCK_ROWS = 128

#: Rows per thread below which :func:`blocked_softmax_cross_entropy` runs on one thread.
PARALLEL_MIN_ROWS = 512


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------

def _as_float(x, name):
    """``x`` as a floating-point array (integers and booleans become float64)."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        return x
    if x.dtype.kind in "iub":
        return x.astype(np.float64)
    raise ValueError(
        f"{name} must be a real numeric array, got dtype {x.dtype}; convert it with "
        f"np.asarray({name}, dtype=np.float32)."
    )


def _where(bad, positions=None):
    """Index of the first True of ``bad`` for a message (int or tuple)."""
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    if positions is not None:
        return idx, tuple(int(i) for i in positions()[idx[0]])
    return idx, (idx[0] if len(idx) == 1 else idx)


def _check_labels(y, n_classes, name="y", positions=None):
    """Integer class indices in [0, n_classes) as an intp array (any shape).

    ``positions``, if given, is a callable returning an (n, d) array that maps
    a flat index of ``y`` to the index reported in error messages (only
    called when there is an error).
    """
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.floor(np.where(np.isfinite(y), y, 0)))
        if bad.any():
            idx, shown = _where(bad, positions)
            raise ValueError(
                f"{name} must hold integer class indices, got {y[idx].item()!r} at index "
                f"{shown}; encode the labels with "
                "sklearn.preprocessing.LabelEncoder."
            )
    elif y.dtype.kind not in "iub":
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {y.dtype}; encode the "
            "labels with sklearn.preprocessing.LabelEncoder."
        )
    if y.size:
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            idx, shown = _where(bad, positions)
            raise ValueError(
                f"{name} contains the label {y[idx].item()!r} at index "
                f"{shown}, but the logits have "
                f"{n_classes} classes, so labels must be integers in [0, {n_classes}); "
                "encode the labels with sklearn.preprocessing.LabelEncoder or give the "
                "output layer more units."
            )
    return y.astype(np.intp, copy=False)


def _check_weights(w, shape, name, what):
    """Finite non-negative float64 weights of the given shape."""
    w = np.asarray(w)
    if w.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {w.dtype}.")
    w = w.astype(np.float64, copy=False)
    if w.shape != shape:
        raise ValueError(
            f"{name} has shape {w.shape} but {what} needs shape {shape}; pass one "
            "weight per entry."
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        idx, shown = _where(bad)
        raise ValueError(
            f"{name} must be finite and non-negative, got {w[idx].item()!r} at index "
            f"{shown}; use 0 to ignore an entry."
        )
    return w


# ---------------------------------------------------------------------------
# softmax helpers
# ---------------------------------------------------------------------------

def log_softmax(logits, axis=-1):
    r"""Numerically stable log-softmax.

    .. math::

        \log \operatorname{softmax}(z)_c = z_c - m - \log \sum_{c'} e^{z_{c'} - m},
        \qquad m = \max_{c'} z_{c'}

    Parameters
    ----------
    logits : array_like of shape (..., n_classes, ...)
        Unnormalised scores; integer input is promoted to float64.
    axis : int, default=-1
        Axis holding the classes.

    Returns
    -------
    out : ndarray, same shape and (floating) dtype as ``logits``
        Log-probabilities; finite for any finite input.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.losses import log_softmax
    >>> log_softmax(np.array([1e4, 0.0]))
    array([     0., -10000.])
    """
    z = _as_float(logits, "logits")
    m = np.max(z, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0  # all -inf (or inf / nan) along the axis: no shift
    out = z - m
    tmp = np.exp(out)
    lse = np.sum(tmp, axis=axis, keepdims=True)
    np.log(lse, out=lse)
    out -= lse
    return out


def softmax(logits, axis=-1, out=None):
    r"""Numerically stable softmax.

    .. math::

        \operatorname{softmax}(z)_c = \frac{e^{z_c - m}}{\sum_{c'} e^{z_{c'} - m}},
        \qquad m = \max_{c'} z_{c'}

    Parameters
    ----------
    logits : array_like of shape (..., n_classes, ...)
        Unnormalised scores; integer input is promoted to float64. ``-inf`` marks a class of
        probability zero.
    axis : int, default=-1
        Axis holding the classes.
    out : ndarray of the shape of ``logits``, optional
        Where to write the result (it may be ``logits`` itself); a new array otherwise.

    Returns
    -------
    out : ndarray, same shape as ``logits`` (and its floating dtype, or ``out``'s)
        Probabilities summing to 1 along ``axis``.
    """
    z = _as_float(logits, "logits")
    m = np.max(z, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0.0
    out = np.subtract(z, m, out=out)
    np.exp(out, out=out)
    out /= np.sum(out, axis=axis, keepdims=True)
    return out


def _weighted_ce(z, y, w):
    """Cross-entropy of validated 2-D logits ``z`` (n, C), labels ``y`` (n,), weights."""
    n = z.shape[0]
    total = float(n) if w is None else float(w.sum())
    if n == 0 or total <= 0.0:
        return 0.0, np.zeros_like(z)
    lsm = log_softmax(z, axis=1)
    rows = np.arange(n)
    nll = -lsm[rows, y]
    if w is None:
        loss = float(np.sum(nll, dtype=np.float64)) / total
        coef = 1.0 / total
    else:
        loss = float(np.dot(w, nll.astype(np.float64, copy=False))) / total
        coef = (w / total)[:, None]
    d = np.exp(lsm, out=lsm)
    d[rows, y] -= 1.0
    d *= coef
    return loss, d


# ---------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------

def softmax_cross_entropy(logits, y, sample_weight=None, class_weight=None):
    r"""Softmax cross-entropy and its gradient with respect to the logits.

    With :math:`p_i = \operatorname{softmax}(z_i)` and
    :math:`w_i = s_i \cdot \kappa_{y_i}` (sample weight times class weight,
    each 1 when not given):

    .. math::

        J = \frac{\sum_i w_i \,(-\log p_{i, y_i})}{\sum_i w_i},
        \qquad
        \frac{\partial J}{\partial z_{ic}} =
        \frac{w_i}{\sum_j w_j}\,\bigl(p_{ic} - [c = y_i]\bigr).

    For class weights alone this is PyTorch's
    ``cross_entropy(z, y, weight=class_weight)`` (weighted mean).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Unnormalised scores :math:`z` (float32 or float64).
    y : array_like of int of shape (n_samples,)
        Class indices in ``[0, n_classes)``.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative weight per sample.
    class_weight : array_like of shape (n_classes,), default=None
        Non-negative weight per class.

    Returns
    -------
    loss : float
        Weighted mean cross-entropy (nats), 0.0 if the total weight is zero.
    dlogits : ndarray of shape (n_samples, n_classes)
        :math:`\partial J / \partial z`, same dtype as ``logits``.

    Raises
    ------
    ValueError
        If shapes disagree, a label is out of range or not an integer, or a
        weight is negative or non-finite.
    """
    z = _as_float(logits, "logits")
    if z.ndim != 2:
        raise ValueError(
            f"logits must have shape (n_samples, n_classes), got shape {z.shape}; use "
            "sequence_softmax_cross_entropy for (batch, T, n_classes) per-step logits."
        )
    n, n_classes = z.shape
    if n_classes < 1:
        raise ValueError("logits have 0 classes; the output layer needs at least 1 unit.")
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(
            f"y has shape {y.shape} but logits have {n} samples, so y needs shape ({n},); "
            "pass one integer label per row of logits."
        )
    y = _check_labels(y, n_classes)
    w = None
    if sample_weight is not None:
        w = _check_weights(sample_weight, (n,), "sample_weight", "logits of shape "
                           f"{z.shape}")
    if class_weight is not None:
        cw = _check_weights(class_weight, (n_classes,), "class_weight",
                            f"logits with {n_classes} classes")
        w = cw[y] if w is None else w * cw[y]
    return _weighted_ce(z, y, w)


def sequence_softmax_cross_entropy(logits, y, lengths, sample_weight=None, class_weight=None):
    r"""Per-step softmax cross-entropy over padded sequences, averaged over real steps.

    Only steps :math:`t < L_b` of sequence :math:`b` count; with
    :math:`w_{bt} = s_b \kappa_{y_{bt}}` (or a per-step weight :math:`s_{bt}`):

    .. math::

        J = \frac{\sum_b \sum_{t < L_b} w_{bt}\,(-\log p_{bt, y_{bt}})}
                 {\sum_b \sum_{t < L_b} w_{bt}}.

    Unweighted, this is the mean cross-entropy per real token, so longer
    sequences weigh more; ``exp(loss)`` is the perplexity.
    The logits and labels of padded steps are never read: padded labels may
    hold anything (e.g. -1) and padded logits anything (even NaN); their
    gradient is exactly zero.

    Parameters
    ----------
    logits : ndarray of shape (batch, T, n_classes)
        Per-step unnormalised scores.
    y : array_like of int of shape (batch, T)
        Per-step class indices in ``[0, n_classes)`` at real steps.
    lengths : array_like of int of shape (batch,)
        Real length :math:`L_b \in [0, T]` of each sequence.
    sample_weight : array_like of shape (batch,) or (batch, T), default=None
        Non-negative weight per sequence (applied to each of its steps) or
        per step.
    class_weight : array_like of shape (n_classes,), default=None
        Non-negative weight per class.

    Returns
    -------
    loss : float
        Weighted mean cross-entropy per real step; 0.0 if there are none.
    dlogits : ndarray of shape (batch, T, n_classes)
        :math:`\partial J / \partial z`, same dtype as ``logits``, zero at
        padded steps.

    Raises
    ------
    ValueError
        If shapes disagree, a length is outside [0, T], a real step's label is
        out of range, or a weight is negative or non-finite.
    """
    z = _as_float(logits, "logits")
    if z.ndim != 3:
        raise ValueError(
            f"logits must have shape (batch, T, n_classes), got shape {z.shape}; use "
            "softmax_cross_entropy for one label per sequence."
        )
    B, T, n_classes = z.shape
    if n_classes < 1:
        raise ValueError("logits have 0 classes; the output layer needs at least 1 unit.")
    y = np.asarray(y)
    if y.shape != (B, T):
        raise ValueError(
            f"y has shape {y.shape} but logits have shape {z.shape}, so y needs shape "
            f"({B}, {T}); pad the labels to the same length as the inputs."
        )
    lengths = np.asarray(lengths)
    if lengths.shape != (B,):
        raise ValueError(
            f"lengths has shape {lengths.shape} but there are {B} sequences; pass one "
            f"length per sequence, shape ({B},)."
        )
    if lengths.dtype.kind not in "iu" and not (
            lengths.dtype.kind == "f" and np.all(lengths == np.round(lengths))):
        raise ValueError(f"lengths must be integers, got {lengths!r}.")
    lengths = lengths.astype(np.intp)
    bad = (lengths < 0) | (lengths > T)
    if bad.any():
        b = int(np.argmax(bad))
        raise ValueError(
            f"lengths[{b}] = {int(lengths[b])} is outside [0, {T}]; a length must not "
            "exceed the padded number of steps T."
        )
    sw = None
    if sample_weight is not None:
        sw_arr = np.asarray(sample_weight)
        shape = (B,) if sw_arr.ndim == 1 else (B, T)
        sw = _check_weights(sw_arr, shape, "sample_weight", f"logits of shape {z.shape}")
        if sw.ndim == 1:
            sw = np.broadcast_to(sw[:, None], (B, T))
    if class_weight is not None:
        cw = _check_weights(class_weight, (n_classes,), "class_weight",
                            f"logits with {n_classes} classes")

    full = bool(np.all(lengths == T))
    if full:
        mask = None
        z_real = z.reshape(B * T, n_classes)
        y_real = y.reshape(B * T)
        w = None if sw is None else sw.reshape(B * T)
    else:
        mask = np.arange(T)[None, :] < lengths[:, None]
        z_real = z[mask]
        y_real = y[mask]
        w = None if sw is None else sw[mask]
    y_real = _check_labels(
        y_real, n_classes, name="y",
        positions=lambda: np.argwhere(np.ones((B, T), dtype=bool) if mask is None else mask))
    if class_weight is not None:
        w = cw[y_real] if w is None else w * cw[y_real]
    loss, d_real = _weighted_ce(z_real, y_real, w)
    if full:
        return loss, d_real.reshape(B, T, n_classes)
    dlogits = np.zeros(z.shape, dtype=z.dtype)
    dlogits[mask] = d_real
    return loss, dlogits


def mean_squared_error(pred, y, sample_weight=None):
    r"""Mean squared error and its gradient with respect to the predictions.

    Weighted mean over samples of the mean over the :math:`K` outputs:

    .. math::

        J = \frac{1}{\sum_i w_i} \sum_i w_i \, \frac{1}{K} \sum_k (\hat y_{ik} - y_{ik})^2,
        \qquad
        \frac{\partial J}{\partial \hat y_{ik}} =
        \frac{2\, w_i}{K \sum_j w_j}\,(\hat y_{ik} - y_{ik}).

    Unweighted, this is the mean over all :math:`N K` squared errors, i.e.
    ``torch.nn.functional.mse_loss`` and, for :math:`K = 1`,
    ``sklearn.metrics.mean_squared_error`` (also weighted).  There is no
    factor 1/2.

    Parameters
    ----------
    pred : ndarray of shape (n_samples, n_outputs) or (n_samples,)
        Predictions :math:`\hat y` (float32 or float64).
    y : array_like of shape (n_samples, n_outputs) or (n_samples,)
        Targets, same shape as ``pred`` (shape ``(n_samples,)`` is also
        accepted when ``pred`` has shape ``(n_samples, 1)``).
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative weight per sample.

    Returns
    -------
    loss : float
        Weighted mean squared error; 0.0 if the total weight is zero.
    dpred : ndarray, same shape and dtype as ``pred``
        :math:`\partial J / \partial \hat y`.

    Raises
    ------
    ValueError
        If shapes disagree, ``y`` is not finite, or a weight is negative or
        non-finite.
    """
    p = _as_float(pred, "pred")
    if p.ndim not in (1, 2):
        raise ValueError(
            f"pred must have shape (n_samples,) or (n_samples, n_outputs), got shape "
            f"{p.shape}."
        )
    t = _as_float(y, "y")
    if not np.all(np.isfinite(t)):
        idx, shown = _where(~np.isfinite(t))
        raise ValueError(
            f"y contains the non-finite value {t[idx].item()!r} at index {shown}; remove or "
            "impute missing targets before training."
        )
    if t.shape != p.shape:
        if p.ndim == 2 and p.shape[1] == 1 and t.shape == (p.shape[0],):
            t = t.reshape(p.shape)
        else:
            raise ValueError(
                f"y has shape {t.shape} but pred has shape {p.shape}; targets must have "
                "the predictions' shape (reshape y, e.g. y.reshape(-1, 1) for one output)."
            )
    n = p.shape[0]
    k = p.shape[1] if p.ndim == 2 else 1
    p2 = p.reshape(n, k)
    w = None
    if sample_weight is not None:
        w = _check_weights(sample_weight, (n,), "sample_weight", f"pred of shape {p.shape}")
    total = float(n) if w is None else float(w.sum())
    if n == 0 or k == 0 or total <= 0.0:
        return 0.0, np.zeros_like(p)
    diff = np.subtract(p2, t.reshape(n, k), dtype=p.dtype)
    sq = diff * diff
    per_sample = np.mean(sq, axis=1, dtype=np.float64)
    if w is None:
        loss = float(per_sample.sum()) / total
        diff *= 2.0 / (k * total)
    else:
        loss = float(np.dot(w, per_sample)) / total
        diff *= (w * (2.0 / (k * total)))[:, None]
    return loss, diff.reshape(p.shape)


# ---------------------------------------------------------------------------
# the blocked softmax cross-entropy of a large output layer
# ---------------------------------------------------------------------------

def _block_rows(vocab_size, block_rows):
    if block_rows is None:
        return max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // max(1, int(vocab_size)))
    block_rows = int(block_rows)
    if block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer or None, got {block_rows}.")
    return block_rows


def _check_head(hidden, weight, bias, targets):
    hidden = np.asarray(hidden)
    weight = np.asarray(weight)
    bias = np.asarray(bias)
    if hidden.ndim != 2 or weight.ndim != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"hidden must be (N, F) and weight (V, F) with the same F, got hidden {hidden.shape} "
            f"and weight {weight.shape}; flatten the (B, T, F) hidden states to (B*T, F) first."
        )
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}.")
    dt = np.result_type(hidden.dtype, weight.dtype, np.float32)
    targets = np.asarray(targets)
    if targets.shape != (hidden.shape[0],) or (targets.size and targets.dtype.kind not in "iu"):
        raise ValueError(
            f"targets must be integer ids of shape ({hidden.shape[0]},), got {targets.dtype} array "
            f"of shape {targets.shape}."
        )
    V = weight.shape[0]
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ValueError(f"target ids must lie in [0, {V}), got values from {targets.min()} to "
                         f"{targets.max()}; encode them with the model's vocabulary.")
    return (np.ascontiguousarray(hidden, dt), np.ascontiguousarray(weight, dt),
            np.ascontiguousarray(bias, dt), targets.astype(np.intp, copy=False))


def _blocked(hidden, weight, bias, targets, valid, excluded, block_rows, grad_scale,
             dhidden=None):
    """Shared loop of the blocked softmax: per-row negative log-likelihoods and, if
    ``grad_scale`` is given, the gradients of ``sum_i grad_scale * valid_i * nll_i`` (``dhidden``
    written into the given array if one is passed)."""
    N, F = hidden.shape
    V = weight.shape[0]
    dt = hidden.dtype
    rows_per = min(_block_rows(V, block_rows), max(N, 1))
    nll = np.zeros(N, np.float64)
    excluded = [int(e) for e in excluded]
    want_grad = grad_scale is not None
    if want_grad:
        dhidden = np.zeros_like(hidden) if dhidden is None else dhidden
        dweight = np.zeros_like(weight)
        dbias = np.zeros(V, np.float64)
        tmp = np.empty_like(weight)
    z = np.empty((rows_per, V), dt)
    wt = weight.T
    for r0 in range(0, N, rows_per):
        r1 = min(N, r0 + rows_per)
        n = r1 - r0
        zb = z[:n]
        np.dot(hidden[r0:r1], wt, out=zb)
        zb += bias
        if excluded:
            zb[:, excluded] = -np.inf
        zb -= zb.max(axis=1, keepdims=True)
        rows = np.arange(n)
        t = targets[r0:r1]
        z_t = zb[rows, t].astype(np.float64)
        np.exp(zb, out=zb)
        s = zb.sum(axis=1, dtype=np.float64)
        v = valid[r0:r1]
        with np.errstate(invalid="ignore"):
            nll[r0:r1] = np.where(v, np.log(s) - z_t, 0.0)
        if want_grad:
            # d nll_i / d z_ij = p_ij - [j == t_i]; weighted by grad_scale on the valid rows only.
            w = np.where(v, grad_scale / s, 0.0).astype(dt)
            zb *= w[:, None]
            zb[rows[v], t[v]] -= dt.type(grad_scale)
            np.dot(zb, weight, out=dhidden[r0:r1])
            np.dot(zb.T, hidden[r0:r1], out=tmp)
            dweight += tmp
            dbias += zb.sum(axis=0, dtype=np.float64)
    if want_grad:
        return nll, dhidden, dweight, dbias.astype(dt)
    return nll


def blocked_softmax_cross_entropy(hidden, weight, bias, targets, valid=None,
                                  excluded=(), block_rows=None):
    r"""Softmax output layer fused with the cross-entropy, computed a block of rows at a time.

    With logits :math:`z_i = W h_i + b` (one row per token position) the loss is the mean negative
    log-likelihood of the targets over the valid rows,

    .. math::

        J = \frac{1}{n}\sum_{i\,\text{valid}}
            \Bigl(\log \sum_{j \notin E} e^{z_{ij}} - z_{i t_i}\Bigr),

    and its gradients follow from :math:`\partial J / \partial z_{ij} = (p_{ij} - [j = t_i]) / n`:
    :math:`\partial J/\partial h_i = (p_i - e_{t_i}) W / n`,
    :math:`\partial J/\partial W = \sum_i (p_i - e_{t_i})^\top h_i / n`, and the column sums for
    the bias. Only ``block_rows`` rows of logits exist at any time (default: ``2**20 // V`` rows,
    4 MiB in float32, and at least 128), so a 10,000-word vocabulary costs a few MiB instead of
    ``N * V`` values; the head gradients are accumulated block by block.

    Parameters
    ----------
    hidden : ndarray of shape (N, F)
        Hidden states entering the head (e.g. ``(B*T, hidden_size)``).
    weight : ndarray of shape (V, F)
        Output weights (the embedding matrix when the weights are tied).
    bias : ndarray of shape (V,)
    targets : integer ndarray of shape (N,)
        The next token of each row.
    valid : bool ndarray of shape (N,), optional
        Rows that count (default all); invalid rows get no loss and no gradient.
    excluded : sequence of int, default ()
        Output ids that get probability zero (their logits are set to :math:`-\infty`), e.g. a
        language model's padding and beginning-of-sequence tokens, which are never a next token.
    block_rows : int, optional
        Rows per block.

    Returns
    -------
    loss : float
        Mean negative log-likelihood (nats per valid row), accumulated in float64; 0.0 if no row is
        valid.
    dhidden : ndarray of shape (N, F)
    dweight : ndarray of shape (V, F)
    dbias : ndarray of shape (V,)
        Gradients of ``loss``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrnn.losses import blocked_softmax_cross_entropy
    >>> h = np.zeros((3, 2)); W = np.zeros((4, 2)); b = np.zeros(4)
    >>> loss, dh, dW, db = blocked_softmax_cross_entropy(h, W, b, [1, 2, 3], block_rows=2)
    >>> round(loss, 6)  # log 4: four equally likely tokens
    1.386294
    """
    hidden, weight, bias, targets = _check_head(hidden, weight, bias, targets)
    valid = (np.ones(len(targets), bool) if valid is None
             else np.asarray(valid, bool).reshape(len(targets)))
    n = int(valid.sum())
    scale = 1.0 / n if n else 0.0
    N = len(targets)
    n_parts = min(num_threads(), N // PARALLEL_MIN_ROWS) if N >= 2 * PARALLEL_MIN_ROWS else 1
    if n_parts <= 1:
        nll, dh, dw, db = _blocked(hidden, weight, bias, targets, valid, excluded, block_rows,
                                   scale)
        return float(nll.sum() * scale), dh, dw, db
    # Rows are independent: one part per thread (numpy releases the GIL in its products and
    # element-wise loops), the head gradients summed over the parts in a fixed order.
    dh = np.empty_like(hidden)
    bounds = np.linspace(0, N, n_parts + 1).astype(int)
    parts = run_parts(lambda r0, r1: _blocked(
        hidden[r0:r1], weight, bias, targets[r0:r1], valid[r0:r1], excluded, block_rows, scale,
        dhidden=dh[r0:r1]), list(zip(bounds[:-1], bounds[1:])))
    loss = sum(float(p[0].sum()) for p in parts) * scale
    dw = parts[0][2]
    db = parts[0][3]
    for p in parts[1:]:
        dw += p[2]
        db += p[3]
    return float(loss), dh, dw, db


def blocked_log_probs(hidden, weight, bias, targets, excluded=(), block_rows=None):
    """Log-probability of each target under the softmax head, computed block by block.

    Parameters
    ----------
    hidden, weight, bias, targets, excluded, block_rows
        As in :func:`blocked_softmax_cross_entropy`.

    Returns
    -------
    log_probs : float64 ndarray of shape (N,)
        :math:`\\log p(t_i \\mid h_i)` (``-inf`` for an excluded target).
    """
    hidden, weight, bias, targets = _check_head(hidden, weight, bias, targets)
    valid = np.ones(len(targets), bool)
    return -_blocked(hidden, weight, bias, targets, valid, excluded, block_rows, None)
