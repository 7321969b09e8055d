"""CUDA backend: training on the device (:mod:`fastrnn.kernels.cuda._train`).

A fit with ``backend="cuda"`` keeps the parameters, gradients and optimiser state on the device;
each step copies its batch up once and the loss and gradient norm back once. The reference is the
same training on the host with ``backend="numpy"``: the same steps from the same initial
parameters must give the same parameters, losses, gradient norms and optimiser state (float64,
to 1e-10). Runs on numba-cuda's simulator (see tests/test_cuda.py): tiny sizes, two or three
steps.
"""

import warnings

import numpy as np
import pytest

from test_cuda import TransferCounter, numba_cuda  # noqa: F401  (chooses the simulator first)

from fastrnn.callbacks import Callback  # noqa: E402
from fastrnn.losses import mean_squared_error, softmax_cross_entropy  # noqa: E402
from fastrnn.nn import SequenceNetwork  # noqa: E402
from fastrnn.optim import SGD, AdaGrad, Adam, AdamW  # noqa: E402
from fastrnn.train import NonFiniteWarning, Trainer  # noqa: E402

TOL = 1e-10


def _net(backend, **kw):
    kw = dict(dict(n_features=2, hidden_size=2, cell="lstm", dtype=np.float64), **kw)
    return SequenceNetwork(3 if kw.pop("classes", True) else 2, backend=backend,
                           random_state=0, **kw)


