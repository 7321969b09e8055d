"""RNNSeq2Seq and Seq2SeqNetwork: gradients, masking, decoding, persistence, errors."""

import itertools
import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastrnn
from fastrnn import RNNSeq2Seq, SequenceVectorizer
from fastrnn.estimators.seq2seq import _beam_search, _greedy
from fastrnn.losses import sequence_softmax_cross_entropy
from fastrnn.nn.seq2seq import BOS, Seq2SeqNetwork
from conftest import central_difference

# the small fits of these tests stop before they converge, by design
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# ---------------------------------------------------------------------------------------------
# the network: exact gradients
# ---------------------------------------------------------------------------------------------

GRAD_CASES = {
    "dot": dict(attention="dot"),
    "general": dict(attention="general"),
    "additive": dict(attention="additive"),
    "none": dict(attention=None),
    "bridge-lstm": dict(attention="general", bidirectional=True),
    "bridge-gru-tokens": dict(attention="additive", bidirectional=True, cell="gru",
                              tokens=True),
    "input-feeding": dict(attention="general", input_feeding=True),
    "input-feeding-2-layers": dict(attention="additive", input_feeding=True, bidirectional=True,
                                   num_layers=2, cell="rnn"),
}


def _problem(backend="numpy", tokens=False, dtype=np.float64, seed=0, **kw):
    """A small network with random weights, a batch of sources of different lengths (NaN in the
    padded source steps of float input) and teacher-forcing targets."""
    rng = np.random.RandomState(seed)
    B, S, T, V = 3, 5, 4, 7
    net = Seq2SeqNetwork(V, n_features=None if tokens else 2, vocab_size=6 if tokens else None,
                         embedding_dim=3 if tokens else None, target_embedding_dim=3,
                         hidden_size=4, dtype=dtype, backend=backend, random_state=seed, **kw)
    for p in net.params.values():  # away from the initialisation's zeros and symmetries
        p[...] += 0.3 * rng.randn(*p.shape)
    L = np.array([5, 3, 1])
    if tokens:
        src = rng.randint(2, 6, (B, S))
        src[np.arange(S)[None, :] >= L[:, None]] = 0
    else:
        src = rng.randn(B, S, 2)
        src[np.arange(S)[None, :] >= L[:, None]] = np.nan
    ylen = np.array([4, 2, 3])
    yin = rng.randint(2, V, (B, T))
    yin[:, 0] = BOS
    yout = rng.randint(1, V, (B, T))
    return net, src.astype(dtype) if not tokens else src, L, yin, yout, ylen


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_gradients_match_central_differences(case, backend):
    kw = dict(GRAD_CASES[case])
    net, src, L, yin, yout, ylen = _problem(backend, **kw)

    def loss():
        z, _ = net.forward((src, yin, ylen), L)
        return sequence_softmax_cross_entropy(z, yout, ylen)[0]

    z, _ = net.forward((src, yin, ylen), L)
    _, dz = sequence_softmax_cross_entropy(z, yout, ylen)
    dsrc = net.backward(dz)
    grads = {k: g.copy() for k, g in net.grads.items()}
    rng = np.random.RandomState(1)
    for name, p in net.params.items():
        flat = list(np.ndindex(p.shape))
        picks = [flat[i] for i in rng.choice(len(flat), min(len(flat), 6), replace=False)]
        num = np.array([central_difference(loss, p, i, eps=1e-5) for i in picks])
        ana = np.array([grads[name][i] for i in picks])
        scale = max(np.abs(grads[name]).max(), 1e-8)
        assert np.abs(num - ana).max() / scale < 1e-6, (name, num, ana)
    if not kw.get("tokens"):  # the source gradient: finite, zero at the padded steps
        assert np.isfinite(dsrc).all()
        pad = np.arange(src.shape[1])[None, :] >= L[:, None]
        assert (dsrc[pad] == 0).all()
        b, t, f = 0, 2, 1
        srcf = src.copy()

        def loss_src():
            z, _ = net.forward((srcf, yin, ylen), L)
            return sequence_softmax_cross_entropy(z, yout, ylen)[0]

        num = central_difference(loss_src, srcf, (b, t, f), eps=1e-5)
        assert abs(num - dsrc[b, t, f]) <= 1e-6 * max(abs(num), 1e-3)


def test_dot_attention_refuses_a_bidirectional_encoder():
    with pytest.raises(ValueError, match=r"attention='dot'.*bidirectional encoder gives 2 \* "
                                         r"hidden_size = 8 .* Use attention='general'"):
        Seq2SeqNetwork(5, n_features=2, hidden_size=4, bidirectional=True, attention="dot")


