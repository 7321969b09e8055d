"""Tests for fastrnn.optim: optimisers, schedules, gradient clipping.

Each optimiser is checked against an independent scalar-loop reference written
here from the published update rules, and against torch.optim when torch is
installed.
"""

import copy
import math
import tracemalloc

import numpy as np
import pytest

from fastrnn.optim import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    ConstantLR,
    ExponentialLR,
    Optimizer,
    ReduceLROnPlateau,
    StepLR,
    clip_grad_norm,
    get_optimizer,
    global_norm,
)

DTYPES = [np.float32, np.float64]
CLASSES = {"sgd": SGD, "adagrad": AdaGrad, "adam": Adam, "adamw": AdamW}

CONFIGS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, weight_decay=0.05)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.05)),
    ("sgd", dict(lr=0.1, momentum=0.8, nesterov=True)),
    ("sgd", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("adagrad", dict(lr=0.1)),
    ("adagrad", dict(lr=0.1, eps=1e-6, initial_accumulator_value=0.1, weight_decay=0.05)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("adamw", dict(lr=0.01)),
    ("adamw", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
]
CONFIG_IDS = [f"{k}-{'-'.join(f'{a}={b}' for a, b in kw.items())}" for k, kw in CONFIGS]
N_STEPS = 7


# ---------------------------------------------------------------------------
# a small least-squares problem: 0.5 * mean ||X W^T + b - T||^2
# ---------------------------------------------------------------------------

def _problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(6, 4))
    T = rng.normal(size=(6, 3))
    params = {"W": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=3).astype(dtype)}

    def grad_fn(p):
        W = np.asarray(p["W"], dtype=np.float64)
        b = np.asarray(p["b"], dtype=np.float64)
        R = X @ W.T + b - T
        return {"W": (R.T @ X / len(X)).astype(dtype), "b": (R.sum(0) / len(X)).astype(dtype)}

    return params, grad_fn


# ---------------------------------------------------------------------------
# independent reference: one scalar at a time, Python floats, from the papers
# ---------------------------------------------------------------------------

def _ref_scalar_update(kind, hp, x, g, st, t):
    lr = hp.get("lr")
    wd = hp.get("weight_decay", 0.01 if kind == "adamw" else 0.0)
    if kind == "sgd":
        mu = hp.get("momentum", 0.0)
        g = g + wd * x
        if mu:
            st["buf"] = g if t == 1 else mu * st["buf"] + g
            d = g + mu * st["buf"] if hp.get("nesterov", False) else st["buf"]
        else:
            d = g
        return x - lr * d
    if kind == "adagrad":
        eps = hp.get("eps", 1e-10)
        g = g + wd * x
        st["sum"] = st.get("sum", hp.get("initial_accumulator_value", 0.0)) + g * g
        return x - lr * g / (math.sqrt(st["sum"]) + eps)
    if kind in ("adam", "adamw"):
        b1, b2 = hp.get("betas", (0.9, 0.999))
        eps = hp.get("eps", 1e-8)
        if kind == "adamw":
            x = x * (1.0 - lr * wd)
        else:
            g = g + wd * x
        st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
        st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
        m_hat = st["m"] / (1 - b1 ** t)
        v_hat = st["v"] / (1 - b2 ** t)
        return x - lr * m_hat / (math.sqrt(v_hat) + eps)
    raise AssertionError(kind)


def _reference_run(kind, hp, params0, grad_fn, n_steps):
    flat = {k: [float(v) for v in a.ravel()] for k, a in params0.items()}
    state = {k: [dict() for _ in v] for k, v in flat.items()}
    for t in range(1, n_steps + 1):
        arrays = {k: np.array(v).reshape(params0[k].shape) for k, v in flat.items()}
        grads = grad_fn(arrays)
        for k in flat:
            g = [float(v) for v in np.asarray(grads[k], dtype=np.float64).ravel()]
            for j in range(len(flat[k])):
                flat[k][j] = _ref_scalar_update(kind, hp, flat[k][j], g[j], state[k][j], t)
    return {k: np.array(v).reshape(params0[k].shape) for k, v in flat.items()}


