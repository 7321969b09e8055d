"""The language model's n-gram part: :class:`fastrnn.text.KneserNeyModel` against interpolated
modified Kneser-Ney written from its definition with dictionaries, and the mixture of
:class:`fastrnn.estimators.RNNLanguageModel` against the two models' own probabilities."""

import copy
import math
from collections import Counter, defaultdict

import numpy as np
import pytest

import fastrnn
from fastrnn.estimators import RNNLanguageModel
from fastrnn.estimators import _lm_ngram
from fastrnn.text import BOS, EOS, PAD, KneserNeyModel, Vocabulary

TOY = ["the cat sat on the mat.", "a cat and a hat", "that hat is the cat's hat!",
       "mat, hat, cat, sat", "the end"]


def encode(vocab, texts):
    return [vocab.encode(list(t), add_bos=True, add_eos=True) for t in texts]


def reference_kn(docs, order, V):
    """``prob(history, id)`` of interpolated modified Kneser-Ney, from its definition (Chen and
    Goodman 1999) with dictionaries; ``history`` holds at least ``order - 1`` ids."""
    counts = [None] + [Counter() for _ in range(order)]
    for d in docs:
        s = [BOS] * (order - 2) + list(d) if order > 1 else list(d)
        for i in range(max(order - 1, 1), len(s)):
            counts[order][tuple(s[i - order + 1:i + 1])] += 1
    for n in range(order - 1, 0, -1):  # continuation counts
        for gram in counts[n + 1]:
            counts[n][gram[1:]] += 1
    tables = [None]
    for n in range(1, order + 1):
        cc = Counter(counts[n].values())
        y = cc[1] / (cc[1] + 2 * cc[2]) if cc[1] and cc[2] else 0.5
        d = {c: c - (c + 1) * y * cc[c + 1] / cc[c] if cc[c] else -1.0 for c in (1, 2, 3)}
        if not all(0 < d[c] <= c for c in d):  # too few counts: one discount for all
            d = {c: y for c in d}
        total, mass = defaultdict(float), defaultdict(float)
        for gram, c in counts[n].items():
            total[gram[:-1]] += c
            mass[gram[:-1]] += d[min(c, 3)]
        tables.append((counts[n], d, total, mass))

    def prob(history, token):
        if token in (PAD, BOS):
            return 0.0
        p = 1.0 / (V - 2)
        for n in range(1, order + 1):
            ctx = tuple(history[len(history) - n + 1:]) if n > 1 else ()
            grams, d, total, mass = tables[n]
            if total.get(ctx, 0.0) > 0:
                c = grams.get(ctx + (token,), 0)
                p = (max(c - (d[min(c, 3)] if c else 0.0), 0.0) + mass[ctx] * p) / total[ctx]
        return p

    return prob