# ---------------------------------------------------------------------------------------------
# the network: padding, streaming, scheduled sampling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["general", "additive", "input-feeding", "bridge-lstm"])
def test_padded_source_steps_are_never_read(case):
    kw = dict(GRAD_CASES[case])
    net, src, L, yin, yout, ylen = _problem(**kw)
    net.eval()
    clean = np.where(np.isnan(src), 0.0, src)
    noisy = np.where(np.isnan(src), 1e3, src)
    ref = net.logits((clean, yin, ylen), L)
    assert np.isfinite(ref).all()
    for s in (src, noisy):  # NaN or large values in the padding change nothing
        assert_array_equal(net.logits((s, yin, ylen), L), ref)
    # each sequence alone gives what it gets in the batch (its real steps only)
    for b in range(len(L)):
        one = net.logits((clean[b:b + 1, :L[b]], yin[b:b + 1], ylen[b:b + 1]), L[b:b + 1])
        assert_allclose(one[0, :ylen[b]], ref[b, :ylen[b]], rtol=1e-10, atol=1e-12)
    # the attention gives the padded source steps no weight
    Henc, h0 = net.encode(src, L)
    dec = net.start(Henc, h0, L)
    net.attend_step(np.full(len(L), BOS), dec)
    if dec.alpha is not None:
        pad = np.arange(src.shape[1])[None, :] >= L[:, None]
        assert (dec.alpha[pad] == 0).all()
        assert_allclose(dec.alpha.sum(axis=1), 1.0)


@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize("case", ["general", "input-feeding", "none", "bridge-lstm"])
def test_decoding_steps_equal_the_full_sequence(case, streaming, backend):
    kw = dict(GRAD_CASES[case])
    net, src, L, yin, yout, ylen = _problem(backend, **kw)
    net.eval()
    ref = net.logits((src, yin, ylen), L)
    Henc, h0 = net.encode(src, L)
    dec = net.start(Henc, h0, L, streaming=streaming)
    assert (dec.state is not None) == streaming
    for t in range(yin.shape[1]):
        logp = net.step_log_probs(yin[:, t], dec)
        z = ref[:, t].astype(np.float64)
        z[:, BOS] = -np.inf
        want = z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - z.max(1, keepdims=True)
        real = t < ylen
        assert_allclose(logp[real], want[real], rtol=1e-9, atol=1e-9)


def test_scheduled_sampling_reads_the_models_own_tokens():
    # with rate 1 every step after the first reads the most probable token of the step before:
    # the logits equal those of teacher forcing on the greedy tokens
    net, src, L, yin, yout, ylen = _problem(attention="general")
    net.train()
    full = np.full_like(ylen, yin.shape[1])
    z, _ = net.forward((src, yin, full), L, sampling=1.0)
    greedy = np.argmax(z, axis=2)
    fed = np.concatenate([yin[:, :1], greedy[:, :-1]], axis=1)
    net.eval()
    assert_allclose(z, net.logits((src, fed, full), L), rtol=1e-10, atol=1e-10)
    assert not np.array_equal(fed, yin)  # the check is not vacuous


# ---------------------------------------------------------------------------------------------
# the estimator: a small trained model
# ---------------------------------------------------------------------------------------------


def _reverse_task(n=300, seed=0, low=2, high=7):
    rng = np.random.RandomState(seed)
    X = [rng.randint(low, high, size=rng.randint(2, 6)) for _ in range(n)]
    Y = [["abcdefgh"[v] for v in x[::-1]] for x in X]
    return X, Y


@pytest.fixture(scope="module")
def reverser():
    X, Y = _reverse_task()
    model = RNNSeq2Seq(hidden_size=24, max_iter=25, learning_rate=0.01, dtype="float64",
                       early_stopping=False, random_state=0).fit(X, Y)
    return model, X, Y


@pytest.fixture(scope="module")
def weak_model():
    # a half-trained model on a task with ambiguity: greedy and beam search disagree often
    rng = np.random.RandomState(3)
    X = [rng.randint(2, 6, size=rng.randint(2, 5)) for _ in range(200)]
    Y = [[int(v) for v in x if rng.rand() < 0.7] + [int(x[0])] for x in X]
    model = RNNSeq2Seq(hidden_size=8, max_iter=3, dtype="float64", bidirectional=False,
                       attention="additive", input_feeding=True, early_stopping=False,
                       random_state=0).fit(X, Y)
    return model, X, Y


