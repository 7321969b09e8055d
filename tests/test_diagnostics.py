"""fastrnn.diagnostics: gradient flow against finite differences, gate statistics against a
direct computation, memory length, the plots (headless) and the command line."""

import numpy as np
import pytest

from fastrnn.diagnostics import gradient_flow
from fastrnn.nn import GRU, LSTM, RNN, IndRNN, MinGRU, MinLSTM

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mingru": MinGRU, "minlstm": MinLSTM,
         "indrnn": IndRNN}


# ------------------------------------------------------------------ an independent forward
def _direction(layer, ly, d):
    """A one-layer unidirectional float64 copy of direction ``d`` of layer ``ly``."""
    sfx = f"_l{ly}" + ("_reverse" if d else "")
    size = layer.input_size if ly == 0 else layer.num_directions * layer.hidden_size
    kw = {"reset_after": layer.reset_after} if isinstance(layer, GRU) else {}
    if isinstance(layer, RNN):
        kw["nonlinearity"] = layer.nonlinearity
    if isinstance(layer, LSTM):
        kw["peephole"] = layer.peephole
        kw.update(zip(("input_gate", "forget_gate", "output_gate"), map(bool, layer.gates_on)))
    u = type(layer)(size, layer.hidden_size, dtype=np.float64, backend="numpy", **kw)
    u.load_state_dict({k: layer.params[k.replace("_l0", sfx)] for k in u.params})
    return u


def _run_direction(u, X, perturb=None, h0=None):
    """Outputs (T, H) of ``u`` reading ``X`` (T, I) in order from the state ``h0`` (zeros by
    default), with ``delta`` added to the hidden state after step ``s`` when
    ``perturb = (s, delta)``."""
    T = len(X)
    if perturb is None:
        return u.infer(X[None], h0=h0)[0][0]
    s, delta = perturb
    Y1, st = u.infer(X[None, :s + 1], h0=h0)
    Y1 = Y1[0].copy()
    Y1[s] += delta
    if s + 1 == T:
        return Y1
    if u.has_cell:
        h0 = (st[0] + delta, st[1])
    else:
        h0 = st + delta
    Y2, _ = u.infer(X[None, s + 1:], h0=h0)
    return np.concatenate([Y1, Y2[0]])


def _stack(layer, X, where=None):
    """The top outputs (T, D*H) of ``layer`` on one sequence ``X`` (T, I), built direction by
    direction; ``where = (ly, d, t, delta)`` adds ``delta`` to the hidden state of layer ``ly``,
    direction ``d`` at time ``t``."""
    below = X
    for ly in range(layer.num_layers):
        outs = []
        for d in range(layer.num_directions):
            u = _direction(layer, ly, d)
            inp = below[::-1] if d else below
            p = None
            if where is not None and where[:2] == (ly, d):
                t, delta = where[2], where[3]
                p = (len(X) - 1 - t if d else t, delta)
            Y = _run_direction(u, inp, p)
            outs.append(Y[::-1] if d else Y)
        below = np.concatenate(outs, axis=1)
    return below