def _run(opt, params, grad_fn, n_steps):
    for _ in range(n_steps):
        opt.step(params, grad_fn(params))
    return params


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# optimisers
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,hp", CONFIGS, ids=CONFIG_IDS)
def test_optimizer_matches_scalar_reference(kind, hp, dtype):
    params, grad_fn = _problem(dtype)
    params0 = copy.deepcopy(params)
    expected = _reference_run(kind, hp, params0, grad_fn, N_STEPS)
    W, b = params["W"], params["b"]
    opt = CLASSES[kind](**hp)
    _run(opt, params, grad_fn, N_STEPS)
    # updated in place: same objects, same dtype, values moved
    assert params["W"] is W and params["b"] is b
    assert W.dtype == dtype and b.dtype == dtype
    assert not np.allclose(W, params0["W"])
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], **_tol(dtype))
    for st in opt.state.values():
        assert st["step"] == N_STEPS
        for v in st.values():
            if isinstance(v, np.ndarray):
                assert v.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,hp", CONFIGS, ids=CONFIG_IDS)
def test_optimizer_matches_torch(kind, hp, dtype):
    torch = pytest.importorskip("torch")
    torch_cls = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
                 "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    params, grad_fn = _problem(dtype)
    tparams = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()}
    topt = torch_cls(list(tparams.values()), **hp)
    opt = CLASSES[kind](**hp)
    for _ in range(N_STEPS):
        tgrads = grad_fn({k: v.detach().numpy() for k, v in tparams.items()})
        for k, v in tparams.items():
            v.grad = torch.from_numpy(tgrads[k])
        topt.step()
        opt.step(params, grad_fn(params))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), **tol)


def test_lr_changes_between_steps_match_torch():
    torch = pytest.importorskip("torch")
    params, grad_fn = _problem(np.float64)
    tparams = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in params.items()}
    topt = torch.optim.Adam(list(tparams.values()), lr=0.05)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=2, gamma=0.5)
    opt = Adam(lr=0.05)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    for _epoch in range(6):
        for _ in range(3):
            tgrads = grad_fn({k: v.detach().numpy() for k, v in tparams.items()})
            for k, v in tparams.items():
                v.grad = torch.from_numpy(tgrads[k])
            topt.step()
            opt.step(params, grad_fn(params))
        tsched.step()
        sched.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-14)
    for k in params:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind,hp", CONFIGS, ids=CONFIG_IDS)
def test_step_does_not_modify_grads(kind, hp):
    params, grad_fn = _problem(np.float32)
    opt = CLASSES[kind](**hp)
    for _ in range(3):
        grads = grad_fn(params)
        saved = copy.deepcopy(grads)
        opt.step(params, grads)
        for k in grads:
            np.testing.assert_array_equal(grads[k], saved[k])


@pytest.mark.parametrize("kind,hp", CONFIGS, ids=CONFIG_IDS)
def test_step_allocates_nothing_after_warmup(kind, hp):
    rng = np.random.default_rng(1)
    n = 200_000  # 1.6 MB per float64 array
    params = {"w": rng.normal(size=n), "v": rng.normal(size=(100, 50))}
    grads = {"w": rng.normal(size=n), "v": rng.normal(size=(100, 50))}
    opt = CLASSES[kind](**hp)
    opt.step(params, grads)
    opt.step(params, grads)
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64_000, f"step allocated {peak} bytes"