def _batches(n_steps, regression=False, seed=0):
    """Batches of 3 sequences of 1 or 2 steps with their loss functions; the host loss
    functions carry the device's description of the same loss (as the estimators make them)."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n_steps):
        X = rng.randn(3, 2, 2)
        L = rng.permutation([2, 1, 2])  # padded, and not sorted by length
        w = rng.uniform(0.5, 2.0, size=3)
        if regression:
            y = rng.randn(3, 2)

            def loss_fn(out, y=y, w=w):
                return mean_squared_error(out, y, sample_weight=w)
            loss_fn.device_loss = ("mse", y, w / w.sum())
        else:
            y = rng.randint(0, 3, size=3)

            def loss_fn(out, y=y, w=w):
                return softmax_cross_entropy(out, y, sample_weight=w)
            loss_fn.device_loss = ("ce", y, w / w.sum())
        out.append((X, L, loss_fn))
    return out


def _train(backend, net_kw, optimizer, clip, batches, counter=None):
    net = _net(backend, **net_kw)
    trainer = Trainer(net, optimizer=optimizer, clip_norm=clip)
    assert trainer.start_device() is None
    assert trainer.on_device == (backend == "cuda")
    losses, per_step = [], []
    for X, L, loss_fn in batches:
        if counter is not None:
            counter.take()
        losses.append(trainer.step(X, L, loss_fn)[0])
        if counter is not None:
            per_step.append(counter.take())
    trainer.stop_device()
    return net, trainer, losses, per_step


def _assert_same_training(ref, got):
    (rnet, rtr, rloss, _), (gnet, gtr, gloss, _) = ref, got
    for name, p in rnet.params.items():
        np.testing.assert_allclose(gnet.params[name], p, rtol=0, atol=TOL, err_msg=name)
        np.testing.assert_allclose(gnet.grads[name], rnet.grads[name], rtol=0, atol=TOL,
                                   err_msg=f"gradient of {name}")
    np.testing.assert_allclose(gloss, rloss, rtol=TOL, atol=0)
    np.testing.assert_allclose(gtr.grad_norms_, rtr.grad_norms_, rtol=TOL, atol=0)
    rs, gs = rtr.optimizer.state_dict(), gtr.optimizer.state_dict()
    assert gs["step_count"] == rs["step_count"]
    assert gs["state"].keys() == rs["state"].keys()
    for name, st in rs["state"].items():
        assert gs["state"][name].keys() == st.keys(), name
        for key, v in st.items():
            np.testing.assert_allclose(gs["state"][name][key], v, rtol=0, atol=TOL,
                                       err_msg=f"{key} of {name}")


@pytest.mark.parametrize("net_kw", [
    dict(pooling="mean"),
    dict(num_layers=2, cell="rnn", pooling="max", dropout=0.3, recurrent_dropout=0.3),
    dict(bidirectional=True, pooling="last", cell="rnn")],
    ids=["lstm-mean", "rnn-2-layers-max-dropout", "rnn-bidirectional-last"])
def test_adam_with_clipping_matches_the_host_and_copies_once_each_way_per_step(
        net_kw, monkeypatch):
    """Two steps of Adam (with L2 weight decay) with the gradients clipped (a threshold below
    their norm) give the host's parameters, gradients, losses, norms and moments, dropout
    included (the same masks);
    every step copies exactly one buffer to the device (the batch, with its masks) and one back
    (loss and norm), whatever the depth and the directions, and passes no host array to a
    kernel."""
    counter = TransferCounter(monkeypatch)
    batches = _batches(2)
    ref = _train("numpy", net_kw, Adam(lr=0.05, weight_decay=0.01), 0.3, batches)
    got = _train("cuda", net_kw, Adam(lr=0.05, weight_decay=0.01), 0.3, batches, counter)
    assert max(ref[1].grad_norms_) > 0.3  # the clipping acted
    _assert_same_training(ref, got)
    assert got[3] == [(1, 1, 0)] * 2


@pytest.mark.parametrize("optimizer", [
    lambda: SGD(lr=0.1), lambda: SGD(lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda: SGD(lr=0.1, momentum=0.9, nesterov=True), lambda: AdamW(lr=0.05),
    lambda: AdaGrad(lr=0.1, weight_decay=0.01, initial_accumulator_value=0.1)],
    ids=["sgd", "momentum-decay", "nesterov", "adamw", "adagrad-decay"])
def test_every_device_optimiser_matches_the_host(optimizer):
    """Each update rule on the device, on the cheapest network (a simple RNN), with clipping."""
    batches = _batches(2)
    kw = dict(cell="rnn")
    _assert_same_training(_train("numpy", kw, optimizer(), 0.5, batches),
                          _train("cuda", kw, optimizer(), 0.5, batches))


def test_regression_loss_matches_the_host():
    """The mean squared error over two outputs with sample weights, no clipping."""
    batches = _batches(2, regression=True)
    kw = dict(cell="gru", classes=False)
    _assert_same_training(_train("numpy", kw, Adam(lr=0.05), None, batches),
                          _train("cuda", kw, Adam(lr=0.05), None, batches))


def test_a_bounded_recurrent_weight_is_clipped_on_the_device_as_on_the_host():
    """IndRNN's recurrent_max: the device clips u after its update as the host does (a large
    learning rate takes u past the bound), on a stacked bidirectional layer."""
    batches = _batches(3)
    kw = dict(cell="indrnn", num_layers=2, bidirectional=True,
              cell_options=dict(recurrent_max=0.3))
    ref = _train("numpy", kw, Adam(lr=0.5), None, batches)
    got = _train("cuda", kw, Adam(lr=0.5), None, batches)
    _assert_same_training(ref, got)
    u = np.concatenate([v for k, v in got[0].params.items() if "weight_hh" in k])
    assert np.all(np.abs(u) <= 0.3) and np.any(np.abs(u) == 0.3)


def test_float32_training_matches_the_host_to_float32_rounding():
    """The float32 kernels (their scalars in float32, the loss and the norm summed in float64):
    two steps of Adam with clipping and dropout agree with the host's float32 training to a
    relative 1e-5 (the tolerance of float32 backend parity)."""
    batches = [(X.astype(np.float32), L, f) for X, L, f in _batches(2)]
    kw = dict(cell="rnn", dtype=np.float32, dropout=0.3, pooling="max")
    ref = _train("numpy", kw, Adam(lr=0.05), 0.3, batches)
    got = _train("cuda", kw, Adam(lr=0.05), 0.3, batches)
    for name, p in ref[0].params.items():
        q = got[0].params[name]
        assert q.dtype == np.float32
        assert np.linalg.norm(q - p) <= 1e-5 * np.linalg.norm(p), name
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-5)
    np.testing.assert_allclose(got[1].grad_norms_, ref[1].grad_norms_, rtol=1e-5)


def test_a_non_finite_loss_rolls_back_on_the_device_as_on_the_host():
    """A step whose loss overflows is not applied: the parameters stay those of the snapshot
    and the learning rate is lowered, as on the host; the next step trains again."""
    good = _batches(1, regression=True)
    X, L, _ = good[0]
    y = np.full((3, 2), 1e200)

    def huge(out):
        return mean_squared_error(out, y)
    huge.device_loss = ("mse", y, np.full(3, 1 / 3))
    batches = [(X, L, huge), good[0]]
    runs = {}
    for backend in ("numpy", "cuda"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs[backend] = _train(backend, dict(cell="rnn", classes=False), Adam(lr=0.05), 1.0,
                                   batches)
        assert any(issubclass(w.category, NonFiniteWarning) for w in caught), backend
    assert runs["cuda"][2][0] == np.inf and np.isfinite(runs["cuda"][2][1])
    assert runs["cuda"][1].optimizer.lr == runs["numpy"][1].optimizer.lr < 0.05
    assert runs["cuda"][1].optimizer.step_count == runs["numpy"][1].optimizer.step_count == 1
    for name, p in runs["numpy"][0].params.items():
        np.testing.assert_allclose(runs["cuda"][0].params[name], p, rtol=0, atol=TOL)


def test_a_network_the_device_cannot_train_stays_on_the_host():
    """An optimiser without a device update (among others) is not supported on the device: the
    trainer says why and trains as before."""
    class Custom(SGD):
        """An update rule of its own (the device knows SGD's only)."""

    trainer = Trainer(_net("cuda"), optimizer=Custom(lr=0.01))
    assert "Custom" in trainer.start_device() and not trainer.on_device


@pytest.mark.parametrize("net_kw", [
    dict(skip="residual", num_layers=3, cell="rnn", bidirectional=True, dropout=0.3,
         pooling="max"),
    dict(skip="residual", num_layers=2, cell="gru", recurrent_dropout=0.3),
    dict(skip="dense", num_layers=3, cell="rnn", dropout=0.3, pooling="mean"),
    dict(skip="dense", num_layers=2, bidirectional=True, pooling="last"),
    dict(skip="highway", num_layers=2, cell="rnn", bidirectional=True, dropout=0.3),
    dict(skip="highway", num_layers=3, cell="gru", dropout=0.3, pooling="max")],
    ids=["residual-3-bidirectional-dropout", "residual-2-gru", "dense-3-dropout",
         "dense-2-lstm-bidirectional", "highway-2-projected-bidirectional-dropout",
         "highway-3-gru-dropout"])
def test_connections_between_layers_match_the_host_and_copy_once_each_way_per_step(
        net_kw, monkeypatch):
    """The stack joined by its connections on the device (residual sums, the dense
    concatenation of every layer below, the highway gates with a projection where a layer's
    input width differs from its output's, the dropout between the layers): two steps of Adam
    with clipping over ragged batches give the host's parameters (the connections' included),
    gradients, losses, norms and moments; each step copies one buffer each way."""
    counter = TransferCounter(monkeypatch)
    batches = _batches(2)
    ref = _train("numpy", net_kw, Adam(lr=0.05), 0.3, batches)
    got = _train("cuda", net_kw, Adam(lr=0.05), 0.3, batches, counter)
    names = [n for n in ref[0].params if "skip_" in n]
    assert bool(names) == (net_kw["skip"] == "highway")  # the connections' own parameters
    assert any("skip_proj" in n for n in names) == (net_kw.get("bidirectional", False)
                                                    and net_kw["skip"] == "highway")
    _assert_same_training(ref, got)
    for name in names:  # trained
        assert np.any(ref[0].grads[name] != 0), name
    assert got[3] == [(1, 1, 0)] * 2


def test_a_learned_initial_state_matches_the_host():
    """The learned initial state (an LSTM's two) broadcast to every sequence on the device, its
    gradient the sum over the batch: two steps of Adam with clipping give the host's
    training."""
    batches = _batches(2)
    kw = dict(learn_initial_state=True)
    ref = _train("numpy", kw, Adam(lr=0.05), 0.3, batches)
    got = _train("cuda", kw, Adam(lr=0.05), 0.3, batches)
    assert np.any(ref[0].params["h0"] != 0) and np.any(ref[0].params["c0"] != 0)
    _assert_same_training(ref, got)


def _token_batches(n_steps, V, K=None, seed=0):
    """Batches of 3 token sequences of 1 to 3 steps (padding id 0 past each length, and some
    padding ids inside), with the classifier's loss functions."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(n_steps):
        ids = rng.randint(0, V, size=(3, 3) if K is None else (3, 3, K))
        L = rng.permutation([3, 1, 2])
        for b, n in enumerate(L):
            ids[b, n:] = 0
        w = rng.uniform(0.5, 2.0, size=3)
        y = rng.randint(0, 3, size=3)

        def loss_fn(out, y=y, w=w):
            return softmax_cross_entropy(out, y, sample_weight=w)
        loss_fn.device_loss = ("ce", y, w / w.sum())
        out.append((ids, L, loss_fn))
    return out


def _with_linear(net):
    """A linear part with arbitrary weights over the ids 1..5 (``idf`` 0 for the others)."""
    if net.linear is not None:
        rng = np.random.RandomState(3)
        idf = np.r_[0.0, rng.uniform(0.5, 2.0, 5), np.zeros(net.embedding.num_embeddings - 6)]
        net.set_linear(idf, rng.randn(len(idf), 3), rng.randn(3))
    return net


@pytest.mark.parametrize("net_kw,K", [
    (dict(dropout=0.3, pooling="max", linear=True), None),
    (dict(cell="rnn", bag_of_embeddings=True, dropout=0.3, bidirectional=True), 2)],
    ids=["lstm-dropout-max-linear", "rnn-bag-dropout-bidirectional-subwords"])
def test_token_input_matches_the_host_and_copies_once_each_way_per_step(net_kw, K, monkeypatch):
    """Token ids (one per step, or two summed per step) through the embedding on the device: its
    lookup (with the input dropout), the recurrent stack, the linear part's logits and the bag
    of embeddings, and the scatter of the gradient into the embedding's rows (padding id left
    at zero) give the host's parameters, gradients, losses, norms and moments after two steps
    of Adam with clipping; each step copies one buffer each way."""
    counter = TransferCounter(monkeypatch)
    batches = _token_batches(2, V=8, K=K)
    kw = dict(n_features=None, vocab_size=8, embedding_dim=3, **net_kw)
    runs = {}
    for backend in ("numpy", "cuda"):
        net = _with_linear(_net(backend, **kw))
        trainer = Trainer(net, optimizer=Adam(lr=0.05), clip_norm=0.3)
        assert trainer.start_device() is None and trainer.on_device == (backend == "cuda")
        losses, per_step = [], []
        for ids, L, loss_fn in batches:
            counter.take()
            losses.append(trainer.step(ids, L, loss_fn)[0])
            per_step.append(counter.take())
        trainer.stop_device()
        runs[backend] = net, trainer, losses, per_step
    _assert_same_training(runs["numpy"], runs["cuda"])
    assert runs["cuda"][3] == [(1, 1, 0)] * 2
    g = runs["numpy"][0].grads["embedding.weight"]
    assert np.any(g[1:] != 0) and np.all(g[0] == 0)  # the test reaches the scatter


def test_token_input_out_of_range_is_refused_on_the_device():
    """An id outside the vocabulary is an error naming it, as on the host."""
    trainer = Trainer(_net("cuda", n_features=None, vocab_size=5, embedding_dim=2))
    assert trainer.start_device() is None
    ids, L, loss_fn = _token_batches(1, V=5)[0]
    ids[0, 0] = 7
    with pytest.raises(ValueError, match="token id 7 is out of range"):
        trainer.step(ids, L, loss_fn)


class _Seen(Callback):
    """The parameters as a callback reads them at the end of every epoch; then it changes the
    head's bias (the next epoch must train from the changed value)."""

    def __init__(self):
        self.params = []

    def on_epoch_end(self, estimator, loop, logs):
        self.params.append({k: v.copy() for k, v in estimator.network_.params.items()})
        estimator.network_.params["head.bias"][...] += 0.5


