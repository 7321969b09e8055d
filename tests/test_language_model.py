"""RNNLanguageModel: blocked softmax, scoring, sampling, checkpoints, persistence."""

import math
import os
import signal
import tracemalloc
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastrnn
from fastrnn.estimators import language_model as lm_mod
from fastrnn.estimators.language_model import (
    LMNetwork,
    RNNLanguageModel,
    TrainingInterrupted,
    blocked_log_probs,
    blocked_softmax_cross_entropy,
    sample_token,
    split_at_documents,
)
from fastrnn.losses import softmax_cross_entropy
from fastrnn.nn import SequenceNetwork
from fastrnn.text import BOS, EOS, PAD
from fastrnn.train import Trainer
from conftest import central_difference

CHAR_TEXTS = [
    "the cat sat on the mat.\n",
    "a dog sat on a log.\n",
    "the cat and the dog.\n",
    "on the mat sat a cat.\n",
] * 3

WORD_TEXTS = [
    "the cat sat on the mat .",
    "the dog sat on the log .",
    "a cat saw a dog .",
    "the dog saw the cat on the mat .",
] * 3

# the network alone: these tests are about it (the n-gram part has its own, tests/test_lm_ngram.py)
SMALL = dict(hidden_size=16, embedding_dim=8, bptt=8, batch_size=4, random_state=0,
             ngram_order=None)


def small_lm(**kw):
    return RNNLanguageModel(**{**SMALL, **kw})


@pytest.fixture(scope="module")
def char_lm64():
    """A float64 character model, trained a little (deterministic, for exact comparisons)."""
    return small_lm(max_iter=4, dtype="float64", learning_rate=1e-2).fit(CHAR_TEXTS)


@pytest.fixture(scope="module")
def char_lm():
    return small_lm(max_iter=6, learning_rate=1e-2).fit(CHAR_TEXTS)


# ------------------------------------------------------------------------------------------------
# blocked softmax cross-entropy
# ------------------------------------------------------------------------------------------------

def _head_problem(N=13, F=5, V=11, seed=0):
    rng = np.random.RandomState(seed)
    return (rng.randn(N, F), rng.randn(V, F) * 0.7, rng.randn(V) * 0.3,
            rng.randint(0, V, N))


@pytest.mark.parametrize("block_rows", [1, 4, 13, None])
def test_blocked_softmax_ce_equals_unblocked(block_rows):
    h, W, b, y = _head_problem()
    loss, dh, dW, db = blocked_softmax_cross_entropy(h, W, b, y, excluded=(),
                                                     block_rows=block_rows)
    logits = h @ W.T + b
    ref, dlogits = softmax_cross_entropy(logits, y)
    assert_allclose(loss, ref, rtol=1e-12)
    assert_allclose(dh, dlogits @ W, rtol=1e-10, atol=1e-14)
    assert_allclose(dW, dlogits.T @ h, rtol=1e-10, atol=1e-14)
    assert_allclose(db, dlogits.sum(axis=0), rtol=1e-10, atol=1e-14)


def test_blocked_softmax_ce_mask_and_excluded_outputs():
    h, W, b, y = _head_problem(N=9, V=7)
    y = np.where(y < 2, 4, y)  # targets never excluded
    valid = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0], bool)
    loss, dh, dW, db = blocked_softmax_cross_entropy(h, W, b, y, valid=valid, excluded=(0, 1),
                                                     block_rows=2)
    logits = h @ W.T + b
    logits[:, [0, 1]] = -np.inf
    m = logits.max(1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(1, keepdims=True))
    ref = -logp[np.arange(9), y][valid].mean()
    assert_allclose(loss, ref, rtol=1e-12)
    d = np.exp(logp)
    d[np.arange(9), y] -= 1
    d *= valid[:, None] / valid.sum()
    assert_allclose(dh, d @ W, atol=1e-13)
    assert_allclose(dW, d.T @ h, atol=1e-13)
    assert np.all(dW[[0, 1]] == 0) and np.all(db[[0, 1]] == 0)
    assert_allclose(blocked_log_probs(h, W, b, y, excluded=(0, 1), block_rows=3),
                    logp[np.arange(9), y], rtol=1e-12)