def _final_state(layer, X, ly, d, t, delta):
    """The last hidden state that direction ``d`` of layer ``ly`` reads, after ``delta`` is added
    to its state at time ``t`` (lower layers unperturbed)."""
    below = X
    for k in range(ly):
        below = np.concatenate([(lambda Y: Y[::-1] if j else Y)(
            _run_direction(_direction(layer, k, j), below[::-1] if j else below))
            for j in range(layer.num_directions)], axis=1)
    inp = below[::-1] if d else below
    Y = _run_direction(_direction(layer, ly, d), inp, (len(X) - 1 - t if d else t, delta))
    return Y[-1]


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_gradient_flow_matches_finite_differences(cell, num_layers, bidirectional):
    rng = np.random.RandomState(1)
    layer = CELLS[cell](3, 4, num_layers=num_layers, bidirectional=bidirectional,
                        dtype=np.float64, random_state=2)
    B, T = 2, 6
    X = rng.randn(B, T, 3)
    lengths = np.array([6, 4])
    R = rng.randn(B, T, layer.num_directions * 4)

    def loss(Y, b):  # a nonlinear loss of every output of sequence b
        return float(np.sum(R[b, :len(Y)] * Y) + 0.25 * np.sum(Y ** 4))

    real = np.arange(T)[None, :, None] < lengths[:, None, None]
    flow = gradient_flow(layer, X, lengths=lengths, output_grad=lambda Y: (R + Y ** 3) * real)
    eps, H = 1e-6, 4
    for b in range(B):
        x = X[b, :lengths[b]]
        n = len(x)
        for ly in range(num_layers):
            for d in range(layer.num_directions):
                for t in range(n):
                    grad = np.empty(H)
                    jac = np.empty((H, H))
                    for j in range(H):
                        e = np.zeros(H)
                        e[j] = eps
                        grad[j] = (loss(_stack(layer, x, (ly, d, t, e)), b)
                                   - loss(_stack(layer, x, (ly, d, t, -e)), b)) / (2 * eps)
                        jac[:, j] = (_final_state(layer, x, ly, d, t, e)
                                     - _final_state(layer, x, ly, d, t, -e)) / (2 * eps)
                    dist = t if d else n - 1 - t
                    np.testing.assert_allclose(flow.loss_grad_per_sequence[ly, d, b, dist],
                                               np.linalg.norm(grad), rtol=1e-6, atol=1e-9)
                    np.testing.assert_allclose(flow.jacobian_per_sequence[ly, d, b, dist],
                                               np.linalg.norm(jac, 2), rtol=1e-6, atol=1e-9)
        assert np.isnan(flow.loss_grad_per_sequence[:, :, b, lengths[b]:]).all()
    # the means and counts over the sequences that reach each distance
    np.testing.assert_array_equal(flow.counts, [2, 2, 2, 2, 1, 1])
    np.testing.assert_allclose(flow.loss_grad[..., 5], flow.loss_grad_per_sequence[..., 0, 5])
    np.testing.assert_allclose(flow.jacobian[..., 0], 1.0)


@pytest.mark.parametrize("layer", [
    RNN(2, 3, nonlinearity="relu", dtype=np.float64, random_state=0),
    GRU(2, 3, reset_after=False, dtype=np.float64, random_state=0),
    LSTM(2, 3, peephole=True, dtype=np.float64, random_state=0),
    LSTM(2, 3, forget_gate=False, output_gate=False, dtype=np.float64, random_state=0),
], ids=["rnn-relu", "gru-v1", "lstm-peephole", "lstm-ablated"])
def test_gradient_flow_of_cell_variants_matches_finite_differences(layer):
    rng = np.random.RandomState(7)
    for k, v in layer.params.items():
        if k.startswith("weight_peephole"):
            v[...] = rng.randn(*v.shape)
    X = rng.randn(1, 5, 2)
    flow = gradient_flow(layer, X)  # default loss: 0.5 * ||Y at the last step||^2
    for t in range(5):
        grad = [(0.5 * np.sum(_stack(layer, X[0], (0, 0, t, e))[-1] ** 2)
                 - 0.5 * np.sum(_stack(layer, X[0], (0, 0, t, -e))[-1] ** 2)) / 2e-6
                for e in np.eye(3) * 1e-6]
        assert flow.loss_grad[0, 0, 4 - t] == pytest.approx(np.linalg.norm(grad), rel=1e-6)


def test_gradient_flow_starts_from_a_learned_initial_state():
    from fastrnn.nn import SequenceNetwork

    net = SequenceNetwork(2, n_features=2, cell="lstm", hidden_size=3, pooling="last",
                          learn_initial_state=True, dtype=np.float64, random_state=0)
    rng = np.random.RandomState(8)
    for k in ("h0", "c0"):
        net.params[k][...] = rng.randn(1, 3)
    X = rng.randn(1, 4, 2)
    flow = gradient_flow(net, X)
    W, b = net.head.params["weight"], net.head.params["bias"]
    u = _direction(net.rnn, 0, 0)
    h0 = (net.params["h0"][:, None].copy(), net.params["c0"][:, None].copy())

    def loss(delta, t):
        Y = _run_direction(u, X[0], (t, delta), h0)
        return 0.5 * np.sum((Y[-1] @ W.T + b) ** 2)

    for t in range(4):
        grad = [(loss(e, t) - loss(-e, t)) / 2e-6 for e in np.eye(3) * 1e-6]
        assert flow.loss_grad[0, 0, 3 - t] == pytest.approx(np.linalg.norm(grad), rel=1e-6)
    zero = SequenceNetwork(2, n_features=2, cell="lstm", hidden_size=3, pooling="last",
                           dtype=np.float64, random_state=0)
    assert not np.allclose(gradient_flow(zero, X).loss_grad, flow.loss_grad)