@pytest.mark.parametrize("kind,hp", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_continues_identically(kind, hp):
    params, grad_fn = _problem(np.float64, seed=3)
    opt = CLASSES[kind](**hp)
    _run(opt, params, grad_fn, 3)
    sd = opt.state_dict()
    sd_copy = copy.deepcopy(sd)
    at_save = copy.deepcopy(params)
    _run(opt, params, grad_fn, 4)

    # saving took a deep copy: stepping on did not change it
    for name, st in sd["state"].items():
        for key, v in st.items():
            np.testing.assert_array_equal(v, sd_copy["state"][name][key])
    assert sd["step_count"] == 3 and sd["lr"] == hp["lr"]

    opt2 = CLASSES[kind](**hp)
    opt2.lr = 123.0
    opt2.load_state_dict(sd)
    assert opt2.lr == hp["lr"] and opt2.step_count == 3
    params2 = copy.deepcopy(at_save)
    _run(opt2, params2, grad_fn, 4)
    for k in params:
        np.testing.assert_array_equal(params2[k], params[k])
    # loading copied the arrays in: opt2's stepping did not touch sd
    for name, st in sd["state"].items():
        for key, v in st.items():
            np.testing.assert_array_equal(v, sd_copy["state"][name][key])


def test_state_dict_fresh_optimizer_differs_from_restored():
    # guards the round-trip test: without the state the continuation differs
    params, grad_fn = _problem(np.float64, seed=3)
    opt = Adam(lr=0.01)
    _run(opt, params, grad_fn, 3)
    at_save = copy.deepcopy(params)
    _run(opt, params, grad_fn, 4)
    params2 = copy.deepcopy(at_save)
    _run(Adam(lr=0.01), params2, grad_fn, 4)
    assert not np.allclose(params2["W"], params["W"], rtol=1e-8, atol=0)


def test_load_state_dict_from_other_class_raises():
    params, grad_fn = _problem(np.float64)
    opt = SGD(lr=0.1, momentum=0.9)
    _run(opt, params, grad_fn, 2)
    with pytest.raises(ValueError, match="SGD"):
        Adam().load_state_dict(opt.state_dict())


def test_state_dtype_follows_parameter_after_loading():
    params64, grad_fn64 = _problem(np.float64)
    opt = Adam(lr=0.01)
    _run(opt, params64, grad_fn64, 2)
    params32, grad_fn32 = _problem(np.float32)
    opt32 = Adam(lr=0.01)
    opt32.load_state_dict(opt.state_dict())
    _run(opt32, params32, grad_fn32, 1)
    assert params32["W"].dtype == np.float32
    assert opt32.state["W"]["exp_avg"].dtype == np.float32


def test_float32_parameters_with_float64_grads_stay_float32():
    params, _ = _problem(np.float32)
    _, grad_fn64 = _problem(np.float64)
    for kind, hp in CONFIGS:
        p = copy.deepcopy(params)
        opt = CLASSES[kind](**hp)
        _run(opt, p, grad_fn64, 2)
        assert p["W"].dtype == np.float32 and p["b"].dtype == np.float32


@pytest.mark.parametrize("bad", ["missing", "extra", "shape"])
def test_step_rejects_mismatched_params_and_grads(bad):
    params, grad_fn = _problem(np.float64)
    grads = grad_fn(params)
    if bad == "missing":
        del grads["b"]
        match = "same keys"
    elif bad == "extra":
        grads["c"] = np.zeros(2)
        match = "same keys"
    else:
        grads["b"] = np.zeros(4)
        match = r"shape \(4,\)"
    with pytest.raises(ValueError, match=match):
        SGD(lr=0.1).step(params, grads)


def test_step_rejects_integer_and_readonly_parameters():
    with pytest.raises(ValueError, match="floating-point"):
        SGD().step({"w": np.arange(3)}, {"w": np.ones(3)})
    w = np.ones(3)
    w.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD().step({"w": w}, {"w": np.ones(3)})


@pytest.mark.parametrize("factory", [
    lambda: SGD(lr=-1.0),
    lambda: SGD(lr=float("nan")),
    lambda: SGD(momentum=1.5),
    lambda: SGD(nesterov=True),
    lambda: SGD(weight_decay=-0.1),
    lambda: AdaGrad(eps=-1.0),
    lambda: Adam(betas=(0.9, 1.0)),
    lambda: Adam(betas=0.9),
    lambda: AdamW(eps=-1e-8),
])
def test_bad_hyperparameters_raise(factory):
    with pytest.raises(ValueError):
        factory()


def test_get_optimizer():
    assert type(get_optimizer("sgd")) is SGD and get_optimizer("sgd").momentum == 0.0
    mom = get_optimizer("momentum", lr=0.3)
    assert type(mom) is SGD and mom.momentum == 0.9 and not mom.nesterov and mom.lr == 0.3
    nes = get_optimizer("Nesterov")
    assert nes.nesterov and nes.momentum == 0.9
    assert get_optimizer("momentum", momentum=0.5).momentum == 0.5
    assert type(get_optimizer("adagrad")) is AdaGrad
    assert type(get_optimizer("adam", lr=0.1)) is Adam and get_optimizer("adam", lr=0.1).lr == 0.1
    adamw = get_optimizer("adamw")
    assert type(adamw) is AdamW and adamw.weight_decay == 0.01
    inst = Adam(lr=0.2)
    assert get_optimizer(inst) is inst
    assert isinstance(get_optimizer(AdaGrad, lr=0.5), AdaGrad)
    with pytest.raises(ValueError) as exc:
        get_optimizer("rmsprop")
    for name in ("sgd", "momentum", "nesterov", "adagrad", "adam", "adamw"):
        assert name in str(exc.value)
    assert "rmsprop" in str(exc.value)
    with pytest.raises(TypeError):
        get_optimizer(3)


def test_optimizer_base_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer(0.1).step({"w": np.ones(2)}, {"w": np.ones(2)})


# ---------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------

def _lr_sequence(sched, opt, n, metrics=None):
    out = []
    for e in range(n):
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[e])
        out.append(opt.lr)
    return out