def test_learns_to_reverse(reverser):
    model, X, Y = reverser
    Xt, Yt = _reverse_task(100, seed=1)
    assert model.score(Xt, Yt) > 0.9
    pred = model.predict(Xt[:5])
    assert all(isinstance(p, list) and all(isinstance(v, str) for v in p) for p in pred)
    assert model.vocabulary_ == ["<bos>", "<eos>", "c", "d", "e", "f", "g"]  # ids 2..6
    assert model.transform(Xt).shape == (100, 48)


def test_decoded_scores_equal_score_sequences(weak_model):
    # the streamed decoder (one compiled step per target step) scores what the full forward does
    model, X, _ = weak_model
    data = model._validate_X(X, reset=False)
    for k in (1, 4):
        ids, scores = model._decode(data, k, 2 * model.max_target_length_)
        pred = [model.classes_[s - 2].tolist() for s in ids]
        assert_allclose(scores, model.score_sequences(X, pred), rtol=1e-9)


def test_beam_of_width_one_is_greedy(weak_model):
    model, X, _ = weak_model
    data = model._validate_X(X, reset=False)
    Xb, L = data.batch(np.arange(len(X)))
    Henc, h0 = model.network_.encode(Xb, L)
    g, gs = _greedy(model.network_, Henc, h0, L, 12)
    b, bs = _beam_search(model.network_, Henc, h0, L, 12, 1)
    assert all(np.array_equal(x, y) for x, y in zip(g, b))
    assert_allclose(bs, gs, rtol=1e-12)


def test_beam_is_never_less_probable_than_greedy(weak_model):
    model, X, _ = weak_model
    greedy = model.predict(X)
    for k in (2, 5):
        beam = model.predict(X, beam_width=k)
        sg, sb = model.score_sequences(X, greedy), model.score_sequences(X, beam)
        assert (sb >= sg - 1e-9).all()
    assert (sb > sg + 1e-6).any()  # the beam finds better sequences on some inputs


def test_wide_beam_finds_the_most_probable_sequence(weak_model):
    # a beam as wide as the number of hypotheses is an exhaustive search: compare with the
    # scores of every sequence of up to 3 tokens
    model, X, _ = weak_model
    tokens = model.classes_.tolist()
    cands = [list(c) for n in range(4) for c in itertools.product(tokens, repeat=n)]
    for x in X[:4]:
        scores = model.score_sequences([x] * len(cands), cands)
        best = cands[int(np.argmax(scores))]
        got = model.predict([x], beam_width=len(tokens) ** 3 + 1, max_length=3)[0]
        assert model.score_sequences([x], [got])[0] == pytest.approx(scores.max(), rel=1e-9)
        assert got == best


def test_batch_equals_one_at_a_time(reverser):
    model, X, Y = reverser
    pred = model.predict(X[:20], beam_width=3)
    scores = model.score_sequences(X[:20], Y[:20])
    for i in range(20):
        assert model.predict(X[i:i + 1], beam_width=3) == [pred[i]]
        assert_allclose(model.score_sequences(X[i:i + 1], Y[i:i + 1]), scores[i:i + 1],
                        rtol=1e-10)


def test_unknown_target_token_has_probability_zero(reverser):
    model, X, Y = reverser
    s = model.score_sequences(X[:2], [Y[0], Y[1] + ["zz"]])
    assert np.isfinite(s[0]) and s[0] < 0 and s[1] == -np.inf


def test_attention_weights_sum_to_one(reverser):
    model, X, _ = reverser
    w = model.attention_weights(X[:3])
    pred = model.predict(X[:3])
    for wi, x, p in zip(w, X[:3], pred):
        assert wi.shape == (len(p) + 1, len(x))
        assert_allclose(wi.sum(axis=1), 1.0)
    # reversing: the first output step looks at the last input step most
    assert all(int(np.argmax(wi[0])) == len(x) - 1 for wi, x in zip(w, X[:3]))


def test_save_load_round_trip(reverser, tmp_path):
    model, X, Y = reverser
    path = tmp_path / "s2s.frnn"
    model.save(path)
    loaded = fastrnn.load(path)
    assert isinstance(loaded, RNNSeq2Seq)
    assert loaded.get_params() == model.get_params()
    assert loaded.predict(X[:30], beam_width=3) == model.predict(X[:30], beam_width=3)
    assert_array_equal(loaded.score_sequences(X[:30], Y[:30]), model.score_sequences(X[:30],
                                                                                      Y[:30]))
    assert_array_equal(loaded.classes_, model.classes_)