def test_blocked_softmax_ce_gradient_finite_differences():
    h, W, b, y = _head_problem(N=6, F=3, V=5, seed=1)
    y = np.where(y == 0, 1, y)  # id 0 is excluded: never a target
    valid = np.array([1, 1, 0, 1, 1, 1], bool)

    def f(h_, W_, b_):
        return blocked_softmax_cross_entropy(h_, W_, b_, y, valid=valid, excluded=(0,),
                                             block_rows=4)[0]

    _, dh, dW, db = blocked_softmax_cross_entropy(h, W, b, y, valid=valid, excluded=(0,),
                                                  block_rows=4)
    eps = 1e-6
    for arr, grad, which in ((h, dh, 0), (W, dW, 1), (b, db, 2)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args = [h.copy(), W.copy(), b.copy()]
            args[which][idx] += eps
            up = f(*args)
            args[which][idx] -= 2 * eps
            down = f(*args)
            num[idx] = (up - down) / (2 * eps)
        assert_allclose(grad, num, rtol=1e-6, atol=1e-9)


def test_blocked_softmax_memory_stays_within_a_block():
    """A 5,000-token vocabulary over 512 rows: never a (rows, V) array, only blocks."""
    rng = np.random.RandomState(0)
    N, F, V = 512, 16, 5000
    h = rng.randn(N, F).astype(np.float32)
    W = (rng.randn(V, F) * 0.1).astype(np.float32)
    b = np.zeros(V, np.float32)
    y = rng.randint(4, V, N)
    full = N * V * 4  # one float32 (N, V) array: 10 MB
    tracemalloc.start()
    try:
        loss, *_ = blocked_softmax_cross_entropy(h, W, b, y, block_rows=32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert math.isfinite(loss)
    # block of 32 x 5000 float32 (0.64 MB) + the (V, F) gradient and its scratch (0.64 MB) + dh
    assert peak < full / 4, f"peak {peak} bytes is not far below one full logits array ({full})"


def test_lm_network_gradient_finite_differences():
    """Embedding -> LSTM -> blocked softmax head (tied or not), carried state: backward vs central
    differences."""
    for tie in (False, True):
        lm = SequenceNetwork(n_outputs=9, vocab_size=9, embedding_dim=4, hidden_size=4,
                             pooling=None, head="softmax", excluded_outputs=(PAD, BOS),
                             tie_weights=tie, dtype=np.float64, random_state=1)
        lm.head.block_rows = 5
        rng = np.random.RandomState(2)
        X = rng.randint(2, 9, (3, 4)).astype(np.int32)
        Y = rng.randint(3, 9, (3, 4))
        valid = np.ones((3, 4), bool)
        valid[1, 2] = False
        h0 = (rng.randn(1, 3, 4) * 0.3, rng.randn(1, 3, 4) * 0.3)

        def loss():
            hidden, _ = lm.forward(X, np.full(3, 4), h0)
            return lm.loss_fn(Y, valid)(hidden)[0]

        hidden, _ = lm.forward(X, np.full(3, 4), h0)
        _, dh = lm.loss_fn(Y, valid)(hidden)
        lm.backward(dh)
        grads = {k: g.copy() for k, g in lm.grads.items()}
        for name, p in lm.params.items():
            flat = p.reshape(-1)
            for i in rng.choice(flat.size, size=min(6, flat.size), replace=False):
                num = central_difference(loss, flat, i, eps=1e-6)
                assert_allclose(grads[name].reshape(-1)[i], num, rtol=1e-5, atol=1e-8,
                                err_msg=f"{name}[{i}] tie_weights={tie}")


def test_deprecated_lm_network_wraps_a_softmax_head_network():
    net = SequenceNetwork(n_outputs=9, vocab_size=9, embedding_dim=4, hidden_size=4, pooling=None,
                          dtype=np.float64, random_state=1)
    ref = SequenceNetwork(**{**net.config, "head": "softmax", "excluded_outputs": (PAD, BOS)},
                          random_state=1)
    ref.load_state_dict(net.state_dict())
    with pytest.warns(FutureWarning, match="deprecated"):
        lm = LMNetwork(net, block_rows=5)
    X = np.random.RandomState(0).randint(2, 9, (2, 3))
    Y, valid = np.roll(X, -1, axis=1), np.ones((2, 3), bool)
    got = lm.loss_fn(Y, valid)(lm.forward(X, [3, 3])[0])[0]
    want = ref.loss_fn(Y, valid)(ref.forward(X, [3, 3])[0])[0]
    assert got == want and lm.params is net.params


# ------------------------------------------------------------------------------------------------
# scoring
# ------------------------------------------------------------------------------------------------

def test_perplexity_equals_exp_mean_ce_from_predict_next(char_lm64, monkeypatch):
    monkeypatch.setattr(lm_mod, "EVAL_CHUNK", 5)  # score in chunks that carry the state
    texts = ["the cat sat.\n", "a dog on a mat and a log.\n", "Zebra!"]  # 'Z', 'b', '!' unknown
    V = len(char_lm64.vocabulary_)
    nll = []
    for doc in texts:
        for i in range(len(doc) + 1):
            probs = dict(char_lm64.predict_next(doc[:i], k=V))
            assert "<pad>" not in probs and "<bos>" not in probs
            assert_allclose(sum(probs.values()), 1.0, rtol=1e-12)
            target = doc[i] if i < len(doc) else "<eos>"
            if target not in char_lm64.vocabulary_:
                target = "<unk>"
            nll.append(-math.log(probs[target]))
    expected = math.exp(np.mean(nll))
    assert_allclose(char_lm64.perplexity(texts), expected, rtol=1e-9)
    assert_allclose(char_lm64.bits_per_token(texts), np.mean(nll) / math.log(2), rtol=1e-9)
    assert_allclose(char_lm64.score(texts), -np.mean(nll), rtol=1e-9)


def test_training_lowers_perplexity(char_lm):
    untrained = small_lm(max_iter=1, learning_rate=1e-9).fit(CHAR_TEXTS)
    assert char_lm.perplexity(CHAR_TEXTS) < 0.7 * untrained.perplexity(CHAR_TEXTS)
    assert len(char_lm.loss_curve_) == 6 and char_lm.loss_curve_[-1] < char_lm.loss_curve_[0]
    assert char_lm.n_iter_ == 6 and char_lm.stop_reason_ == "max_iter"


def test_predict_next_sorted_topk(char_lm):
    top = char_lm.predict_next("the c", k=5)
    assert len(top) == 5
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True)
    assert all(isinstance(t, str) for t, _ in top)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        char_lm.predict_next("the", k=0)


# ------------------------------------------------------------------------------------------------
# generation
# ------------------------------------------------------------------------------------------------

def test_generate_reproducible_with_random_state(char_lm):
    a = char_lm.generate("the ", max_length=40, random_state=3)
    b = char_lm.generate("the ", max_length=40, random_state=3)
    assert a == b
    others = {char_lm.generate("the ", max_length=40, random_state=s) for s in range(4, 9)}
    assert len(others | {a}) > 1
    assert len(a) <= 40


def test_topk1_and_low_temperature_equal_greedy(char_lm):
    greedy = char_lm.generate("a ", max_length=30, greedy=True)
    assert char_lm.generate("a ", max_length=30, top_k=1, random_state=0) == greedy
    assert char_lm.generate("a ", max_length=30, temperature=1e-6, random_state=1) == greedy
    assert char_lm.generate("a ", max_length=30, temperature=0) == greedy


def test_topk_never_leaves_the_top_k(char_lm):
    prompt = "the "
    out = char_lm.generate(prompt, max_length=25, top_k=3, temperature=1.5, random_state=0)
    for i, ch in enumerate(out):
        allowed = [t for t, _ in char_lm.predict_next(prompt + out[:i], k=4)
                   if t != "<unk>"][:3]
        assert ch in allowed, (i, ch, allowed)


def test_sample_token_filters():
    rng = np.random.RandomState(0)
    z = rng.randn(20)
    top3 = set(np.argsort(-z)[:3])
    draws = [sample_token(z, top_k=3, temperature=3.0, rng=rng) for _ in range(300)]
    assert set(draws) <= top3 and len(set(draws)) == 3
    # top_p below the largest probability keeps only the argmax
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert {sample_token(z, top_p=p.max() * 0.9, rng=rng) for _ in range(50)} == {int(z.argmax())}
    z[5] = -np.inf
    assert 5 not in {sample_token(z, temperature=50.0, rng=rng) for _ in range(500)}
    assert sample_token(z, greedy=True) == int(np.argmax(z))


def test_generation_stops_at_eos():
    lm = small_lm(max_iter=40, learning_rate=3e-2, batch_size=2, bptt=4).fit(["abc"] * 20)
    assert lm.generate("", max_length=50, greedy=True) == "abc"
    assert lm.predict_next("abc", k=1)[0][0] == "<eos>"


def test_generate_argument_errors(char_lm):
    with pytest.raises(ValueError, match="temperature"):
        char_lm.generate("a", temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        char_lm.generate("a", top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        char_lm.generate("a", top_p=1.5)


# ------------------------------------------------------------------------------------------------
# word level, vocabulary, pre-tokenised input
# ------------------------------------------------------------------------------------------------

def test_word_level_vocabulary_and_unknown_tokens():
    lm = small_lm(level="word", min_count=2, max_iter=2).fit(WORD_TEXTS)
    vocab = lm.vocabulary_
    assert "cat" in vocab and "." in vocab
    assert len(vocab) <= 4 + len({w for t in WORD_TEXTS for w in t.split()})
    with pytest.warns(UserWarning, match=r"\d+% of the training tokens are unknown"):
        lm_small = small_lm(level="word", max_vocab=3, max_iter=1).fit(WORD_TEXTS)
    assert len(lm_small.vocabulary_) == 7
    out = lm_small.generate("the", max_length=20, random_state=0)
    assert "<unk>" not in out
    assert all(w in lm_small.vocabulary_ for w in out.split())
    assert math.isfinite(lm_small.perplexity(["a zebra saw the giraffe ."]))


def test_pre_tokenized_input():
    docs = [t.split() for t in WORD_TEXTS]
    lm = small_lm(max_iter=2).fit(docs)
    assert lm.input_type_ == "tokens"
    out = lm.generate(["the"], max_length=5, random_state=0)
    assert isinstance(out, list) and all(isinstance(t, str) for t in out)
    assert math.isfinite(lm.perplexity(docs[:2]))
    with pytest.raises(ValueError, match="lists of tokens"):
        lm.perplexity(["the cat"])


def test_custom_tokenizer_callable():
    lm = small_lm(level=str.split, max_iter=1).fit(WORD_TEXTS)
    assert "cat" in lm.vocabulary_ and "." in lm.vocabulary_
    assert math.isfinite(lm.bits_per_token(WORD_TEXTS[:2]))


# ------------------------------------------------------------------------------------------------
# input errors
# ------------------------------------------------------------------------------------------------

def test_fit_input_errors(tmp_path):
    with pytest.raises(ValueError, match="wrap it in a list"):
        small_lm().fit("just one string")
    with pytest.raises(ValueError, match="empty"):
        small_lm().fit(["", ""])
    with pytest.raises(ValueError, match="mixes"):
        small_lm().fit(["abc", ["a", "b"]])
    with pytest.raises(ValueError, match="embedding_dim == hidden_size"):
        small_lm(tie_weights=True, embedding_dim=8, hidden_size=16).fit(CHAR_TEXTS)
    with pytest.raises(ValueError, match="needs checkpoint_path"):
        small_lm().fit(CHAR_TEXTS, resume=True)
    with pytest.raises(ValueError, match="batch_size"):
        small_lm(batch_size=64).fit(["ab"])
    with pytest.raises(ValueError, match="hidden_size"):
        small_lm(hidden_size=0).fit(CHAR_TEXTS)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        small_lm().perplexity(CHAR_TEXTS)


def test_tied_weights_share_the_embedding():
    lm = small_lm(tie_weights=True, embedding_dim=None, max_iter=2).fit(CHAR_TEXTS)
    net = lm.network_
    assert net.head.params["weight"] is net.embedding.params["weight"]
    assert "head.weight" not in net.params
    assert math.isfinite(lm.perplexity(CHAR_TEXTS))


def test_time_budget_and_early_stopping():
    lm = small_lm(max_iter=50, time_budget=1e-9).fit(CHAR_TEXTS)
    assert lm.stop_reason_ == "time_budget" and lm.n_steps_ == 1
    lm = small_lm(max_iter=200, early_stopping=True, n_iter_no_change=1, learning_rate=0.05,
                  lr_decay=1.0).fit(CHAR_TEXTS)
    assert lm.stop_reason_ == "early_stopping" and lm.n_iter_ < 200
    best = lm.best_validation_bits_per_token_
    assert best == pytest.approx(min(lm.validation_bits_per_token_))


def test_learning_rate_decays_when_validation_stalls():
    lm = small_lm(max_iter=12, learning_rate=0.2, lr_decay=0.5, optimizer="sgd")
    lm.fit(CHAR_TEXTS, validation_texts=["zzzz qqq xx"])
    lrs = [h["lr"] for h in lm.history_]
    vals = [h["val_bits"] for h in lm.history_]
    for i in range(1, len(lrs)):
        if vals[i] >= min(vals[:i]):  # no improvement -> halved (patience 0)
            assert lrs[i] == pytest.approx(lrs[i - 1] * 0.5)
        else:
            assert lrs[i] == pytest.approx(lrs[i - 1])


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_annealing_schedules_follow_the_epochs(schedule, learning_rates):
    seen = learning_rates
    lm = small_lm(max_iter=3, learning_rate=0.01, lr_schedule=schedule, min_learning_rate=1e-3)
    lm.fit(CHAR_TEXTS, validation_texts=["zzzz qqq xx"])
    n = len(seen)
    per_epoch = n // 3
    for k, lr in enumerate(seen):
        p = k / n  # chunks are of one size here, so progress = steps done / all steps
        shape = 0.5 * (1 + math.cos(math.pi * p)) if schedule == "cosine" else 1 - p
        assert lr == pytest.approx(1e-3 + (0.01 - 1e-3) * shape, rel=1e-9), (k, per_epoch)
    # a stalled validation does not halve it (that is the "plateau" schedule)
    assert all(b < a for a, b in zip(seen, seen[1:]))


def test_anneal_fraction_keeps_the_rate_until_the_last_part(learning_rates):
    seen = learning_rates
    small_lm(max_iter=4, learning_rate=0.01, lr_schedule="linear", anneal_fraction=0.25,
             min_learning_rate=0.0).fit(CHAR_TEXTS)
    n = len(seen)
    for k, lr in enumerate(seen):
        p = k / n
        want = 0.01 if p <= 0.75 else 0.01 * (1 - (p - 0.75) / 0.25)
        assert lr == pytest.approx(want, rel=1e-9, abs=1e-15), k


def test_annealing_follows_the_time_budget(monkeypatch):
    clock = iter(np.arange(0.0, 1e6, 0.25))
    monkeypatch.setattr("fastrnn.train._loop.time.perf_counter", lambda: next(clock))
    lm = small_lm(max_iter=1000, learning_rate=0.01, lr_schedule="linear", time_budget=5.0)
    lm.fit(CHAR_TEXTS)
    lrs = [h["lr"] for h in lm.history_]
    assert lm.stop_reason_ == "time_budget"
    assert lrs[-1] < 0.01 * 0.2  # annealed nearly to 0 by the end of the budget, not of max_iter


# ------------------------------------------------------------------------------------------------
# documents are independent: the state restarts at every <bos>
# ------------------------------------------------------------------------------------------------

def test_split_at_documents():
    X = np.array([[5, 6, EOS, BOS, 7, 8],
                  [BOS, 5, 5, 5, 5, 5],
                  [6, EOS, BOS, 7, EOS, BOS]])
    Y = np.concatenate([X[:, 1:], np.full((3, 1), 9)], axis=1)
    Xr, Yr, lengths, stream, fresh, last = split_at_documents(X, Y)
    assert_array_equal(lengths, [3, 3, 6, 2, 3, 1])
    assert_array_equal(stream, [0, 0, 1, 2, 2, 2])
    assert_array_equal(fresh, [False, True, True, False, True, True])
    assert_array_equal(last, [1, 2, 5])
    assert_array_equal(Xr[1], [BOS, 7, 8, PAD, PAD, PAD])
    assert_array_equal(Yr[0, :3], [6, EOS, BOS])
    assert not np.any(Xr[:, 1:] == BOS)
    # no border inside the chunk: the rows are the streams
    Xn, Yn, ln, sn, fn, lastn = split_at_documents(X[1:2], Y[1:2])
    assert ln.tolist() == [6] and fn.tolist() == [True] and lastn.tolist() == [0]


def test_training_starts_every_document_from_a_zero_state(monkeypatch):
    seen = []
    original = Trainer.step

    def step(self, X, lengths, loss_fn, state=None, dh_n=None):
        rows = state.host()  # the task describes the rows' state; host() gives the arrays
        seen.append((np.array(X), np.array(lengths), tuple(np.array(s) for s in rows)))
        return original(self, X, lengths, loss_fn, state, dh_n)

    monkeypatch.setattr(Trainer, "step", step)
    lm = small_lm(max_iter=2, bptt=6, batch_size=3).fit(CHAR_TEXTS)
    assert lm.n_steps_ == len(seen)
    n_fresh = n_carried = 0
    for X, lengths, state in seen:
        assert not np.any(X[:, 1:] == BOS)  # a <bos> only ever opens a row
        for r in range(len(X)):
            h = state[0][:, r]
            if X[r, 0] == BOS:
                assert np.all(h == 0)
                n_fresh += 1
            elif np.any(h != 0):
                n_carried += 1
    assert n_fresh > 10 and n_carried > 10


def test_streams_of_a_long_document_restart_from_a_zero_state(monkeypatch):
    # Text is scored from a zero state. In one long document, a stream used to start from zero
    # only in the first chunk of an epoch; trained a few hundred steps on carried states only,
    # a character model then scored text at 10 bits per character from a zero state (3 from a
    # carried one). Every stream must now start from zero at least once every
    # RESTART_TOKENS / bptt chunks, the streams in turn.
    from fastrnn.estimators._lm_task import RESTART_TOKENS

    seen = []
    original = Trainer.step

    def step(self, X, lengths, loss_fn, state=None, dh_n=None):
        seen.append(np.array(state.host()[0]))
        return original(self, X, lengths, loss_fn, state, dh_n)

    monkeypatch.setattr(Trainer, "step", step)
    bptt, B = 16, 3
    restart = RESTART_TOKENS // bptt
    rng = np.random.RandomState(0)
    text = "".join(rng.choice(list("abcde "), size=B * bptt * (2 * restart + 5)))
    lm = small_lm(max_iter=1, bptt=bptt, batch_size=B, hidden_size=4, embedding_dim=3,
                  shuffle=False).fit([text])
    assert lm.n_steps_ == len(seen) > 2 * restart
    assert all(h.shape[1] == B for h in seen)  # one document: one row per stream
    zero = np.array([[np.all(h[:, b] == 0) for b in range(B)] for h in seen])  # (steps, B)
    for b in range(B):
        for w in range(len(seen) - restart + 1):
            assert zero[w:w + restart, b].any(), (b, w)
    # the streams restart in turn, not all at once
    assert not np.any(zero[1:].all(axis=1))
    assert zero[1:].sum() < 0.1 * zero[1:].size


# ------------------------------------------------------------------------------------------------
# checkpoints, resuming, Ctrl-C
# ------------------------------------------------------------------------------------------------

RESUME = dict(max_iter=3, dtype="float64", dropout=0.2, recurrent_dropout=0.1, shuffle=True,
              learning_rate=1e-2)


def _fit_full(tmp_path, **kw):
    return small_lm(**RESUME, checkpoint_path=str(tmp_path / "full.ckpt"), **kw).fit(
        CHAR_TEXTS, validation_texts=CHAR_TEXTS[:2])


def test_resume_after_an_epoch_equals_uninterrupted(tmp_path):
    full = _fit_full(tmp_path)
    ckpt = str(tmp_path / "part.ckpt")
    small_lm(**{**RESUME, "max_iter": 1}, checkpoint_path=ckpt).fit(
        CHAR_TEXTS, validation_texts=CHAR_TEXTS[:2])
    resumed = small_lm(**RESUME, checkpoint_path=ckpt).fit(
        CHAR_TEXTS, validation_texts=CHAR_TEXTS[:2], resume=True)
    assert resumed.n_steps_ == full.n_steps_ and resumed.n_iter_ == 3
    for k, v in full.network_.params.items():
        assert_array_equal(resumed.network_.params[k], v, err_msg=k)
    assert resumed.validation_bits_per_token_ == full.validation_bits_per_token_


def test_ctrl_c_mid_epoch_keeps_model_and_resumes_exactly(tmp_path, monkeypatch):
    full = _fit_full(tmp_path)
    ckpt = str(tmp_path / "int.ckpt")
    original = Trainer.step
    calls = {"n": 0}
    at = full.n_steps_ // 3 + 3  # in the second epoch

    def step(self, *a, **k):
        out = original(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == at:  # Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, "step", step)
    interrupted = small_lm(**RESUME, checkpoint_path=ckpt)
    with pytest.warns(TrainingInterrupted, match="resume"):
        interrupted.fit(CHAR_TEXTS, validation_texts=CHAR_TEXTS[:2])
    monkeypatch.setattr(Trainer, "step", original)
    assert interrupted.stop_reason_ == "interrupted" and interrupted.n_steps_ == at
    assert math.isfinite(interrupted.perplexity(CHAR_TEXTS))  # usable
    assert interrupted.n_iter_ >= 1  # the best (validated) parameters are those of epoch 1
    resumed = small_lm(**RESUME, checkpoint_path=ckpt).fit(
        CHAR_TEXTS, validation_texts=CHAR_TEXTS[:2], resume=True)
    for k, v in full.network_.params.items():
        assert_array_equal(resumed.network_.params[k], v, err_msg=k)


def test_keyboard_interrupt_inside_a_step_restores_last_good_parameters(monkeypatch):
    original = Trainer.step
    calls = {"n": 0}

    def step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            for p in self.network.params.values():
                p[...] = np.nan  # a half-done update ...
            raise KeyboardInterrupt  # ... cut short
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "step", step)
    lm = small_lm(max_iter=2)
    with pytest.warns(TrainingInterrupted):
        lm.fit(CHAR_TEXTS)
    assert lm.stop_reason_ == "interrupted"
    assert all(np.all(np.isfinite(p)) for p in lm.network_.params.values())
    assert math.isfinite(lm.perplexity(CHAR_TEXTS))


def test_resume_rejects_other_texts_and_missing_checkpoint_starts_afresh(tmp_path):
    ckpt = str(tmp_path / "a.ckpt")
    lm = small_lm(max_iter=1, checkpoint_path=ckpt).fit(CHAR_TEXTS, resume=True)  # no file yet
    assert lm.n_iter_ == 1 and os.path.exists(ckpt)
    with pytest.raises(ValueError, match="other training or validation texts"):
        small_lm(max_iter=2, checkpoint_path=ckpt).fit(CHAR_TEXTS[:3], resume=True)
    with pytest.raises(ValueError, match="another architecture"):
        small_lm(max_iter=2, hidden_size=8, checkpoint_path=ckpt).fit(CHAR_TEXTS, resume=True)
    # a checkpoint loads as a model (the best one so far)
    loaded = fastrnn.load(ckpt)
    assert_allclose(loaded.perplexity(CHAR_TEXTS), lm.perplexity(CHAR_TEXTS), rtol=1e-6)


def test_resume_inside_an_epoch_needs_the_same_streams(tmp_path):
    ckpt = str(tmp_path / "t.ckpt")
    small_lm(max_iter=3, time_budget=1e-9, checkpoint_path=ckpt).fit(CHAR_TEXTS)  # stops at step 1
    with pytest.raises(ValueError, match="batch_size=4, bptt=8"):
        small_lm(max_iter=3, batch_size=2, checkpoint_path=ckpt).fit(CHAR_TEXTS, resume=True)
    resumed = small_lm(max_iter=1, checkpoint_path=ckpt).fit(CHAR_TEXTS, resume=True)
    assert resumed.n_iter_ == 1 and resumed.stop_reason_ == "max_iter"


# ------------------------------------------------------------------------------------------------
# save / load
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level,texts", [("char", CHAR_TEXTS), ("word", WORD_TEXTS)])
def test_save_load_round_trip(tmp_path, level, texts):
    lm = small_lm(level=level, max_iter=2, min_count=1).fit(texts)
    path = tmp_path / f"{level}.fastrnn"
    lm.save(path)
    loaded = fastrnn.load(path)
    assert isinstance(loaded, RNNLanguageModel)
    assert loaded.vocabulary_ == lm.vocabulary_
    assert loaded.get_params()["level"] == level
    for k, v in lm.network_.params.items():
        assert_array_equal(loaded.network_.params[k], v)
    assert loaded.perplexity(texts) == lm.perplexity(texts)
    assert (loaded.generate(texts[0][:4], max_length=15, random_state=1)
            == lm.generate(texts[0][:4], max_length=15, random_state=1))
    assert loaded.predict_next(texts[1][:3], k=3) == lm.predict_next(texts[1][:3], k=3)
    assert loaded.history_ == lm.history_ and loaded.n_iter_ == lm.n_iter_


def test_saved_custom_tokenizer_needs_it_again(tmp_path):
    lm = small_lm(level=str.split, max_iter=1).fit(WORD_TEXTS)
    lm.save(tmp_path / "m.fastrnn")
    loaded = fastrnn.load(tmp_path / "m.fastrnn")
    with pytest.raises(ValueError, match="set_params"):
        loaded.perplexity(WORD_TEXTS)
    loaded.set_params(level=str.split)
    assert loaded.perplexity(WORD_TEXTS) == lm.perplexity(WORD_TEXTS)


def test_save_is_atomic_and_keeps_the_old_file(tmp_path, monkeypatch):
    lm = small_lm(max_iter=1).fit(CHAR_TEXTS)
    path = tmp_path / "m.fastrnn"
    lm.save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OSError):
        lm.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.fastrnn"]


def test_fitted_model_holds_no_activation_cache(char_lm):
    char_lm.perplexity(CHAR_TEXTS[:1])
    char_lm.generate("a", max_length=3, random_state=0)
    assert char_lm.network_.rnn._cache is None and char_lm.network_.embedding._ids is None


def test_sklearn_params_and_clone():
    from sklearn.base import clone

    lm = small_lm(level="word", dropout=0.1)
    c = clone(lm)
    assert c.get_params() == lm.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c.fit(WORD_TEXTS[:4])
    assert not hasattr(lm, "vocabulary_")


def test_checkpoint_path_never_overwrites_a_saved_model(tmp_path):
    model_path = tmp_path / "model.fastrnn"
    small_lm(max_iter=1).fit(CHAR_TEXTS).save(model_path)
    before = model_path.read_bytes()
    with pytest.raises(ValueError, match="not a training checkpoint"):
        small_lm(max_iter=1, checkpoint_path=str(model_path)).fit(CHAR_TEXTS)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        small_lm(max_iter=1, checkpoint_path=str(model_path)).fit(CHAR_TEXTS, resume=True)
    assert model_path.read_bytes() == before


@pytest.mark.slow
def test_demo_lm_example_trains_and_samples():
    """examples/demo_lm.py on the real Shakespeare texts, with a 25-second budget."""
    from _scripts import load_script
    from fastrnn.datasets import DatasetUnavailableError

    demo = load_script("examples/demo_lm.py", "demo_lm")
    try:
        bits, samples = demo.main(budget=25.0, verbose=0)
    except DatasetUnavailableError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert bits < 3.5  # a character unigram model of English needs about 4.1 bits
    assert sorted(samples) == [0.5, 0.8, 1.0] and all(samples.values())


# ------------------------------------------------------------------------------------------------
# refusing what would train or sample nonsense; truthful messages
# ------------------------------------------------------------------------------------------------

def test_a_vocabulary_without_regular_tokens_is_refused():
    from collections import Counter

    top, n = Counter("".join(CHAR_TEXTS)).most_common(1)[0]
    lm = small_lm(min_count=10 ** 6, backend="numpy")
    with pytest.raises(ValueError, match=rf"no regular token.*min_count=1000000.*{top!r}, appears "
                                         rf"{n} times.*Lower min_count"):
        lm.fit(CHAR_TEXTS)
    assert not hasattr(lm, "vocabulary_") and not hasattr(lm, "network_")
    with pytest.raises(ValueError, match=r"no regular token"):
        small_lm(level="word", min_count=100, backend="numpy").fit(WORD_TEXTS)


def test_mostly_unknown_training_tokens_warn_with_the_share():
    texts = ["abcdefghijklxx", "mnopqrstuvwx"]
    # 'x' appears 3 times, every other character once: 23 of 26 tokens are unknown
    with pytest.warns(UserWarning, match=r"88% of the training tokens .*unknown.*min_count=2"):
        lm = small_lm(min_count=2, max_iter=1, batch_size=2, backend="numpy").fit(texts)
    assert lm.vocabulary_.tokens[4:] == ["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a normal vocabulary does not warn
        small_lm(min_count=2, max_iter=1, backend="numpy").fit(CHAR_TEXTS)


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=float("inf")), r"temperature must be a finite number >= 0.*inf"),
    (dict(temperature=float("nan")), r"temperature must be a finite number >= 0.*nan"),
    (dict(temperature=True), r"temperature.*True"),
    (dict(top_p=float("nan")), r"top_p must be None or a number in \(0, 1\].*nan"),
    (dict(top_p=0.0), r"top_p.*0\.0"),
    (dict(top_p=True), r"top_p.*True"),
    (dict(top_k=2.0), r"top_k must be None or a positive integer.*2\.0"),
    (dict(random_state=-1), r"random_state must be .*got -1"),
])
def test_sampling_options_are_validated(kwargs, match):
    lm = small_lm(max_iter=1, backend="numpy").fit(["abc"] * 4)
    with pytest.raises(ValueError, match=match):
        lm.generate("a", max_length=3, **kwargs)
    if "random_state" not in kwargs:
        with pytest.raises(ValueError, match=match):
            sample_token(np.zeros(5), **{"temperature": 1.0, **kwargs})