# ------------------------------------------------------------------ gate statistics
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _gates_by_hand(u, X):
    """Gate activations (T, G, H), states (T, H) and cells (T, H) of the one-layer copy ``u`` on
    one sequence ``X`` (T, I), from the cell equations."""
    p, H = u.params, u.hidden_size
    h, c = np.zeros(H), np.zeros(H)
    acts, hs, cs = [], [], []
    for x in X:
        a = p["weight_ih_l0"] @ x + p["bias_ih_l0"]
        r = p["weight_hh_l0"] @ h + p["bias_hh_l0"]
        if isinstance(u, LSTM):
            i, f = _sig(a[:H] + r[:H]), _sig(a[H:2 * H] + r[H:2 * H])
            o = _sig(a[3 * H:] + r[3 * H:])
            g = np.tanh(a[2 * H:3 * H] + r[2 * H:3 * H])
            c = f * c + i * g
            h = o * np.tanh(c)
            acts.append([i, f, g, o])
        elif isinstance(u, GRU):
            rr, z = _sig(a[:H] + r[:H]), _sig(a[H:2 * H] + r[H:2 * H])
            if u.reset_after:
                n = np.tanh(a[2 * H:] + rr * r[2 * H:])
            else:
                n = np.tanh(a[2 * H:] + p["weight_hh_l0"][2 * H:] @ (rr * h)
                            + p["bias_hh_l0"][2 * H:])
            h = (1 - z) * n + z * h
            acts.append([rr, z, n])
        else:
            h = np.tanh(a + r)
            acts.append([h])
        hs.append(h)
        cs.append(c)
    return np.array(acts), np.array(hs), np.array(cs)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gate_statistics_match_the_cell_equations(cell):
    from fastrnn.diagnostics import gate_statistics

    rng = np.random.RandomState(3)
    layer = CELLS[cell](2, 5, num_layers=2, bidirectional=True, dtype=np.float64,
                        random_state=4)
    for name, v in layer.params.items():  # larger weights, so that some gates saturate
        v *= 3.0
    X = rng.randn(3, 9, 2)
    lengths = np.array([9, 5, 2])
    stats = gate_statistics(layer, X, lengths=lengths)
    for ly in range(2):
        for d in range(2):
            u = _direction(layer, ly, d)
            per = []
            for b in range(3):  # the input of layer ly, direction by direction, by hand
                x = X[b, :lengths[b]]
                for k in range(ly):
                    x = np.concatenate([
                        (lambda Y: Y[::-1] if j else Y)(_gates_by_hand(
                            _direction(layer, k, j), x[::-1] if j else x)[1])
                        for j in range(2)], axis=1)
                per.append(_gates_by_hand(u, x[::-1] if d else x))
            acts = np.concatenate([a for a, _, _ in per])
            for j, g in enumerate(stats.gates):
                a = acts[:, j]
                act = stats.activations[g]
                want = (np.mean((a < 0.05) | (a > 0.95)) if act == "sigmoid"
                        else np.mean(np.abs(a) > 0.95))
                assert stats.saturation[g][ly, d] == pytest.approx(want)
                assert stats.mean[g][ly, d] == pytest.approx(a.mean())
            if cell == "lstm":
                f = acts[:, 1].mean()
                assert stats.time_constant[ly, d] == pytest.approx(1 / (1 - f))
                np.testing.assert_allclose(stats.unit_time_constant[ly, d],
                                           1 / (1 - acts[:, 1].mean(axis=0)))
                cs = np.concatenate([c for _, _, c in per])
                np.testing.assert_allclose(stats.cell_range[ly, d], [cs.min(), cs.max()])
            elif cell == "gru":
                assert stats.forget_mean[ly, d] == pytest.approx(acts[:, 1].mean())
    assert stats.n_steps == 16
    assert (stats.cell_range is None) == (cell != "lstm")
    text = stats.to_text()
    assert all(g in text for g in stats.gates)