def test_a_damaged_file_is_refused(reverser, tmp_path):
    from fastrnn._persist import save_model

    model, _, _ = reverser
    meta, arrays = model._to_saved()
    arrays["attr/classes_"] = arrays["attr/classes_"][:-1]
    save_model(tmp_path / "bad.frnn", "RNNSeq2Seq", meta, arrays)
    with pytest.raises(fastrnn.ModelFileError, match="classes_ holds 4 tokens, but the "
                                                     "network's output layer has 7 outputs"):
        fastrnn.load(tmp_path / "bad.frnn")
    meta, arrays = model._to_saved()
    arrays["network/out.weight"] = arrays["network/out.weight"][:, :3]
    save_model(tmp_path / "bad2.frnn", "RNNSeq2Seq", meta, arrays)
    with pytest.raises(fastrnn.ModelFileError, match="hidden_size is 24"):
        fastrnn.load(tmp_path / "bad2.frnn")


# ---------------------------------------------------------------------------------------------
# the estimator: training machinery
# ---------------------------------------------------------------------------------------------


def test_random_state_reproducible_and_float_input():
    rng = np.random.RandomState(0)
    X = [rng.randn(rng.randint(2, 6), 3) for _ in range(40)]
    Y = [["+" if v > 0 else "-" for v in x[:, 0]] for x in X]
    kw = dict(hidden_size=6, max_iter=2, random_state=5, attention="additive")
    a, b = RNNSeq2Seq(**kw).fit(X, Y), RNNSeq2Seq(**kw).fit(X, Y)
    for k, v in a.network_.params.items():
        assert_array_equal(v, b.network_.params[k])
    c = RNNSeq2Seq(**dict(kw, random_state=6)).fit(X, Y)
    assert not np.array_equal(a.network_.params["out.weight"], c.network_.params["out.weight"])
    assert a.n_features_in_ == 3 and a.feature_mean_.shape == (3,)


def test_early_stopping_restores_the_best_weights(capsys):
    X, Y = _reverse_task(160)
    model = RNNSeq2Seq(hidden_size=8, max_iter=8, early_stopping=True, n_iter_no_change=2,
                       learning_rate=0.2, lr_schedule="constant", verbose=1, random_state=0)
    model.fit(X[:120], Y[:120], validation_data=(X[120:], Y[120:]))
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    # the weights kept are those of the best epoch, which score on the validation data as then
    data = model._validate_X(X[120:], reset=False)
    targets = model._validate_targets(Y[120:], data, reset=False)
    assert model._validation_score(data, targets, None) == pytest.approx(
        model.best_validation_score_, rel=1e-6)
    assert model.validation_scores_[-1] < model.best_validation_score_  # not vacuous
    assert "epoch" in capsys.readouterr().err.lower()


def test_validation_fraction_split():
    X, Y = _reverse_task(200)
    model = RNNSeq2Seq(hidden_size=8, max_iter=2, early_stopping=True, validation_fraction=0.2,
                       random_state=0).fit(X, Y)
    assert len(model.validation_scores_) == 2 and model.t_ == 2 * 160


def test_pipeline_with_text():
    from sklearn.pipeline import make_pipeline

    words = ["abc", "bca", "cab", "aab", "bba", "ccb", "acb", "bac"] * 10
    targets = [w[::-1].upper() for w in words]
    pipe = make_pipeline(SequenceVectorizer(analyzer="char"),
                         RNNSeq2Seq(hidden_size=16, max_iter=30, learning_rate=0.02,
                                    random_state=0))
    pipe.fit(words, targets)
    assert pipe.predict(["abc"]) == [list("CBA")]
    assert pipe.score(words, targets) > 0.9


def test_scheduled_sampling_and_input_feeding_fit():
    X, Y = _reverse_task(100)
    model = RNNSeq2Seq(hidden_size=8, max_iter=2, scheduled_sampling=0.3, input_feeding=True,
                       cell="gru", random_state=0).fit(X, Y)
    assert np.isfinite(model.loss_curve_).all()
    assert len(model.predict(X[:3], beam_width=2)) == 3


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("y, match", [
    (None, "requires y to be passed, but the target y is None"),
    ("abc", "y must be a list of target sequences, got a single string 'abc'"),
    ([["a"]] * 3, "X has 4 sequences but y has 3 target sequences"),
    ([["a"], [["x"]], ["b"], ["c"]], r"y\[1\] holds \['x'\], which is not hashable"),
    ([["a"], None, ["b"], ["c"]], r"y\[1\] = None is not a sequence"),
    ([[], [], [], []], "y holds no token at all"),
    ([["a"], [float("nan")], ["b"], ["c"]], r"y\[1\] holds nan"),
    ([["a"], np.zeros((2, 2)), ["b"], ["c"]], r"y\[1\] has shape \(2, 2\); a target sequence"),
])
def test_bad_targets(y, match):
    X = [np.array([2, 3]), np.array([3]), np.array([2, 2, 3]), np.array([4])]
    with pytest.raises(ValueError, match=match):
        RNNSeq2Seq(max_iter=1).fit(X, y)


