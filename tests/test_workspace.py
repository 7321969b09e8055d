"""Buffers recycled between the calls of a layer (fastrnn._workspace): a pool hands out only arrays
that nothing else refers to, and a layer that writes over its previous cache and backward scratch
gives, bit for bit, what a twin that keeps every cache (and so never recycles) gives."""

import copy
import pickle

import numpy as np
import pytest

import fastrnn._config as cfg
from fastrnn import _workspace as ws
from fastrnn.nn import GRU, LSTM, RNN

pytest.importorskip("numba")


def _addr(a):
    return a.__array_interface__["data"][0]


# ---------------------------------------------------------------- the pool
def _full(shape, value, dtype=np.float32):
    """An array as the drivers make them (aligned, in a buffer of its own), filled."""
    a = ws.aligned_empty(shape, dtype)
    a.fill(value)
    return a


def _aligned(a):
    return _addr(a) % ws.ALIGN == 0


def test_pool_hands_out_only_arrays_nothing_else_refers_to():
    free = _full((512, 1024), 3.0)  # 2 MiB
    held = _full((512, 1024), 4.0)
    viewed = _full((512, 1024), 5.0)
    addr = {k: _addr(a) for k, a in (("free", free), ("held", held), ("viewed", viewed))}
    keep_held, keep_view = held, viewed[10:20]
    arrays = ws.arrays_of([free, held, viewed])  # the buffers that own them
    del free, held, viewed
    pool = ws.Pool(arrays)
    assert len(pool) == 1  # the other two are still referred to (the array, a view of it)
    with ws.using(pool):
        a = ws.empty((512, 1024), np.float32)
        b = ws.empty((512, 1024), np.float32)
    assert _addr(a) == addr["free"] and _addr(b) not in addr.values()
    assert _aligned(a) and _aligned(b)
    assert np.all(keep_held == 4.0) and np.all(keep_view == 5.0)