def test_gate_statistics_of_cell_variants():
    from fastrnn.diagnostics import gate_statistics

    X = np.random.RandomState(9).randn(2, 6, 2)
    gru = GRU(2, 4, reset_after=False, dtype=np.float64, random_state=1)
    stats = gate_statistics(gru, X)
    acts = np.concatenate([_gates_by_hand(_direction(gru, 0, 0), x)[0] for x in X])
    for j, g in enumerate(["reset", "update", "new"]):
        assert stats.mean[g][0, 0] == pytest.approx(acts[:, j].mean())
    lstm = LSTM(2, 4, forget_gate=False, dtype=np.float64, random_state=1)
    stats = gate_statistics(lstm, X)
    assert np.isnan(stats.saturation["forget"][0, 0]) and stats.forget_mean[0, 0] == 1.0
    assert stats.time_constant[0, 0] == np.inf
    relu = RNN(2, 4, nonlinearity="relu", dtype=np.float64, random_state=1)
    stats = gate_statistics(relu, X)
    h = np.concatenate([_run_direction(_direction(relu, 0, 0), x) for x in X])
    assert stats.activations == {"h": "relu"}
    assert stats.saturation["h"][0, 0] == pytest.approx(np.mean(h <= 0))


# ------------------------------------------------------------------ memory length
def test_memory_length_is_the_longest_run_of_solved_lags():
    from fastrnn.diagnostics import MemoryLength

    r = MemoryLength("rnn", "adding", [10, 20, 40, 80], [0.99, 0.95, 0.5, 0.97], 0.9, 0.0)
    assert r.memory_length == 20 and r.solved.tolist() == [True, True, False, True]
    assert MemoryLength("rnn", "adding", [10], [0.2], 0.9, 0.0).memory_length == 0
    assert MemoryLength("rnn", "copy", [1, 2], [1.0, 1.0], 0.9, 0.25).memory_length == 2
    assert "memory length: 20" in r.to_text()


def test_memory_length_runs_a_small_budget_and_stops_at_the_first_failure():
    from fastrnn.diagnostics import memory_length

    res = memory_length("gru", lags=(6, 3), n_samples=32, max_iter=1, hidden_size=4,
                        threshold=2.0)  # R^2 never reaches 2: the first lag fails
    assert res.lags.tolist() == [3, 6]
    assert np.isfinite(res.scores[0]) and np.isnan(res.scores[1])
    assert res.memory_length == 0
    res = memory_length("rnn", lags=(2,), task="copy", n_samples=32, max_iter=1, hidden_size=4,
                        threshold=-np.inf)
    assert res.memory_length == 2 and 0.0 <= res.scores[0] <= 1.0 and res.chance == 0.25


@pytest.mark.parametrize("kwargs,match", [
    (dict(cell="tcn"), "cell must be"), (dict(task="parity"), "task must be"),
    (dict(lags=()), "lags must be"), (dict(lags=(1,)), "integers >= 2"),
    (dict(lags=(3.5,)), "lags must be"), (dict(n_samples=1), "n_samples"),
])
def test_memory_length_rejects_bad_arguments(kwargs, match):
    from fastrnn.diagnostics import memory_length

    with pytest.raises(ValueError, match=match):
        memory_length(**kwargs)


def test_recall_task_marks_the_symbol_to_recall():
    from fastrnn.diagnostics import make_recall_task

    X, y = make_recall_task(50, 7, n_symbols=3, random_state=0)
    assert X.shape == (50, 8, 4) and y.shape == (50,)
    np.testing.assert_array_equal(X[:, :, :3].sum(axis=2), 1.0)  # one symbol per step
    np.testing.assert_array_equal(X[:, :, 3], np.eye(8)[0][None].repeat(50, 0))
    np.testing.assert_array_equal(np.argmax(X[:, 0, :3], axis=1), y)