def test_classifier_fit_on_the_device_gives_the_host_fit(monkeypatch):
    """An RNNClassifier fitted with backend="cuda" (default pooling and dropout) ends with the
    parameters of the same fit with backend="numpy": read after the fit, and read by a callback
    and by the validation score between epochs (the host copies are synchronised before each),
    with the same history; the callback's change of the parameters reaches the device."""
    from fastrnn import RNNClassifier
    from fastrnn.kernels.cuda._train import DeviceSession

    device_steps = []
    real_step = DeviceSession.step

    def step(self, *args):
        device_steps.append(1)
        return real_step(self, *args)
    monkeypatch.setattr(DeviceSession, "step", step)
    rng = np.random.RandomState(0)
    X = rng.randn(6, 2, 2)
    y = np.array([0, 1] * 3)
    fits = {}
    for backend in ("numpy", "cuda"):
        seen = _Seen()
        est = RNNClassifier(cell="rnn", hidden_size=2, bidirectional=False, max_iter=2,
                            learning_rate=0.05, dtype="float64", backend=backend,
                            batch_size=4, early_stopping=True, validation_fraction=0.25,
                            n_iter_no_change=5, random_state=0, callbacks=[seen], verbose=0)
        fits[backend] = est.fit(X, y), seen
    (ref, rseen), (got, gseen) = fits["numpy"], fits["cuda"]
    assert len(device_steps) == 2  # one batch per epoch, both on the device
    assert len(gseen.params) == 2
    for rp, gp in zip(rseen.params + [ref.network_.params], gseen.params + [got.network_.params]):
        for name, p in rp.items():
            np.testing.assert_allclose(gp[name], p, rtol=0, atol=TOL, err_msg=name)
    for rh, gh in zip(ref.history_, got.history_):
        np.testing.assert_allclose(gh["loss"], rh["loss"], rtol=TOL)
        np.testing.assert_allclose(gh["val_score"], rh["val_score"], rtol=TOL)