def test_step_lr_closed_form():
    opt = SGD(lr=0.8)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    seq = _lr_sequence(sched, opt, 10)
    expected = [0.8 * 0.5 ** (e // 3) for e in range(1, 11)]
    np.testing.assert_allclose(seq, expected, rtol=1e-14)
    assert sched.get_last_lr() == opt.lr


def test_exponential_and_constant_closed_form():
    opt = SGD(lr=0.5)
    seq = _lr_sequence(ExponentialLR(opt, gamma=0.9), opt, 6)
    np.testing.assert_allclose(seq, [0.5 * 0.9 ** e for e in range(1, 7)], rtol=1e-14)
    opt = SGD(lr=0.5)
    seq = [opt.lr] + _lr_sequence(ConstantLR(opt), opt, 5)
    assert seq == [0.5] * 6
    opt = SGD(lr=0.5)
    sched = ConstantLR(opt, factor=0.5, total_iters=2)
    seq = [opt.lr] + _lr_sequence(sched, opt, 4)
    np.testing.assert_allclose(seq, [0.25, 0.25, 0.5, 0.5, 0.5])


def test_reduce_on_plateau_by_hand():
    opt = SGD(lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=2)
    # best 1.0, 0.9; then 0.89995 is not a relative improvement of 1e-4
    metrics = [1.0, 0.9, 0.89995, 0.95, 0.9, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    seq = _lr_sequence(sched, opt, len(metrics), metrics)
    assert seq == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    opt = SGD(lr=1.0)
    sched = ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, min_lr=0.05)
    seq = _lr_sequence(sched, opt, 4, [0.5, 0.4, 0.4, 0.6])
    assert seq == pytest.approx([1.0, 0.1, 0.05, 0.05])
    # the threshold is relative: 999.95 is not 1e-4 better than 1000, 999.0 is
    opt = SGD(lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0)
    assert _lr_sequence(sched, opt, 3, [1000.0, 999.95, 999.0]) == [1.0, 0.5, 0.5]
    opt = SGD(lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold_mode="abs")
    assert _lr_sequence(sched, opt, 3, [1000.0, 999.95, 999.0]) == [1.0, 1.0, 1.0]


SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1, gamma=0.9)),
    ("ExponentialLR", dict(gamma=0.8)),
    ("ConstantLR", dict(factor=0.25, total_iters=4)),
    ("ConstantLR", dict(factor=1.0, total_iters=0)),
]


@pytest.mark.parametrize("name,kw", SCHEDULES)
def test_schedules_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    ours = {"StepLR": StepLR, "ExponentialLR": ExponentialLR, "ConstantLR": ConstantLR}[name]
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    opt = SGD(lr=0.3)
    sched = ours(opt, **kw)
    assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-14)
    for _ in range(15):
        topt.step()
        tsched.step()
        sched.step()
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-14)


PLATEAU = [
    dict(patience=2, factor=0.5),
    dict(patience=0, factor=0.3, threshold=0.05),
    dict(mode="max", patience=1, factor=0.5),
    dict(patience=1, factor=0.5, threshold_mode="abs", threshold=0.01),
    dict(patience=1, factor=0.5, cooldown=2, min_lr=0.01),
]


@pytest.mark.parametrize("scale", [1.0, 1000.0])
@pytest.mark.parametrize("kw", PLATEAU)
def test_reduce_on_plateau_matches_torch(kw, scale):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    metrics = scale * np.concatenate([
        np.linspace(2.0, 1.0, 5), 1.0 + 0.01 * rng.random(10), np.linspace(1.0, 0.5, 5),
        0.5 - 1e-6 * np.arange(10), [float("nan")] * 3])
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    opt = SGD(lr=0.3)
    sched = ReduceLROnPlateau(opt, **kw)
    changed = False
    for m in metrics:
        topt.step()
        tsched.step(float(m))
        sched.step(float(m))
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-14)
        changed |= opt.lr != 0.3
    assert changed


@pytest.mark.parametrize("make", [
    lambda o: StepLR(o, step_size=2, gamma=0.5),
    lambda o: ExponentialLR(o, gamma=0.9),
    lambda o: ConstantLR(o, factor=0.5, total_iters=7),
    lambda o: ReduceLROnPlateau(o, patience=1, factor=0.5, cooldown=1),
])
def test_schedule_state_dict_round_trip(make):
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    is_plateau = isinstance(make(SGD(lr=1.0)), ReduceLROnPlateau)

    def advance(sched, opt, ms):
        return _lr_sequence(sched, opt, len(ms), ms if is_plateau else None)

    opt = SGD(lr=1.0)
    sched = make(opt)
    advance(sched, opt, metrics[:5])
    osd, ssd = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in ssd
    first = advance(sched, opt, metrics[5:])

    opt2 = SGD(lr=1.0)
    sched2 = make(opt2)
    opt2.load_state_dict(osd)
    sched2.load_state_dict(ssd)
    second = advance(sched2, opt2, metrics[5:])
    assert first == second
    assert sched2.optimizer is opt2