# ------------------------------------------------------------------ estimators and networks
@pytest.fixture(scope="module")
def fitted():
    """One small fitted model of every kind (float64), and its data."""
    import warnings

    from fastrnn.estimators import RNNClassifier, RNNLanguageModel, RNNRegressor, RNNTagger

    rng = np.random.RandomState(0)
    X = [rng.randn(n, 2) * 3 + 1 for n in rng.randint(3, 8, 12)]
    y = rng.randint(0, 3, 12)
    yt = [rng.randint(0, 2, len(x)) for x in X]
    kw = dict(hidden_size=4, max_iter=3, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "classifier": (RNNClassifier(early_stopping=True, validation_fraction=0.25,
                                         n_iter_no_change=5, **kw).fit(X, y), X, y),
            "regressor": (RNNRegressor(cell="gru", bidirectional=False, **kw).fit(X, y * 1.0),
                          X, y * 1.0),
            "tagger": (RNNTagger(cell="rnn", **kw).fit(X, yt), X, yt),
            "lm": (RNNLanguageModel(hidden_size=6, embedding_dim=4, bptt=6, batch_size=2,
                                    max_iter=2, eval_interval=4, random_state=0,
                                    dtype="float64").fit(["the cat sat on the mat"] * 4,
                                                         validation_texts=["a cat sat"]),
                   ["the cat sat", "on a mat"], None),
        }
    return models


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_estimator_gradient_flow_uses_the_training_loss(fitted):
    # the flow of a fitted classifier equals that of its network with the gradient of the mean
    # cross-entropy written out, on the standardised input
    est, X, y = fitted["classifier"]
    flow = gradient_flow(est, X, y)
    lengths = np.array([len(x) for x in X])
    T = lengths.max()
    Z = np.zeros((len(X), T, 2))
    for b, x in enumerate(X):
        Z[b, :len(x)] = (x - est.feature_mean_) / est.feature_scale_
    onehot = np.eye(len(est.classes_))[np.searchsorted(est.classes_, y)]
    by_hand = gradient_flow(est.network_, Z, lengths=lengths,
                            output_grad=lambda out: (_softmax(out) - onehot) / len(X))
    np.testing.assert_allclose(flow.loss_grad, by_hand.loss_grad, rtol=1e-10)
    np.testing.assert_allclose(flow.jacobian, by_hand.jacobian, rtol=1e-10)
    assert flow.loss_grad.shape == (1, 2, T)  # the classifier is bidirectional
    assert gradient_flow(est, X).loss_grad is None  # no targets, no loss


@pytest.mark.parametrize("kind", ["regressor", "tagger", "lm"])
def test_gradient_flow_and_gate_statistics_of_every_estimator(fitted, kind):
    from fastrnn.diagnostics import gate_statistics

    est, X, y = fitted[kind]
    flow = gradient_flow(est, X, y)
    rnn = est.network_.rnn
    assert flow.loss_grad.shape == flow.jacobian.shape == (
        rnn.num_layers, rnn.num_directions, len(flow.distance))
    assert np.all(flow.loss_grad[..., 0] > 0) and np.allclose(flow.jacobian[..., 0], 1.0)
    stats = gate_statistics(est, X)
    assert stats.cell == type(rnn).__name__.lower()
    assert all(np.isfinite(v).all() for v in stats.saturation.values())
    state = {k: v.copy() for k, v in est.network_.params.items()}
    assert all(np.array_equal(v, state[k]) for k, v in est.network_.params.items())


def test_network_flow_through_pooling_and_head_matches_finite_differences():
    from fastrnn.nn import SequenceNetwork

    net = SequenceNetwork(3, n_features=2, cell="lstm", hidden_size=4, pooling="mean",
                          dtype=np.float64, random_state=0)
    X = np.random.RandomState(5).randn(1, 5, 2)
    flow = gradient_flow(net, X)  # default loss: 0.5 * ||head output||^2
    W, b = net.head.params["weight"], net.head.params["bias"]

    def loss(delta, t):
        Y = _stack(net.rnn, X[0], (0, 0, t, delta))
        return 0.5 * np.sum((Y.mean(axis=0) @ W.T + b) ** 2)

    for t in range(5):
        grad = [(loss(e, t) - loss(-e, t)) / 2e-6 for e in np.eye(4) * 1e-6]
        assert flow.loss_grad[0, 0, 4 - t] == pytest.approx(np.linalg.norm(grad), rel=1e-6)


def test_gradient_flow_rejects_what_it_cannot_read():
    from fastrnn.estimators import RNNClassifier

    with pytest.raises(TypeError, match="not fitted"):
        gradient_flow(RNNClassifier(), np.zeros((2, 3, 1)))
    with pytest.raises(TypeError, match="got dict"):
        gradient_flow({}, np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match=r"shape \(B, T, 2\)"):
        gradient_flow(RNN(2, 3), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="lengths must be"):
        gradient_flow(RNN(2, 3), np.zeros((2, 3, 2)), lengths=[4, 1])
    with pytest.raises(ValueError, match="max_sequences"):
        gradient_flow(RNN(2, 3), np.zeros((2, 3, 2)), max_sequences=0)


