"""Tests for fastrnn.losses: values, gradients, stability, masking, validation."""

import math

import numpy as np
import pytest

from fastrnn.losses import (
    log_softmax,
    mean_squared_error,
    sequence_softmax_cross_entropy,
    softmax,
    softmax_cross_entropy,
)
from conftest import numerical_grad

DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


def _fd_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar function f at x (float64)."""
    return numerical_grad(lambda: f(x), x, eps)


def _direct_ce(z, y, w=None):
    """Weighted mean of -log softmax[y], one row at a time with the math module."""
    z = np.asarray(z, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    num = 0.0
    for i in range(len(y)):
        m = max(z[i])
        lse = m + math.log(sum(math.exp(v - m) for v in z[i]))
        num += w[i] * (lse - z[i, y[i]])
    return num / w.sum()


def _data(n=9, c=5, seed=0, dtype=np.float64, scale=2.0):
    rng = np.random.default_rng(seed)
    z = (scale * rng.normal(size=(n, c))).astype(dtype)
    y = rng.integers(0, c, size=n)
    sw = rng.uniform(0.1, 2.0, size=n)
    cw = rng.uniform(0.2, 3.0, size=c)
    return z, y, sw, cw


# ---------------------------------------------------------------------------
# softmax helpers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax_direct(dtype):
    z, _, _, _ = _data(dtype=dtype)
    e = np.exp(z.astype(np.float64))
    p = e / e.sum(axis=1, keepdims=True)
    out = softmax(z)
    assert out.dtype == dtype and out.shape == z.shape
    np.testing.assert_allclose(out, p, **_tol(dtype))
    np.testing.assert_allclose(log_softmax(z), np.log(p), **_tol(dtype))
    assert log_softmax(z).dtype == dtype
    # another axis
    np.testing.assert_allclose(softmax(z.T, axis=0), p.T, **_tol(dtype))
    np.testing.assert_allclose(log_softmax(z.T, axis=0), np.log(p).T, **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_stable_for_huge_logits(dtype):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [3e4, 3e4, -3e4]], dtype=dtype)
    ls = log_softmax(z)
    assert np.all(np.isfinite(ls))
    np.testing.assert_allclose(ls[0], [0.0, -1e4, -2e4], rtol=1e-6)
    np.testing.assert_allclose(ls[1], [-math.log(3)] * 3, rtol=1e-6)
    np.testing.assert_allclose(ls[2, :2], [-math.log(2)] * 2, rtol=1e-6)
    p = softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0], atol=1e-30)


# ---------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------

WEIGHTING = ["none", "sample", "class", "both"]


def _weights(kind, y, sw, cw):
    kw = {}
    w = np.ones(len(y))
    if kind in ("sample", "both"):
        kw["sample_weight"] = sw
        w = w * sw
    if kind in ("class", "both"):
        kw["class_weight"] = cw
        w = w * cw[y]
    return kw, w


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighting", WEIGHTING)
def test_cross_entropy_matches_direct_computation(dtype, weighting):
    z, y, sw, cw = _data(dtype=dtype)
    kw, w = _weights(weighting, y, sw, cw)
    loss, d = softmax_cross_entropy(z, y, **kw)
    assert isinstance(loss, float)
    assert d.dtype == dtype and d.shape == z.shape
    assert loss == pytest.approx(_direct_ce(z, y, w), rel=1e-6 if dtype == np.float32 else 1e-13)
    # closed-form gradient: w_i / sum(w) * (p - onehot)
    p = softmax(z.astype(np.float64))
    p[np.arange(len(y)), y] -= 1.0
    np.testing.assert_allclose(d, p * (w / w.sum())[:, None], **_tol(dtype))


@pytest.mark.parametrize("weighting", WEIGHTING)
def test_cross_entropy_finite_differences(weighting):
    z, y, sw, cw = _data(n=6, c=4, seed=1)
    kw, _ = _weights(weighting, y, sw, cw)
    _, d = softmax_cross_entropy(z, y, **kw)
    fd = _fd_grad(lambda x: softmax_cross_entropy(x, y, **kw)[0], z.copy())
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighting", WEIGHTING)
def test_cross_entropy_matches_torch(dtype, weighting):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, y, sw, cw = _data(dtype=dtype)
    kw, _ = _weights(weighting, y, sw, cw)
    loss, d = softmax_cross_entropy(z, y, **kw)

    tz = torch.tensor(z, requires_grad=True)
    ty = torch.from_numpy(y)
    tcw = torch.tensor(cw, dtype=tz.dtype) if "class_weight" in kw else None
    if "sample_weight" in kw:
        per = F.cross_entropy(tz, ty, weight=tcw, reduction="none")
        tsw = torch.tensor(sw, dtype=tz.dtype)
        wi = tsw * (tcw[ty] if tcw is not None else 1.0)
        tloss = (per * tsw).sum() / wi.sum()  # per already carries the class weight
    else:
        tloss = F.cross_entropy(tz, ty, weight=tcw)
    tloss.backward()
    tol = _tol(dtype)
    assert loss == pytest.approx(tloss.item(), rel=tol["rtol"])
    np.testing.assert_allclose(d, tz.grad.numpy(), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_stable_with_logits_of_1e4(dtype):
    rng = np.random.default_rng(2)
    z = (1e4 * rng.normal(size=(20, 6))).astype(dtype)
    y = rng.integers(0, 6, size=20)
    y[0] = int(np.argmax(z[0]))
    loss, d = softmax_cross_entropy(z, y)
    assert np.isfinite(loss)
    assert np.all(np.isfinite(d))
    assert loss == pytest.approx(_direct_ce(z, y), rel=1e-6)
    np.testing.assert_allclose(d.sum(axis=1), 0.0, atol=1e-6)
    # the correct class at the maximum costs nothing and gets no gradient
    loss0, d0 = softmax_cross_entropy(z[:1], y[:1])
    assert loss0 == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(d0, 0.0, atol=1e-6)
    # and the same with all logits enormous and equal: log C
    loss1, d1 = softmax_cross_entropy(np.full((2, 4), 1e30, dtype=dtype), [0, 3])
    assert loss1 == pytest.approx(math.log(4), rel=1e-6)
    np.testing.assert_allclose(d1, np.array([[-0.75, .25, .25, .25], [.25, .25, .25, -.75]]) / 2,
                               rtol=1e-6)


def test_cross_entropy_non_finite_logits_give_non_finite_loss():
    loss, _ = softmax_cross_entropy(np.array([[np.nan, 0.0]]), [0])
    assert not np.isfinite(loss)


def test_cross_entropy_accepts_integer_valued_labels_and_logits():
    z, y, _, _ = _data()
    ref = softmax_cross_entropy(z, y)
    for yy in (y.astype(np.float64), y.astype(np.int32), list(y)):
        loss, d = softmax_cross_entropy(z, yy)
        assert loss == ref[0]
        np.testing.assert_array_equal(d, ref[1])
    loss, d = softmax_cross_entropy(np.array([[1, 2], [3, 4]]), [0, 1])
    assert d.dtype == np.float64 and np.isfinite(loss)


def test_cross_entropy_zero_total_weight():
    z, y, _, _ = _data()
    loss, d = softmax_cross_entropy(z, y, sample_weight=np.zeros(len(y)))
    assert loss == 0.0 and not d.any()
    loss, d = softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert loss == 0.0 and d.shape == (0, 3)


def test_cross_entropy_zero_weight_sample_does_not_matter():
    z, y, sw, _ = _data()
    sw[2] = 0.0
    loss, d = softmax_cross_entropy(z, y, sample_weight=sw)
    keep = np.arange(len(y)) != 2
    loss2, d2 = softmax_cross_entropy(z[keep], y[keep], sample_weight=sw[keep])
    assert loss == pytest.approx(loss2, rel=1e-14)
    assert not d[2].any()
    np.testing.assert_allclose(d[keep], d2, rtol=1e-14)


@pytest.mark.parametrize("kwargs,match", [
    (dict(y=[0, 1, 5]), r"label 5 at index 2.*\[0, 4\)"),
    (dict(y=[0, -1, 2]), r"label -1 at index 1"),
    (dict(y=[0, 1.5, 2]), r"integer class indices.*1\.5"),
    (dict(y=["a", "b", "c"]), r"integer class indices"),
    (dict(y=[0, 1]), r"y has shape \(2,\).*\(3,\)"),
    (dict(sample_weight=[1.0, -0.5, 1.0]), r"sample_weight.*-0\.5.*index 1"),
    (dict(sample_weight=[1.0, np.nan, 1.0]), r"sample_weight.*nan"),
    (dict(sample_weight=[1.0, 1.0]), r"sample_weight has shape \(2,\)"),
    (dict(class_weight=[1.0, 1.0, -2.0, 1.0]), r"class_weight.*-2\.0"),
    (dict(class_weight=[1.0, 1.0]), r"class_weight has shape \(2,\).*4 classes"),
    (dict(logits=np.zeros(3)), r"logits must have shape \(n_samples, n_classes\)"),
])
def test_cross_entropy_bad_input(kwargs, match):
    args = dict(logits=np.zeros((3, 4)), y=[0, 1, 2])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        softmax_cross_entropy(**args)


# ---------------------------------------------------------------------------
# sequence_softmax_cross_entropy
# ---------------------------------------------------------------------------

def _seq_data(dtype=np.float64, seed=0, B=4, T=6, C=5):
    rng = np.random.default_rng(seed)
    z = (2.0 * rng.normal(size=(B, T, C))).astype(dtype)
    y = rng.integers(0, C, size=(B, T))
    lengths = np.array([6, 3, 0, 5])[:B]
    sw = rng.uniform(0.1, 2.0, size=B)
    cw = rng.uniform(0.2, 3.0, size=C)
    return z, y, lengths, sw, cw


def _mask(lengths, T):
    return np.arange(T)[None, :] < np.asarray(lengths)[:, None]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighting", WEIGHTING)
def test_sequence_ce_matches_flattened_real_steps(dtype, weighting):
    z, y, lengths, sw, cw = _seq_data(dtype)
    kw = {}
    if weighting in ("sample", "both"):
        kw["sample_weight"] = sw
    if weighting in ("class", "both"):
        kw["class_weight"] = cw
    loss, d = sequence_softmax_cross_entropy(z, y, lengths, **kw)
    assert d.dtype == dtype and d.shape == z.shape
    # direct: collect the real steps one by one
    zs, ys, ws = [], [], []
    for b in range(len(lengths)):
        for t in range(lengths[b]):
            zs.append(z[b, t])
            ys.append(y[b, t])
            w = kw.get("sample_weight", np.ones(len(lengths)))[b]
            if "class_weight" in kw:
                w *= cw[y[b, t]]
            ws.append(w)
    zs, ys, ws = np.array(zs), np.array(ys), np.array(ws)
    assert loss == pytest.approx(_direct_ce(zs, ys, ws), rel=1e-6 if dtype == np.float32 else 1e-13)
    _, d_flat = softmax_cross_entropy(zs, ys, sample_weight=ws)
    mask = _mask(lengths, z.shape[1])
    np.testing.assert_allclose(d[mask], d_flat, **_tol(dtype))
    assert not d[~mask].any()


def test_sequence_ce_padded_values_never_read():
    z, y, lengths, sw, cw = _seq_data()
    mask = _mask(lengths, z.shape[1])
    ref_loss, ref_d = sequence_softmax_cross_entropy(z, y, lengths, sample_weight=sw,
                                                     class_weight=cw)
    y_bad = y.copy()
    y_bad[~mask] = -1
    z_bad = z.copy()
    z_bad[~mask] = np.nan
    z_bad[0, -1] = z[0, -1]  # (sequence 0 is full length)
    for yy, zz in [(y_bad, z), (np.where(mask, y, 999), z), (y_bad, z_bad),
                   (np.where(mask, y, np.nan), np.where(mask[..., None], z, 1e30))]:
        loss, d = sequence_softmax_cross_entropy(zz, yy, lengths, sample_weight=sw,
                                                 class_weight=cw)
        assert loss == ref_loss
        np.testing.assert_array_equal(d, ref_d)
        assert np.all(np.isfinite(d))


def test_sequence_ce_finite_differences():
    z, y, lengths, sw, cw = _seq_data(B=3, T=4, C=3, seed=4)
    lengths = np.array([4, 2, 3])
    y[~_mask(lengths, 4)] = -1

    def f(x):
        return sequence_softmax_cross_entropy(x, y, lengths, sample_weight=sw, class_weight=cw)[0]

    _, d = sequence_softmax_cross_entropy(z, y, lengths, sample_weight=sw, class_weight=cw)
    fd = _fd_grad(f, z.copy())
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)
    assert not d[~_mask(lengths, 4)].any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("use_cw", [False, True])
def test_sequence_ce_matches_torch_ignore_index(dtype, use_cw):
    torch = pytest.importorskip("torch")
    z, y, lengths, _, cw = _seq_data(dtype)
    B, T, C = z.shape
    y_t = np.where(_mask(lengths, T), y, -100)
    kw = {"class_weight": cw} if use_cw else {}
    loss, d = sequence_softmax_cross_entropy(z, y_t, lengths, **kw)
    tz = torch.tensor(z, requires_grad=True)
    tw = torch.tensor(cw, dtype=tz.dtype) if use_cw else None
    tloss = torch.nn.functional.cross_entropy(
        tz.reshape(B * T, C), torch.from_numpy(y_t).reshape(-1), weight=tw, ignore_index=-100)
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=_tol(dtype)["rtol"])
    np.testing.assert_allclose(d, tz.grad.numpy(), **_tol(dtype))


def test_sequence_ce_full_lengths_and_per_step_weights():
    z, y, _, _, _ = _seq_data()
    B, T, C = z.shape
    lengths = np.full(B, T)
    loss, d = sequence_softmax_cross_entropy(z, y, lengths)
    loss2, d2 = softmax_cross_entropy(z.reshape(-1, C), y.reshape(-1))
    assert loss == pytest.approx(loss2, rel=1e-14)
    np.testing.assert_allclose(d, d2.reshape(B, T, C), rtol=1e-14)
    w = np.random.default_rng(0).uniform(0, 1, size=(B, T))
    loss, d = sequence_softmax_cross_entropy(z, y, lengths, sample_weight=w)
    loss2, d2 = softmax_cross_entropy(z.reshape(-1, C), y.reshape(-1), sample_weight=w.ravel())
    assert loss == pytest.approx(loss2, rel=1e-14)


def test_sequence_ce_stable_and_empty():
    z, y, lengths, _, _ = _seq_data(np.float32)
    loss, d = sequence_softmax_cross_entropy(z * np.float32(1e4), y, lengths)
    assert np.isfinite(loss) and np.all(np.isfinite(d))
    loss, d = sequence_softmax_cross_entropy(z, y, np.zeros(len(lengths), dtype=int))
    assert loss == 0.0 and not d.any()


@pytest.mark.parametrize("kwargs,match", [
    (dict(lengths=[6, 7, 0, 5]), r"lengths\[1\] = 7 is outside \[0, 6\]"),
    (dict(lengths=[6, -1, 0, 5]), r"lengths\[1\] = -1"),
    (dict(lengths=[6, 3, 0]), r"lengths has shape \(3,\)"),
    (dict(lengths=[6, 2.5, 0, 5]), r"lengths must be integers"),
    (dict(y=np.zeros((4, 5), dtype=int)), r"y has shape \(4, 5\)"),
    (dict(logits=np.zeros((4, 6))), r"logits must have shape \(batch, T, n_classes\)"),
    (dict(sample_weight=[1.0, -1.0, 1.0, 1.0]), r"sample_weight.*-1\.0"),
    (dict(class_weight=[1.0, 2.0]), r"class_weight has shape"),
])
def test_sequence_ce_bad_input(kwargs, match):
    z, y, lengths, _, _ = _seq_data()
    args = dict(logits=z, y=y, lengths=lengths)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sequence_softmax_cross_entropy(**args)


def test_sequence_ce_label_out_of_range_at_real_step():
    z, y, lengths, _, _ = _seq_data()
    y = y.copy()
    y[1, 2] = 5  # real step (length 3)
    with pytest.raises(ValueError, match=r"label 5 at index \(1, 2\).*\[0, 5\)"):
        sequence_softmax_cross_entropy(z, y, lengths)
    y[1, 2] = 0
    y[1, 3] = 5  # padded step: ignored
    sequence_softmax_cross_entropy(z, y, lengths)


# ---------------------------------------------------------------------------
# mean_squared_error
# ---------------------------------------------------------------------------

def _reg_data(dtype=np.float64, n=8, k=3, seed=0):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(n, k)).astype(dtype)
    y = rng.normal(size=(n, k))
    sw = rng.uniform(0.1, 2.0, size=n)
    return pred, y, sw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_mse_matches_direct_computation(dtype, weighted):
    pred, y, sw = _reg_data(dtype)
    n, k = pred.shape
    w = sw if weighted else np.ones(n)
    loss, d = mean_squared_error(pred, y, sample_weight=sw if weighted else None)
    assert isinstance(loss, float) and d.dtype == dtype and d.shape == pred.shape
    p64 = pred.astype(np.float64)
    expected = sum(w[i] * sum((p64[i, j] - y[i, j]) ** 2 for j in range(k)) / k
                   for i in range(n)) / w.sum()
    assert loss == pytest.approx(expected, rel=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(d, 2 * (p64 - y) * w[:, None] / (k * w.sum()), **_tol(dtype))


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_finite_differences(weighted):
    pred, y, sw = _reg_data(n=5, k=2, seed=3)
    kw = {"sample_weight": sw} if weighted else {}
    _, d = mean_squared_error(pred, y, **kw)
    fd = _fd_grad(lambda x: mean_squared_error(x, y, **kw)[0], pred.copy())
    np.testing.assert_allclose(d, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    pred, y, _ = _reg_data(dtype)
    y = y.astype(dtype)
    loss, d = mean_squared_error(pred, y)
    tp = torch.tensor(pred, requires_grad=True)
    tloss = torch.nn.functional.mse_loss(tp, torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=_tol(dtype)["rtol"])
    np.testing.assert_allclose(d, tp.grad.numpy(), **_tol(dtype))


@pytest.mark.parametrize("weighted", [False, True])
def test_mse_matches_sklearn_for_one_output(weighted):
    metrics = pytest.importorskip("sklearn.metrics")
    pred, y, sw = _reg_data(k=1)
    kw = {"sample_weight": sw} if weighted else {}
    loss, _ = mean_squared_error(pred, y, **kw)
    assert loss == pytest.approx(metrics.mean_squared_error(y, pred, **kw), rel=1e-13)
    # 1-D y against (n, 1) predictions, and 1-D both
    loss1, d1 = mean_squared_error(pred, y.ravel(), **kw)
    assert loss1 == loss and d1.shape == pred.shape
    loss2, d2 = mean_squared_error(pred.ravel(), y.ravel(), **kw)
    assert loss2 == pytest.approx(loss, rel=1e-14) and d2.shape == (len(pred),)


def test_mse_float32_pred_float64_target_stays_float32():
    pred, y, _ = _reg_data(np.float32)
    _, d = mean_squared_error(pred, y)
    assert d.dtype == np.float32


def test_mse_zero_weight_and_empty():
    pred, y, sw = _reg_data()
    loss, d = mean_squared_error(pred, y, sample_weight=np.zeros(len(y)))
    assert loss == 0.0 and not d.any()
    loss, d = mean_squared_error(np.zeros((0, 2)), np.zeros((0, 2)))
    assert loss == 0.0 and d.shape == (0, 2)


@pytest.mark.parametrize("kwargs,match", [
    (dict(y=np.zeros((8, 2))), r"y has shape \(8, 2\) but pred has shape \(8, 3\)"),
    (dict(y=np.zeros(8)), r"y has shape \(8,\)"),
    (dict(sample_weight=-np.ones(8)), r"sample_weight.*-1\.0"),
    (dict(sample_weight=np.ones(7)), r"sample_weight has shape \(7,\)"),
    (dict(y=np.full((8, 3), np.nan)), r"non-finite"),
    (dict(pred=np.zeros((8, 3, 1))), r"pred must have shape"),
])
def test_mse_bad_input(kwargs, match):
    pred, y, _ = _reg_data()
    args = dict(pred=pred, y=y)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        mean_squared_error(**args)


# ---------------------------------------------------------------------------
# blocked softmax cross-entropy: the threaded branch
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [2, 3])
def test_blocked_softmax_ce_threaded_equals_one_part(threads, monkeypatch):
    """N >= 1024 rows split over threads give the single-part loss and gradients (the head's
    gradients summed over the parts)."""
    import fastrnn._config as cfg
    from fastrnn.losses import PARALLEL_MIN_ROWS, blocked_softmax_cross_entropy

    rng = np.random.RandomState(0)
    N, F, V = 4 * PARALLEL_MIN_ROWS + 37, 6, 23
    h, W, b = rng.randn(N, F), rng.randn(V, F) * 0.3, rng.randn(V) * 0.1
    y = rng.randint(2, V, N)
    valid = rng.rand(N) > 0.1
    monkeypatch.setattr(cfg, "_num_threads", 1)
    one = blocked_softmax_cross_entropy(h, W, b, y, valid, excluded=(0, 1), block_rows=100)
    monkeypatch.setattr(cfg, "_num_threads", threads)
    calls = []
    import fastrnn.losses as losses_mod

    real = losses_mod.run_parts

    def spy(fn, args_list):
        calls.append(len(args_list))
        return real(fn, args_list)

    monkeypatch.setattr(losses_mod, "run_parts", spy)
    many = blocked_softmax_cross_entropy(h, W, b, y, valid, excluded=(0, 1), block_rows=100)
    assert calls == [threads], "the rows were split over the threads"
    assert many[0] == pytest.approx(one[0], rel=1e-12)
    for a, r in zip(many[1:], one[1:]):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)


def test_blocked_softmax_ce_of_a_large_vocabulary_equals_the_full_softmax():
    """Above 8,192 tokens a block keeps its 128 rows: loss and gradients equal the softmax of the
    whole (N, V) logits written out in float64."""
    from fastrnn.losses import blocked_softmax_cross_entropy

    rng = np.random.RandomState(3)
    N, F, V = 300, 5, 9000
    h, W, b = rng.randn(N, F), rng.randn(V, F) * 0.3, rng.randn(V) * 0.1
    y = rng.randint(0, V, N)
    loss, dh, dW, db = blocked_softmax_cross_entropy(h, W, b, y)
    z = h @ W.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(N), y])), rel=1e-12)
    g = p.copy()
    g[np.arange(N), y] -= 1.0
    g /= N
    np.testing.assert_allclose(dh, g @ W, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(dW, g.T @ h, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(db, g.sum(axis=0), rtol=1e-10, atol=1e-14)