def test_schedule_bad_arguments_raise():
    with pytest.raises(ValueError):
        StepLR(SGD(), step_size=0)
    with pytest.raises(ValueError):
        ExponentialLR(SGD(), gamma=0.0)
    with pytest.raises(ValueError):
        ReduceLROnPlateau(SGD(), mode="lowest")
    with pytest.raises(ValueError):
        ReduceLROnPlateau(SGD(), factor=1.0)
    with pytest.raises(ValueError):
        StepLR(object(), step_size=1)


# ---------------------------------------------------------------------------
# global norm and clipping
# ---------------------------------------------------------------------------

def _random_grads(dtype, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return {"a": (scale * rng.normal(size=(7, 5))).astype(dtype),
            "b": (scale * rng.normal(size=11)).astype(dtype),
            "c": (scale * rng.normal(size=(2, 3, 4))).astype(dtype)}


def _norm64(grads):
    return math.sqrt(sum(float(np.sum(np.asarray(g, dtype=np.float64) ** 2))
                         for g in grads.values()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_norm_in_float64(dtype):
    grads = _random_grads(dtype)
    assert global_norm(grads) == pytest.approx(_norm64(grads), rel=1e-13)
    assert global_norm(list(grads.values())) == pytest.approx(_norm64(grads), rel=1e-13)
    big = {"x": np.full(1_000_003, 0.1, dtype=dtype)}
    assert global_norm(big) == pytest.approx(_norm64(big), rel=1e-10)
    assert global_norm({}) == 0.0


def test_global_norm_survives_overflow_of_squares():
    grads = {"a": np.full(4, 1e200), "b": np.array([-1e200])}
    assert global_norm(grads) == pytest.approx(1e200 * math.sqrt(5), rel=1e-13)


def test_clip_exact_threshold_and_direction():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}
    norm = clip_grad_norm(grads, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(grads["a"], [0.6], rtol=1e-15)
    np.testing.assert_allclose(grads["b"], [[0.8]], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_scales_to_threshold(dtype):
    grads = _random_grads(dtype, scale=10.0)
    before = copy.deepcopy(grads)
    objects = {k: v for k, v in grads.items()}
    pre = _norm64(grads)
    max_norm = 0.37 * pre
    norm = clip_grad_norm(grads, max_norm)
    assert norm == pytest.approx(pre, rel=1e-13)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    assert global_norm(grads) == pytest.approx(max_norm, rel=rtol)
    for k in grads:
        assert grads[k] is objects[k] and grads[k].dtype == dtype
        np.testing.assert_allclose(grads[k], before[k] * (max_norm / pre), rtol=rtol * 10)


@pytest.mark.parametrize("max_norm", [None, math.inf, 1e6, "equal"])
def test_clip_leaves_small_gradients_unchanged(max_norm):
    grads = _random_grads(np.float32)
    before = copy.deepcopy(grads)
    pre = _norm64(grads)
    if max_norm == "equal":
        max_norm = global_norm(grads)
    assert clip_grad_norm(grads, max_norm) == pytest.approx(pre, rel=1e-13)
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_clip_leaves_non_finite_gradients_alone(bad):
    grads = _random_grads(np.float64, scale=100.0)
    grads["b"][3] = bad
    before = copy.deepcopy(grads)
    norm = clip_grad_norm(grads, 1.0)
    if np.isnan(bad):
        assert math.isnan(norm)
    else:
        assert norm == math.inf
    assert math.isnan(global_norm(before)) == bool(np.isnan(bad))
    for k in grads:
        np.testing.assert_array_equal(grads[k], before[k])


def test_global_norm_nan_wins_over_inf():
    assert math.isnan(global_norm({"a": np.array([np.inf]), "b": np.array([np.nan])}))


@pytest.mark.parametrize("bad", [0.0, -1.0, "5", True])
def test_clip_rejects_bad_max_norm(bad):
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(_random_grads(np.float64), bad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    grads = _random_grads(dtype, scale=3.0)
    tparams = []
    for g in grads.values():
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
        p.grad = torch.from_numpy(g.copy())
        tparams.append(p)
    tnorm = float(torch.nn.utils.clip_grad_norm_(tparams, max_norm=2.0))
    norm = clip_grad_norm(grads, 2.0)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert norm == pytest.approx(tnorm, rel=rtol)
    for g, p in zip(grads.values(), tparams):
        # torch divides by (norm + 1e-6); ours is exact
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-6)