# ------------------------------------------------------------------ plots
@pytest.fixture
def agg():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.mark.parametrize("kind", ["classifier", "regressor", "tagger", "lm"])
def test_plot_history_draws_the_recorded_curves(fitted, kind, agg):
    from fastrnn.diagnostics import plot_history

    est = fitted[kind][0]
    axes = plot_history(est)
    lm = kind == "lm"
    assert [a.get_title() for a in axes] == (["loss", "learning rate"] if lm else
                                             ["loss", "learning rate", "gradient norm"])
    assert all(a.get_xlabel() == "epoch" for a in axes)
    loss_line = axes[0].get_lines()[0]
    if lm:
        want = [h["train_bits"] for h in est.history_]
        assert axes[0].get_ylabel() == "bits per character"
        assert [ln.get_label() for ln in axes[0].get_lines()] == [
            "training bits per character", "validation bits per character"]
        np.testing.assert_allclose(axes[0].get_lines()[1].get_ydata(),
                                   [h["val_bits"] for h in est.history_])
    else:
        want = est.loss_curve_
        assert axes[0].get_ylabel() == "training loss"
        np.testing.assert_allclose(axes[2].get_lines()[0].get_ydata(), est.grad_norm_curve_)
    np.testing.assert_allclose(loss_line.get_ydata(), want)
    np.testing.assert_allclose(axes[1].get_lines()[0].get_ydata(),
                               [h["lr"] for h in est.history_])
    if not lm:
        assert len(est.lr_curve_) == len(est.loss_curve_) == est.n_iter_
    assert axes[1].get_ylabel() == "learning rate"
    if kind == "classifier":  # the validation score on a second y axis
        twin = [a for a in axes[0].figure.axes if a not in axes]
        assert len(twin) == 1 and twin[0].get_ylabel() == "validation score"
        np.testing.assert_allclose(twin[0].get_lines()[0].get_ydata(), est.validation_scores_)


def test_plot_gradient_flow_and_gate_statistics(fitted, agg):
    from fastrnn.diagnostics import gate_statistics, plot_gate_statistics, plot_gradient_flow

    est, X, y = fitted["classifier"]
    flows = {"a": gradient_flow(est, X, y), "b": gradient_flow(est, X)}
    axes = plot_gradient_flow(flows)
    assert [a.get_ylabel() for a in axes] == ["|dL/dh_t|", "|dh_T/dh_t|"]
    assert all(a.get_yscale() == "log" and a.get_xlabel().startswith("distance") for a in axes)
    assert len(axes[0].get_lines()) == 2 and len(axes[1].get_lines()) == 4
    np.testing.assert_allclose(axes[1].get_lines()[0].get_ydata(), flows["a"].jacobian[0, 0])
    fig, ax = agg.subplots()
    stats = gate_statistics(est, X)
    assert plot_gate_statistics(stats, ax=ax) is ax
    gates = {"lstm": 4, "gru": 3}[est.network_.config["cell"]]  # one bar per gate, direction
    assert ax.get_ylabel() == "share saturated" and len(ax.patches) == 2 * gates
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == stats.gates
    with pytest.raises(ValueError, match="ax must hold 2 axes"):
        plot_gradient_flow(flows["a"], ax=ax)


def test_plots_without_matplotlib_name_the_plot_extra(fitted, monkeypatch):
    import builtins

    from fastrnn.diagnostics import plot_gradient_flow, plot_history

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for name in [n for n in __import__("sys").modules if n.startswith("matplotlib")]:
        monkeypatch.delitem(__import__("sys").modules, name)
    with pytest.raises(ImportError, match=r"fastrnn\[plot\]"):
        plot_history(fitted["regressor"][0])
    with pytest.raises(ImportError, match="'plot' extra"):
        plot_gradient_flow(gradient_flow(RNN(2, 3), np.ones((1, 4, 2))))