def test_single_numbers_are_one_token_targets():
    X = [np.array([2, 3]), np.array([3]), np.array([2, 2, 3]), np.array([4])] * 5
    model = RNNSeq2Seq(hidden_size=4, max_iter=1, random_state=0).fit(X, np.arange(20) % 3)
    assert model.classes_.tolist() == [0, 1, 2]
    assert_array_equal(model.score_sequences(X[:2], [1, [2]]),
                       model.score_sequences(X[:2], [[1], np.array([2])]))


def test_bad_decoding_arguments(reverser):
    model, X, _ = reverser
    with pytest.raises(ValueError, match=r"beam_width must be a positive integer, got 0\. Use 1"):
        model.predict(X[:2], beam_width=0)
    with pytest.raises(ValueError, match=r"max_length must be None or an integer >= 0 .*got -1"):
        model.predict(X[:2], max_length=-1)
    with pytest.raises(ValueError, match=r"X holds token id 99, out of range"):
        model.predict([np.array([99, 2])])
    with pytest.raises(NotImplementedError, match="Use predict"):
        model.init_state()


def test_unknown_token_in_validation_data_and_bad_options():
    X, Y = _reverse_task(30)
    with pytest.raises(ValueError, match=r"y holds token\(s\) \['z'\] that the training targets "
                                         r"do not have"):
        RNNSeq2Seq(max_iter=1).fit(X[:20], Y[:20], validation_data=(X[20:], [["z"]] * 10))
    with pytest.raises(ValueError, match=re.escape("attention='dot'")):
        RNNSeq2Seq(attention="dot", bidirectional=True, max_iter=1).fit(X, Y)
    with pytest.raises(ValueError, match="'attention' parameter"):
        RNNSeq2Seq(attention="cosine").fit(X, Y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        RNNSeq2Seq().predict(X)


def test_pickle_and_fit_transform(reverser):
    import pickle

    model, X, Y = reverser
    again = pickle.loads(pickle.dumps(model))
    assert again.predict(X[:20], beam_width=2) == model.predict(X[:20], beam_width=2)
    kw = dict(hidden_size=6, max_iter=2, random_state=0)
    Z = RNNSeq2Seq(**kw).fit_transform(X[:50], Y[:50])
    assert_array_equal(Z, RNNSeq2Seq(**kw).fit(X[:50], Y[:50]).transform(X[:50]))


# ---------------------------------------------------------------------------------------------
# the G2P benchmark's metrics
# ---------------------------------------------------------------------------------------------


def _bench():
    from _scripts import load_script

    return load_script("benchmarks/seq2seq_g2p.py", "seq2seq_g2p")


def test_benchmark_edit_distance_against_recursion():
    from functools import lru_cache

    bench = _bench()

    def reference(a, b):
        @lru_cache(maxsize=None)
        def d(i, j):  # the definition: cheapest way to turn a[:i] into b[:j]
            if i == 0 or j == 0:
                return i + j
            return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
        return d(len(a), len(b))

    rng = np.random.RandomState(0)
    for _ in range(200):
        a = tuple(rng.randint(0, 3, rng.randint(0, 7)))
        b = tuple(rng.randint(0, 3, rng.randint(0, 7)))
        assert bench.edit_distance(a, b) == reference(a, b)
    wer, per = bench.error_rates([["A", "B"], ["C"]], [["A", "B"], ["D", "E"]])
    assert wer == 0.5 and per == 2 / 4


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    from fastrnn.datasets import DatasetUnavailableError

    bench = _bench()
    out = tmp_path / "g2p.json"
    try:
        result = bench.run(bench.parse_args(["--smoke", "--json", str(out)]))
    except DatasetUnavailableError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert out.exists() and result["n_train"] == 300 and result["epochs"] <= 2
    for r in result["decoding"].values():
        assert 0 <= r["wer"] <= 1 and r["per"] >= 0