def test_perplexity_of_a_diverged_model_is_inf_not_an_error():
    lm = small_lm(max_iter=1, backend="numpy").fit(CHAR_TEXTS)
    lm.network_.params["head.bias"][...] = 0.0
    lm.network_.params["head.bias"][4] = 1e4  # one token takes all the probability
    ppl = lm.perplexity(CHAR_TEXTS)
    assert isinstance(ppl, float) and ppl == math.inf
    assert math.isfinite(lm.bits_per_token(CHAR_TEXTS)) and lm.bits_per_token(CHAR_TEXTS) > 1000


def test_a_ctrl_c_inside_the_first_epoch_does_not_claim_a_checkpoint(tmp_path, ctrl_c_at_step):
    ckpt = tmp_path / "run.ckpt"
    ctrl_c_at_step(2, inside=True)
    with pytest.warns(TrainingInterrupted) as record:
        small_lm(max_iter=2, checkpoint_path=str(ckpt), backend="numpy").fit(CHAR_TEXTS)
    msg = str(record[0].message)
    assert not ckpt.exists()
    assert "can be resumed" not in msg and "no checkpoint was written" in msg


def test_a_ctrl_c_inside_a_later_step_points_to_the_last_checkpoint(tmp_path, ctrl_c_at_step):
    ckpt = tmp_path / "run.ckpt"
    steps = small_lm(max_iter=1, backend="numpy").fit(CHAR_TEXTS).n_steps_
    ctrl_c_at_step(steps + 2, inside=True)  # in the second epoch
    with pytest.warns(TrainingInterrupted, match=r"can be resumed from .*run\.ckpt.*end of epoch "
                                                 r"1.*steps since then are lost"):
        small_lm(max_iter=3, checkpoint_path=str(ckpt), backend="numpy").fit(CHAR_TEXTS)
    assert fastrnn.load(ckpt).n_iter_ == 1


def test_a_directory_as_checkpoint_path_is_named_a_directory(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint_path .* is a directory.*file path"):
        small_lm(max_iter=1, checkpoint_path=str(tmp_path), backend="numpy").fit(CHAR_TEXTS)
    with pytest.raises(ValueError, match=r"is a directory"):
        small_lm(max_iter=1, checkpoint_path=str(tmp_path), backend="numpy").fit(
            CHAR_TEXTS, resume=True)