def test_lr_curve_is_saved_with_the_model(fitted, tmp_path, agg):
    import fastrnn
    from fastrnn.diagnostics import history_curves

    est = fitted["regressor"][0]
    est.save(tmp_path / "m.fastrnn")
    back = fastrnn.load(tmp_path / "m.fastrnn")
    assert back.lr_curve_ == est.lr_curve_ == [h["lr"] for h in est.history_]
    assert not hasattr(back, "history_")  # not saved: the plot reads the fitted curves
    assert set(history_curves(back)) == {"loss", "lr", "grad_norm"}
    del back.lr_curve_  # as a model file written before lr_curve_ existed
    assert set(history_curves(back)) == {"loss", "grad_norm"}


# ------------------------------------------------------------------ command line
def test_cli_plot_and_diagnose(fitted, tmp_path, capsys, agg):
    from fastrnn.cli import main

    est, X, y = fitted["regressor"]
    model = str(tmp_path / "reg.fastrnn")
    est.save(model)
    Xa = np.zeros((len(X), max(len(x) for x in X), 2))
    for b, x in enumerate(X):
        Xa[b, :len(x)] = x
    np.savez(tmp_path / "data.npz", X=Xa, y=y)
    out = tmp_path / "curves.png"
    assert main(["plot", model, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["diagnose", model, str(tmp_path / "data.npz"), "--out",
                 str(tmp_path / "d.png")]) == 0
    text = capsys.readouterr().out
    assert "|dL/dh_t|" in text and "|dh_T/dh_t|" in text and "update" in text
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    lm = str(tmp_path / "lm.fastrnn")
    fitted["lm"][0].save(lm)
    (tmp_path / "t.txt").write_text("the cat sat on a mat\n")
    assert main(["diagnose", lm, str(tmp_path / "t.txt")]) == 0
    assert "forget" in capsys.readouterr().out
    # errors a user can fix: one line, status 2
    assert main(["diagnose", model, str(tmp_path / "missing.npz")]) == 2
    np.savez(tmp_path / "bad.npz", Z=Xa)
    assert main(["diagnose", model, str(tmp_path / "bad.npz")]) == 2
    assert main(["plot", str(tmp_path / "none.fastrnn")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "not an array 'X'" in err


@pytest.mark.parametrize("layer", ["MinGRU", "MinLSTM", "IndRNN"])
def test_gate_statistics_names_the_cells_it_reads(layer):
    import fastrnn.nn

    from fastrnn.diagnostics import gate_statistics

    model = getattr(fastrnn.nn, layer)(2, 4, random_state=0)
    X = np.random.RandomState(0).randn(3, 5, 2)
    with pytest.raises(ValueError, match=f"rnn, lstm, gru layers.*a {layer}.*gradient_flow"):
        gate_statistics(model, X)


@pytest.mark.parametrize("cell", ["mingru", "indrnn"])
def test_memory_length_runs_for_the_new_cells(cell):
    from fastrnn.diagnostics import memory_length

    res = memory_length(cell, lags=(3, 6), n_samples=48, max_iter=2, stop_at_failure=False)
    assert res.lags.tolist() == [3, 6] and np.isfinite(res.scores).all()
    assert res.memory_length in (0, 3, 6)


def test_flow_of_a_network_with_a_bag_of_embeddings_matches_finite_differences():
    from fastrnn.nn import SequenceNetwork

    net = SequenceNetwork(3, vocab_size=12, embedding_dim=3, cell="gru", hidden_size=4,
                          pooling="max", bag_of_embeddings=True, dtype=np.float64,
                          random_state=0)
    ids = np.array([[4, 7, 1, 9, 2, 0], [3, 3, 8, 0, 0, 0]])
    lengths = np.array([5, 3])
    flow = gradient_flow(net, ids, lengths=lengths)  # default loss: 0.5 * ||head output||^2
    W, b = net.head.params["weight"], net.head.params["bias"]
    E = net.embedding.params["weight"]
    for s in range(2):
        x = E[ids[s, :lengths[s]]]
        bag = x.sum(axis=0) / np.sqrt(lengths[s])

        def loss(delta, t):
            Y = _stack(net.rnn, x, (0, 0, t, delta))
            return 0.5 * np.sum((np.concatenate([Y.max(axis=0), bag]) @ W.T + b) ** 2)

        n = lengths[s]
        for t in range(n):
            grad = [(loss(e, t) - loss(-e, t)) / 2e-6 for e in np.eye(4) * 1e-6]
            np.testing.assert_allclose(flow.loss_grad_per_sequence[0, 0, s, n - 1 - t],
                                       np.linalg.norm(grad), rtol=1e-6)