def test_regressor_fit_with_sample_weights_on_the_device_gives_the_host_fit(monkeypatch):
    """An RNNRegressor with two targets and sample weights: every step on the device, the fitted
    parameters and the loss curve those of the host fit."""
    from fastrnn import RNNRegressor
    from fastrnn.kernels.cuda._train import DeviceSession

    losses = []
    real_step = DeviceSession.step

    def step(self, X, lengths, loss, *args):
        losses.append(loss)
        return real_step(self, X, lengths, loss, *args)
    monkeypatch.setattr(DeviceSession, "step", step)
    rng = np.random.RandomState(1)
    X, y, w = rng.randn(6, 2, 2), rng.randn(6, 2), rng.uniform(0.5, 2.0, 6)
    fits = {}
    for backend in ("numpy", "cuda"):
        est = RNNRegressor(cell="rnn", hidden_size=2, bidirectional=False, max_iter=1,
                           batch_size=3, learning_rate=0.05, dtype="float64",
                           backend=backend, early_stopping=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge
            fits[backend] = est.fit(X, y, sample_weight=w)
    assert losses == ["mse", "mse"]
    np.testing.assert_allclose(fits["cuda"].loss_curve_, fits["numpy"].loss_curve_, rtol=TOL)
    for name, p in fits["numpy"].network_.params.items():
        np.testing.assert_allclose(fits["cuda"].network_.params[name], p, rtol=0, atol=TOL,
                                   err_msg=name)


def test_token_classifier_fit_with_the_defaults_on_the_device_gives_the_host_fit(monkeypatch):
    """An RNNClassifier on ragged token sequences with the defaults that apply to them (a linear
    part, fitted first on the host; the embedding; no bag of embeddings for short sequences):
    every step on the device, the fitted parameters and the loss curve those of the host fit."""
    from fastrnn import RNNClassifier
    from fastrnn.kernels.cuda._train import DeviceSession

    device_steps = []
    real_step = DeviceSession.step

    def step(self, *args):
        device_steps.append(1)
        return real_step(self, *args)
    monkeypatch.setattr(DeviceSession, "step", step)
    rng = np.random.RandomState(2)
    X = [rng.randint(1, 6, size=n) for n in (3, 1, 2, 3, 2, 1)]
    y = np.array([0, 1, 2] * 2)
    fits = {}
    for backend in ("numpy", "cuda"):
        est = RNNClassifier(cell="rnn", hidden_size=2, max_iter=1, batch_size=3,
                            learning_rate=0.05, dtype="float64", backend=backend,
                            early_stopping=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge
            fits[backend] = est.fit(X, y)
    ref, got = fits["numpy"], fits["cuda"]
    assert ref.network_.linear is not None and ref.network_.embedding is not None
    assert not ref.network_.bag_of_embeddings
    assert len(device_steps) == 2
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=TOL)
    for name, p in ref.network_.weights().items():
        np.testing.assert_allclose(got.network_.weights()[name], p, rtol=0, atol=TOL,
                                   err_msg=name)


def test_float32_token_batches_beyond_exact_float32_integers_are_refused():
    """The ids and steps travel as float32 values with dtype float32: a vocabulary past 2**24
    is an error naming the fix, while float64 takes it."""
    from fastrnn.kernels.cuda._train import _id_steps
    from fastrnn.nn._plan import Plan

    tok = np.array([[[1]], [[2]]])
    plan = Plan(np.array([2]), 2)
    with pytest.raises(ValueError, match="use dtype float64"):
        _id_steps(tok, plan, 0, 2 ** 24 + 1, np.dtype(np.float32))
    uniq, starts, pos = _id_steps(tok, plan, 0, 2 ** 24 + 1, np.dtype(np.float64))
    assert list(uniq) == [1, 2] and list(starts) == [0, 1, 2] and list(pos) == [0, 1]


@pytest.mark.parametrize("net_kw", [
    dict(vocab_size=6, embedding_dim=2, cell="rnn", bidirectional=True),
    dict(vocab_size=3, embedding_dim=4, cell="lstm", bidirectional=True, tie_weights=True),
    dict(vocab_size=3, embedding_dim=2, cell="gru", num_layers=3, skip="dense",
         tie_weights=True)],
    ids=["rnn-bidirectional", "tied-lstm-bidirectional", "tied-gru-dense-3"])
def test_a_label_per_step_matches_the_host_and_copies_once_each_way_per_step(net_kw,
                                                                             monkeypatch):
    """No pooling (a tagger's network): the head reads every step, the loss is the per-step
    cross-entropy weighted per step (padded steps weigh nothing and their labels are -1, as a
    padded label matrix holds them). Two steps of Adam with clipping and dropout over token ids
    give the host's training, one copy each way per step; with the head tied to the embedding
    (its weight is the table) the table's gradient is the sum of the lookup's and the head's,
    the padding id's row zero."""
    from fastrnn.losses import sequence_softmax_cross_entropy

    counter = TransferCounter(monkeypatch)
    rng = np.random.RandomState(4)
    batches = []
    V = net_kw["vocab_size"]
    for _ in range(2):
        ids = rng.randint(1, V, size=(3, 3))
        L = rng.permutation([3, 1, 2])
        y = rng.randint(0, 3, size=(3, 3))
        w = rng.uniform(0.5, 2.0, size=(3, 3))
        for b, n in enumerate(L):
            ids[b, n:], y[b, n:], w[b, n:] = 0, -1, 0.0

        def loss_fn(out, y=y, w=w, L=L):
            return sequence_softmax_cross_entropy(out, y, L, sample_weight=w)
        loss_fn.device_loss = ("ce", y, w / w.sum())
        batches.append((ids, L, loss_fn))
    kw = dict(n_features=None, pooling=None, dropout=0.3, **net_kw)  # tied: 3 outputs, 3 ids
    runs = {}
    for backend in ("numpy", "cuda"):
        net = _net(backend, **kw)
        trainer = Trainer(net, optimizer=Adam(lr=0.05), clip_norm=0.3)
        assert trainer.start_device() is None and trainer.on_device == (backend == "cuda")
        losses, per_step = [], []
        for ids, L, loss_fn in batches:
            counter.take()
            losses.append(trainer.step(ids, L, loss_fn)[0])
            per_step.append(counter.take())
        trainer.stop_device()
        runs[backend] = net, trainer, losses, per_step
    assert max(runs["numpy"][1].grad_norms_) > 0.3
    _assert_same_training(runs["numpy"], runs["cuda"])
    assert runs["cuda"][3] == [(1, 1, 0)] * 2
    net = runs["numpy"][0]
    if net.tie_weights:
        assert net.head.params["weight"] is net.params["embedding.weight"]
        assert "head.weight" not in net.params
        g = net.grads["embedding.weight"]
        assert np.all(g[0] == 0) and np.all(g[1:] != 0)


def test_tagger_fit_on_the_device_gives_the_host_fit(monkeypatch):
    """An RNNTagger on ragged token sequences with sample weights: every step on the device,
    the fitted parameters and the loss curve those of the host fit."""
    from fastrnn import RNNTagger
    from fastrnn.kernels.cuda._train import DeviceSession

    device_steps = []
    real_step = DeviceSession.step

    def step(self, *args):
        device_steps.append(1)
        return real_step(self, *args)
    monkeypatch.setattr(DeviceSession, "step", step)
    rng = np.random.RandomState(5)
    X = [rng.randint(1, 6, size=n) for n in (3, 1, 2, 3)]
    y = [rng.randint(0, 2, size=len(x)) for x in X]
    w = rng.uniform(0.5, 2.0, size=4)
    fits = {}
    for backend in ("numpy", "cuda"):
        est = RNNTagger(cell="rnn", hidden_size=2, max_iter=1, batch_size=2, learning_rate=0.05,
                        dtype="float64", backend=backend, early_stopping=False, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge
            fits[backend] = est.fit(X, y, sample_weight=w)
    ref, got = fits["numpy"], fits["cuda"]
    assert len(device_steps) == 2
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=TOL)
    for name, p in ref.network_.params.items():
        np.testing.assert_allclose(got.network_.params[name], p, rtol=0, atol=TOL,
                                   err_msg=name)


@pytest.mark.parametrize("lm_kw", [dict(), dict(tie_weights=True, num_layers=2, skip="highway")],
                         ids=["lstm", "tied-highway-2"])
def test_language_model_fit_on_the_device_gives_the_host_fit(lm_kw, monkeypatch):
    """An RNNLanguageModel (an LSTM with dropout, its softmax over the vocabulary without the
    padding and beginning-of-document ids; also with the softmax tied to the embedding over a
    highway stack) trained by truncated back-propagation through time
    with the state carried between windows and restarted at each document: every window on the
    device with one upload (its ids) and one download (loss and norm), the carried state
    staying there; the fitted parameters and the loss curve are those of the host fit."""
    from fastrnn import RNNLanguageModel
    from fastrnn.kernels.cuda._train import DeviceSession

    counter = TransferCounter(monkeypatch)
    per_step, carried = [], []
    real_step = DeviceSession.step

    def step(self, *args):
        counter.take()
        out = real_step(self, *args)
        per_step.append(counter.take())
        carried.append(out[2] is not None)
        return out
    monkeypatch.setattr(DeviceSession, "step", step)
    texts = ["the cat.", "a."]  # two streams of 7 ids: two windows, the second carrying on
    fits = {}
    for backend in ("numpy", "cuda"):
        lm = RNNLanguageModel(hidden_size=2, embedding_dim=2, bptt=3, batch_size=2, dropout=0.2,
                              max_iter=1, learning_rate=0.05, dtype="float64", backend=backend,
                              shuffle=False, random_state=0, **lm_kw)
        fits[backend] = lm.fit(texts)
    ref, got = fits["numpy"], fits["cuda"]
    assert ref.network_.tie_weights == bool(lm_kw)
    assert len(per_step) == 2 and all(carried)
    assert per_step == [(1, 1, 0)] * len(per_step)
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=TOL)
    for name, p in ref.network_.params.items():
        np.testing.assert_allclose(got.network_.params[name], p, rtol=0, atol=TOL,
                                   err_msg=name)