def test_pool_sizes_dtypes_alignment_and_zeros():
    big = _full(1 << 20, 1.0)  # 4 MiB
    addr = _addr(big)
    unaligned = np.ones((1 << 18) + 4, np.float64)[1:]  # numpy's memory, off a 64-byte boundary
    arrays = ws.arrays_of([big, unaligned])
    del big, unaligned
    pool = ws.Pool(arrays)
    assert len(pool) == 2
    with ws.using(pool):
        too_big = ws.empty((2, 1 << 20), np.float32)  # more than the free array holds
        too_small = ws.empty((1 << 18,), np.float32)  # a quarter of it: not taken
        fits = ws.zeros((600, 1024), np.float32)  # 0.6 of it, zeroed although it held ones
        small = ws.empty((10,), np.float32)  # under MIN_BYTES: never pooled
        # the float64 array serves any dtype, from its first 64-byte boundary on: 2 MiB fit in it
        # only if the rounding to that boundary leaves room
        root = pool._free[0]
        room = root.nbytes - (-_addr(root) % ws.ALIGN)
        other = ws.empty(room // 2, np.int16)
    assert _addr(fits) == addr and fits.shape == (600, 1024) and np.all(fits == 0)
    assert fits.flags.c_contiguous and fits.dtype == np.float32
    assert all(_addr(a) != addr for a in (too_big, too_small, small))
    assert ws._root(other) is root and other.dtype == np.int16 and _addr(other) >= _addr(root)
    assert all(_aligned(a) for a in (too_big, too_small, fits, small, other))
    assert len(pool) == 0


def test_pool_leaves_an_array_without_room_for_the_alignment():
    exact = np.ones((512, 1024), np.float32)  # numpy's memory: 16 bytes past a 64-byte boundary
    if _aligned(exact):  # numpy happened to align it: make it not
        exact = np.ones(512 * 1024 + 1, np.float32)[1:].reshape(512, 1024).copy()
    assert not _aligned(exact)
    addr = _addr(exact)
    arrays = [exact]
    del exact
    pool = ws.Pool(arrays)
    with ws.using(pool):
        a = ws.empty((512, 1024), np.float32)
    assert _addr(a) != addr and _aligned(a) and len(pool) == 1


def test_pool_reclaims_arrays_dropped_during_the_call_and_keeps_the_scratch():
    pool = ws.Pool([])
    with ws.using(pool):
        a = ws.empty((512, 1024), np.float32)
        first = _addr(a)
        del a
        b = ws.empty((512, 1024), np.float32)  # the first one again: nothing refers to it
        assert _addr(b) == first
        c = ws.empty((512, 1024), np.float32)  # b is still held: a new array
        second = _addr(c)
        assert second != first
    del c
    kept = pool.free_after()  # c's buffer, not b's, which is still held
    assert len(kept) == 1 and len(pool) == 0
    assert _addr(kept[0]) <= second < _addr(kept[0]) + ws.ALIGN
    assert b.shape == (512, 1024)


def test_without_a_pool_the_functions_are_numpy_s_aligned():
    a = ws.empty((3, 4), np.float32)
    z = ws.zeros((1024, 1024), np.float32)
    c = ws.copy(np.arange(6.0).reshape(2, 3)[:, ::-1])
    e = ws.aligned_empty((0, 5), np.float64)
    assert a.shape == (3, 4) and np.all(z == 0) and c.flags.c_contiguous
    assert e.shape == (0, 5) and e.dtype == np.float64
    np.testing.assert_array_equal(c, [[2, 1, 0], [5, 4, 3]])
    for dtype in (np.float32, np.float64, np.uint16, np.int8):
        for n in (1, 7, 1000, 1 << 20):
            x = ws.aligned_empty(n, dtype)
            assert _aligned(x) and x.shape == (n,) and x.dtype == dtype and x.flags.writeable
            assert _aligned(ws.aligned_zeros((n, 1), dtype))
    assert all(_aligned(x) for x in (a, z, c))


def test_arrays_of_finds_owners_once():
    a = np.zeros((512, 1024), np.float32)
    b = np.zeros((512, 1024), np.float32)
    small = np.zeros(10, np.float32)
    ro = np.zeros((512, 1024), np.float32)
    ro.flags.writeable = False
    cache = ("numba", None, ("fast", dict(units=[dict(x=a, y=a[1:]), dict(x=b.T, s=small)],
                                          ro=[ro])))
    found = ws.arrays_of(cache)
    assert sorted(map(id, found)) == sorted([id(a), id(b)])


# ---------------------------------------------------------------- layers: a twin never recycling
CELLS = {
    "lstm": (LSTM, {}),
    "lstm-peephole": (LSTM, dict(peephole=True)),
    "gru": (GRU, {}),
    "gru-v1": (GRU, dict(reset_after=False)),
    "rnn": (RNN, {}),
}
SHAPES = {
    "single": {},
    "stacked-bidir": dict(num_layers=2, bidirectional=True),
    "dropouts": dict(num_layers=2, dropout=0.3, recurrent_dropout=0.4),
}


@pytest.fixture
def pool_everything(monkeypatch):
    """Pool arrays of every size, so that small layers take every path of the recycling."""
    monkeypatch.setattr(ws, "MIN_BYTES", 0)


@pytest.fixture(params=[1, 2], ids=["one-part", "two-parts"])
def parts(request, monkeypatch):
    if request.param == 2:
        monkeypatch.setattr(cfg, "MIN_ROWS_PER_THREAD", 2)
        monkeypatch.setattr(cfg, "_num_threads", 2)
    return request.param


def _make(name, seed=0, I=6, H=12, **kw):  # noqa: E741
    cls, extra = CELLS[name]
    layer = cls(I, H, backend="numba", random_state=seed, **extra, **kw)
    rng = np.random.RandomState(seed + 1)
    for k, v in layer.params.items():
        if k.startswith(("bias", "weight_peephole")):
            v[...] = rng.uniform(-0.5, 0.5, v.shape)
    return layer


def _calls(B, T, I, D, H, seed=3):  # noqa: E741
    """Batches for one layer: all full, ragged with the same longest length, ragged and shorter
    (the buffers of the previous call are larger than needed), full again; NaN in the padding."""
    rng = np.random.RandomState(seed)
    out = []
    for kind in ("full", "ragged", "short", "full"):
        if kind == "full":
            lengths = np.full(B, T)
        else:
            top = T if kind == "ragged" else int(0.7 * T)
            lengths = rng.randint(1, top + 1, B)
            lengths[rng.randint(B)] = top
        X = rng.randn(B, T, I).astype(np.float32)
        for b in range(B):
            X[b, lengths[b]:] = np.nan
        out.append((X, lengths, rng.randn(B, T, D * H).astype(np.float32)))
    return out


def _roots(layer):
    return {_addr(a) for a in ws.arrays_of(layer._cache)}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", CELLS)
def test_recycling_layer_matches_a_twin_that_keeps_every_cache(name, shape, parts,
                                                               pool_everything):
    B, T, I, H = 9, 11, 6, 12  # noqa: E741
    layer, twin = _make(name, **SHAPES[shape]), _make(name, **SHAPES[shape])
    kept = []  # the twin's caches, held: its forwards never write over them
    results = []
    recycled = 0
    for X, lengths, R in _calls(B, T, I, layer.num_directions, H):
        before = _roots(layer) if layer._cache is not None else set()
        got = layer.forward(X, lengths)
        if before & _roots(layer):
            recycled += 1
        dX = layer.backward(R)
        want = twin.forward(X, lengths)
        kept.append(twin._cache)
        dXw = twin.backward(R)
        # the twin's backward scratch is never an array of a cache it holds
        held = {_addr(a) for c in kept for a in ws.arrays_of(c)}
        assert not ({_addr(a) for a in twin._scratch} & held)
        results.append((got, dX, {k: v.copy() for k, v in layer.grads.items()}, layer.grad_h0,
                        want, dXw, {k: v.copy() for k, v in twin.grads.items()}, twin.grad_h0))
    assert recycled == 3  # every forward after the first wrote over the previous cache
    for got, dX, g, gh0, want, dXw, gw, gh0w in results:
        np.testing.assert_array_equal(got[0], want[0])
        for a, b in zip(*((np.asarray(r[1]),) if not layer.has_cell else r[1]
                          for r in (got, want))):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(dX, dXw)
        for k in gw:
            np.testing.assert_array_equal(g[k], gw[k], err_msg=k)
        for a, b in zip(*((x,) if not layer.has_cell else x for x in (gh0, gh0w))):
            np.testing.assert_array_equal(a, b)


def test_a_held_cache_keeps_its_values_and_its_gradients(pool_everything):
    """As a decoder run step by step does: keep the cache of one forward, run others, put it back
    and back-propagate through it: the gradients are those of a fresh layer."""
    B, T, I, H = 7, 10, 6, 12  # noqa: E741
    (X1, L1, R1), (X2, L2, R2), (X3, L3, _), _ = _calls(B, T, I, 2, H)
    layer = _make("lstm", bidirectional=True, num_layers=2)
    Y1, _ = layer.forward(X1, L1)
    saved = layer._cache
    snapshot = [a.copy() for a in ws.arrays_of(saved)]
    layer.forward(X2, L2)
    layer.backward(R2)
    layer.forward(X3, L3)
    assert not ({_addr(a) for a in ws.arrays_of(saved)} & _roots(layer))
    for a, b in zip(ws.arrays_of(saved), snapshot):
        np.testing.assert_array_equal(a, b)
    layer._cache = saved
    dX = layer.backward(R1)
    fresh = _make("lstm", bidirectional=True, num_layers=2)
    Y1f, _ = fresh.forward(X1, L1)
    dXf = fresh.backward(R1)
    np.testing.assert_array_equal(Y1, Y1f)
    np.testing.assert_array_equal(dX, dXf)
    for k in fresh.grads:
        np.testing.assert_array_equal(layer.grads[k], fresh.grads[k], err_msg=k)


def test_outputs_returned_are_never_written_over(pool_everything):
    B, T, I, H = 5, 8, 6, 12  # noqa: E741
    calls = _calls(B, T, I, 1, H)
    layer = _make("gru", num_layers=2)
    kept = []
    for X, lengths, R in calls:
        Y, hn = layer.forward(X, lengths)
        dX = layer.backward(R)
        kept.append([a.copy() for a in (Y, hn, dX)] + [(Y, hn, dX)])
    for *copies, (Y, hn, dX) in kept:
        for a, b in zip(copies, (Y, hn, dX)):
            np.testing.assert_array_equal(a, b)


def test_backward_twice_through_one_cache(pool_everything):
    X, lengths, R = _calls(6, 9, 6, 1, 12)[1]
    layer = _make("lstm", num_layers=2)
    layer.forward(X, lengths)
    dX1 = layer.backward(R)
    g1 = {k: v.copy() for k, v in layer.grads.items()}
    assert layer._scratch  # the first backward's scratch, kept for the next one
    dX2 = layer.backward(R)
    np.testing.assert_array_equal(dX1, dX2)
    for k in g1:
        np.testing.assert_array_equal(g1[k], layer.grads[k], err_msg=k)


def test_scratch_is_not_state():
    X, lengths, R = _calls(32, 300, 128, 1, 256)[1]
    layer = LSTM(128, 256, backend="numba", random_state=0)
    layer.forward(X, lengths)
    layer.backward(R)
    assert layer._scratch and all(a.nbytes >= ws.MIN_BYTES for a in layer._scratch)
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert not getattr(other, "_scratch", None)
        dX = other.backward(R)  # the cache travels, the scratch does not
        assert other._scratch and dX.shape == X.shape
    layer.eval()
    assert layer._scratch is None


def test_real_sizes_recycle_and_match_a_fresh_layer():
    """At the default threshold: a batch of the ragged benchmark's kind, twice."""
    X, lengths, R = _calls(8, 400, 64, 1, 128)[1]
    layer = LSTM(64, 128, backend="numba", random_state=0)
    layer.forward(X, lengths)
    layer.backward(R)
    before, scratch = _roots(layer), {_addr(a) for a in layer._scratch}
    Y, (hn, cn) = layer.forward(X, lengths)
    assert before & _roots(layer)
    dX = layer.backward(R)
    assert scratch & {_addr(a) for a in layer._scratch}
    fresh = LSTM(64, 128, backend="numba", random_state=0)
    Yf, (hnf, cnf) = fresh.forward(X, lengths)
    dXf = fresh.backward(R)
    for a, b in ((Y, Yf), (hn, hnf), (cn, cnf), (dX, dXf)):
        np.testing.assert_array_equal(a, b)
    for k in fresh.grads:
        np.testing.assert_array_equal(layer.grads[k], fresh.grads[k], err_msg=k)


# ---------------------------------------------------------------- what the kernels are given
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fast_kernels_get_aligned_operands(cell, monkeypatch):
    """The packed weights, gates, states, outputs, gradients and packing buffers that the fast
    driver hands its kernels start on a cache line (the products lose 20-30 % off one)."""
    from fastrnn.kernels import _fastdriver as fd

    calls = []
    real = fd.run_parts

    def spy(fn, args):
        calls.append((fn.__name__, args))
        return real(fn, args)

    monkeypatch.setattr(fd, "run_parts", spy)
    cls, kw = CELLS[cell]
    layer = cls(24, 40, num_layers=2, bidirectional=True, backend="numba", random_state=0, **kw)
    X = np.random.default_rng(0).normal(size=(5, 7, 24)).astype(np.float32)
    Y, _ = layer.forward(X, lengths=[7, 3, 5, 7, 2])
    dX = layer.backward(np.ones_like(Y))
    arrays = [(name, i, a) for name, args in calls for part in args for i, a in enumerate(part)
              if isinstance(a, np.ndarray) and a.dtype in (np.float32, np.uint16) and a.size > 0
              and a.flags.c_contiguous and ws._root(a).size >= 64]
    assert {name for name, _, _ in arrays} >= {f"{cell}_fast_forward", f"{cell}_fast_backward"}
    off = [(name, i, _addr(a) % ws.ALIGN) for name, i, a in arrays if not _aligned(a)]
    assert not off, off
    assert _aligned(Y) and _aligned(dX)
    assert all(_aligned(v) for v in layer.params.values())
    assert all(_aligned(v) for v in layer.grads.values())