@pytest.fixture(scope="module")
def toy():
    vocab = Vocabulary.build([list(t) for t in TOY])
    return vocab, encode(vocab, TOY)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_kneser_ney_matches_a_definition_with_dictionaries(toy, order):
    vocab, docs = toy
    V = len(vocab)
    kn = KneserNeyModel(order).fit(docs, V)
    prob = reference_kn(docs, order, V)
    test = encode(vocab, ["the hat sat.", "a zebra"])  # 'z', 'b' and 'r' are unknown
    slow = []
    for d in test:
        padded = [BOS] * max(order - 2, 0) + list(d)
        start = max(order - 2, 0)
        slow += [prob(padded[:i], padded[i]) for i in range(start + 1, len(padded))]
    np.testing.assert_allclose(kn.token_proba(test), slow, rtol=1e-12)
    # the whole distribution after each context, too
    for d in test:
        padded = [BOS] * max(order - 1, 0) + list(d[1:])
        for i in range(max(order - 1, 0), len(padded)):
            ctx = padded[i - order + 1:i] if order > 1 else []
            full = kn.next_proba(np.array([ctx], np.int64).reshape(1, order - 1))[0]
            want = [prob([BOS] * order + ctx, w) for w in range(V)]
            np.testing.assert_allclose(full, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("history", ["", "t", "th", "zz", "at", " c"])
def test_next_token_distribution_sums_to_one(toy, history):
    vocab, docs = toy
    kn = KneserNeyModel(4).fit(docs, len(vocab))
    ids = [BOS] * 3 + [vocab.token_to_id(c) for c in history]
    p = kn.next_proba(np.array([ids[-3:]]))[0]
    assert p[PAD] == p[BOS] == 0.0
    assert np.all(np.delete(p, [PAD, BOS]) > 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_kneser_ney_learns_a_repeated_text():
    vocab = Vocabulary.build([list("abcd")])
    kn = KneserNeyModel(5).fit(encode(vocab, ["abcd" * 500]), len(vocab))
    bits = lambda t: -np.mean(np.log2(kn.token_proba(encode(vocab, [t]))))  # noqa: E731
    assert bits("abcd" * 100) < 0.2  # deterministic after the first letters
    assert bits("dcba" * 50) > 1.0  # a text it has never seen


def test_kneser_ney_refuses_codes_that_overflow_and_empty_input():
    with pytest.raises(ValueError, match=r"does not fit the 64-bit n-gram codes; use order <= 4"):
        KneserNeyModel(7).fit([np.array([BOS, 5, EOS])], 40_000)
    with pytest.raises(ValueError, match="no token"):
        KneserNeyModel(3).fit([], 10)


def test_saved_counts_rebuild_the_same_model(toy):
    vocab, docs = toy
    kn = KneserNeyModel(4).fit(docs, len(vocab))
    again = KneserNeyModel.from_arrays(4, len(vocab), kn.to_arrays())
    np.testing.assert_array_equal(again.token_proba(docs), kn.token_proba(docs))


# ------------------------------------------------------------------ the estimator's mixture
TEXTS = ["the cat sat on the mat.\n", "a dog sat on a log.\n", "the cat and the dog.\n",
         "on the mat sat a cat.\n", "a cat saw a dog on a log.\n", "the dog sat.\n"] * 3
VAL = ["the log saw a mat.\n", "a dog and a cat sat on the log.\n"]  # new phrases: both models help
SMALL = dict(hidden_size=16, embedding_dim=8, bptt=8, batch_size=4, max_iter=3, random_state=0,
             learning_rate=1e-2)


@pytest.fixture(scope="module")
def lm():
    return RNNLanguageModel(**dict(SMALL, max_iter=10)).fit(TEXTS, validation_texts=VAL)


def network_alone(model):
    alone = copy.deepcopy(model)
    alone.ngram_, alone.ngram_weight_ = None, 0.0
    return alone


def test_scores_are_the_mixture_of_the_two_models(lm):
    assert lm.ngram_.order == 7 and 0.1 < lm.ngram_weight_ < 0.9
    ids = lm._encode([list(t) for t in VAL])
    p_net = np.exp(network_alone(lm)._token_log_probs(ids))
    p_gram = lm.ngram_.token_proba(ids)
    a = lm.ngram_weight_
    want = -np.mean(np.log((1 - a) * p_net + a * p_gram))
    assert lm.score(VAL) == pytest.approx(-want, rel=1e-12)
    assert lm.perplexity(VAL) == pytest.approx(math.exp(want), rel=1e-12)
    # the weight is the best one on the validation text
    nll = lambda w: -np.mean(np.log((1 - w) * p_net + w * p_gram))  # noqa: E731
    assert nll(a) <= min(nll(w) for w in np.linspace(0.0, 1.0, 101)) + 1e-9
    # and the n-gram counts are those of the training texts alone
    kn = KneserNeyModel(7).fit(lm._encode([list(t) for t in TEXTS]), len(lm.vocabulary_))
    np.testing.assert_array_equal(kn.token_proba(ids), p_gram)


def test_steps_predictions_and_scores_agree(lm):
    doc = "the cat sat on a log."
    state = lm.init_state(1)
    ids = lm._encode([list(doc)])[0]
    logp = []
    for prev, nxt in zip(ids[:-1], ids[1:]):
        if prev != BOS:
            proba, state = lm.step(int(prev), state)
        else:
            proba = state.output
        assert proba[0].sum() == pytest.approx(1.0, abs=1e-12)
        logp.append(math.log(proba[0, nxt]))
    # (a step runs the network's float32 step kernels, scoring its batch kernels)
    assert -np.mean(logp) == pytest.approx(-lm.score([doc]), rel=1e-6)
    V = len(lm.vocabulary_)
    top = dict(lm.predict_next("the ca", k=V))
    state = lm.init_state(1)
    for c in "the ca":
        proba, state = lm.step(c, state)
    for tok, p in top.items():
        assert proba[0, lm.vocabulary_.token_to_id(tok)] == pytest.approx(p, abs=1e-7)
    assert sum(top.values()) == pytest.approx(1.0, abs=1e-12)


def test_generation_samples_the_mixture():
    """A model whose n-gram part has all the weight writes what its counts allow only: every
    context of six letters of the training text has one continuation."""
    model = RNNLanguageModel(**SMALL).fit(["abcdefgh"] * 6, validation_texts=["abcdefgh"])
    model.ngram_weight_ = 1.0
    for seed in range(3):  # then <eos>, as after every training text
        assert model.generate("ab", max_length=30, temperature=0.01, random_state=seed) == "cdefgh"
    assert model.generate("", max_length=30, greedy=True) == "abcdefgh"


def test_save_and_load_keep_the_ngram_part(lm, tmp_path):
    lm.save(tmp_path / "lm.fastrnn")
    again = fastrnn.load(tmp_path / "lm.fastrnn")
    assert again.ngram_weight_ == lm.ngram_weight_
    assert again.perplexity(VAL) == lm.perplexity(VAL)
    assert again.generate("the", max_length=20, random_state=1) == \
        lm.generate("the", max_length=20, random_state=1)


def test_a_damaged_ngram_part_is_refused(lm, tmp_path):
    from fastrnn._persist import ModelFileError, read_model, save_model

    lm.save(tmp_path / "lm.fastrnn")
    meta, arrays = read_model(tmp_path / "lm.fastrnn")
    bad = dict(arrays)
    bad["ngram/3/grams"] = arrays["ngram/3/grams"][::-1].copy()
    meta = {k: v for k, v in meta.items()
            if k not in ("class", "format", "format_version", "fastrnn_version")}
    save_model(tmp_path / "bad.fastrnn", "RNNLanguageModel", meta, bad)
    with pytest.raises(ModelFileError, match="ngram/3 must hold increasing"):
        fastrnn.load(tmp_path / "bad.fastrnn")
    meta2 = dict(meta, ngram=dict(meta["ngram"], weight=1.5))
    save_model(tmp_path / "bad2.fastrnn", "RNNLanguageModel", meta2, arrays)
    with pytest.raises(ModelFileError, match="weight must be a number in"):
        fastrnn.load(tmp_path / "bad2.fastrnn")


def test_onnx_export_refuses_the_mixture(lm):
    pytest.importorskip("onnx")
    from fastrnn.onnx import export

    with pytest.raises(ValueError, match="7-gram Kneser-Ney.*ngram_order=None"):
        export(lm)


def test_without_validation_texts_a_share_is_held_out():
    model = RNNLanguageModel(**SMALL).fit(TEXTS)
    held = model._encode([list(t) for t in TEXTS[-2:]])  # validation_fraction 0.1 of 18
    kept = model._encode([list(t) for t in TEXTS[:-2]])
    kn = KneserNeyModel(7).fit(kept, len(model.vocabulary_))
    np.testing.assert_array_equal(kn.token_proba(held), model.ngram_.token_proba(held))
    alone = RNNLanguageModel(**SMALL, ngram_order=None).fit(TEXTS)
    assert alone.ngram_ is None and alone.ngram_weight_ == 0.0
    assert alone.n_tokens_seen_ > model.n_tokens_seen_  # trained on every text


def test_word_level_order_and_an_order_too_high():
    words = ["the cat sat on the mat", "a dog sat on a log", "the dog saw the cat"] * 4
    model = RNNLanguageModel(**SMALL, level="word").fit(words)
    assert model.ngram_.order == 4
    with pytest.raises(ValueError, match="does not fit the 64-bit n-gram codes"):
        RNNLanguageModel(**SMALL, level="word", ngram_order=40).fit(words)


def test_auto_epochs_stop_at_the_token_budget(monkeypatch):
    monkeypatch.setattr(_lm_ngram, "AUTO_TOKENS", 300)
    kw = dict(SMALL, max_iter="auto", ngram_order=None)
    model = RNNLanguageModel(**kw).fit(TEXTS, validation_texts=VAL)
    per_step = kw["bptt"] * kw["batch_size"]
    assert 300 <= model.n_tokens_seen_ < 300 + per_step
    assert model.n_iter_ == 0 and model.stop_reason_ == "max_iter"
    assert model.history_[-1]["val_bits"] is not None  # evaluated where it stopped
    # a network of twice the reference weights per token gets half the tokens
    params = model.network_.params
    weights = sum(p.size for k, p in params.items() if k != "embedding.weight")
    monkeypatch.setattr(_lm_ngram, "AUTO_WEIGHTS", weights // 2)
    model = RNNLanguageModel(**kw).fit(TEXTS, validation_texts=VAL)
    budget = int(300 * (weights // 2) / weights)
    assert budget <= model.n_tokens_seen_ < budget + per_step
    monkeypatch.setattr(_lm_ngram, "AUTO_TOKENS", 10**9)
    model = RNNLanguageModel(**kw).fit(TEXTS, validation_texts=VAL)
    assert model.n_iter_ == _lm_ngram.AUTO_EPOCHS  # a small corpus gets its epochs


@pytest.mark.parametrize("restored", [False, True])
def test_the_weight_reuses_the_last_validation_pass_only_when_it_holds(monkeypatch, restored):
    """The last validation pass of training is reused for the weight when the fitted network is
    the one it scored; when the best parameters of an earlier evaluation are restored, the
    network is scored again. Either way the weight is the one fresh scores give."""
    calls = []
    real = RNNLanguageModel._token_log_probs

    def counting(self, docs, with_sum=False):
        calls.append(len(docs))
        return real(self, docs, with_sum)

    monkeypatch.setattr(RNNLanguageModel, "_token_log_probs", counting)
    kw = dict(SMALL, max_iter=4)
    if restored:  # a learning rate that makes the last epochs worse than the first
        kw.update(learning_rate=0.5, clip_norm=None, lr_decay=1.0)
    model = RNNLanguageModel(**kw).fit(TEXTS, validation_texts=VAL)
    evaluations = len(model.validation_bits_per_token_)
    last_is_best = model.validation_bits_per_token_[-1] == model.best_validation_bits_per_token_
    assert last_is_best != restored, model.validation_bits_per_token_
    assert len(calls) == evaluations + (1 if restored else 0)
    ids = model._encode([list(t) for t in VAL])
    p_net = np.exp(real(model, ids))
    p_gram = model.ngram_.token_proba(ids)
    nll = lambda w: -np.mean(np.log((1 - w) * p_net + w * p_gram))  # noqa: E731
    assert nll(model.ngram_weight_) <= min(nll(w) for w in np.linspace(0, 1, 201)) + 1e-12
