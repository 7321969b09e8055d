"""Tests for fastrnn.text: tokenizers, Vocabulary, SequenceVectorizer, padding, bucketing."""

import doctest
import json
import math
import pickle
import re
import string
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError

import fastrnn.text as text_pkg
from fastrnn.text import (
    BOS,
    EOS,
    PAD,
    UNK,
    SequenceVectorizer,
    Vocabulary,
    char_tokenize,
    get_tokenizer,
    length_buckets,
    pad_sequences,
    padding_waste,
    word_tokenize,
)
from fastrnn.text import _padding, _tokenize, _vectorizer, _vocab

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]

DOCS = [
    "The cat sat on the mat.",
    "The dog sat on the log!",
    "A cat and a dog.",
    "",
    "the end",
]


def expected_order(counts):
    """Reference ordering: descending count, ties lexicographic."""
    return [t for t, _ in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))]


# ---------------------------------------------------------------------------- package
def test_public_names_reexported():
    for name in [
        "Vocabulary", "SequenceVectorizer", "pad_sequences", "length_buckets",
        "padding_waste", "char_tokenize", "word_tokenize", "get_tokenizer",
        "PAD", "UNK", "BOS", "EOS",
    ]:
        assert name in text_pkg.__all__
        assert hasattr(text_pkg, name)


def test_every_public_name_resolves_once():
    # the package's __all__ is put together from its submodules' lists
    assert len(set(text_pkg.__all__)) == len(text_pkg.__all__)
    for module in (_vocab, _tokenize, _vectorizer, _padding):
        assert set(module.__all__) <= set(text_pkg.__all__), module.__name__
    for name in text_pkg.__all__:
        assert getattr(text_pkg, name) is not None, name


@pytest.mark.parametrize("module", [_vocab, _tokenize, _vectorizer, _padding])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no doctest examples"
    assert result.failed == 0


# ---------------------------------------------------------------------------- Vocabulary
def test_special_ids_and_strings():
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    v = Vocabulary(["x", "y"])
    assert v.tokens[:4] == SPECIALS
    for i, s in enumerate(SPECIALS):
        assert v.token_to_id(s) == i
        assert v.id_to_token(i) == s
    assert v.token_to_id("x") == 4 and v.token_to_id("y") == 5
    assert len(v) == 6
    assert len(Vocabulary()) == 4


def test_build_order_is_count_then_lexicographic():
    seqs = [list("banana"), list("bandana"), list("cab")]
    counts = Counter(t for s in seqs for t in s)
    v = Vocabulary.build(seqs)
    assert v.tokens[4:] == expected_order(counts)
    assert v.counts == dict(counts)
    # independent of corpus order
    v2 = Vocabulary.build(seqs[::-1])
    assert v2.tokens == v.tokens
    # ties really are broken lexicographically, not by first appearance
    v3 = Vocabulary.build([["zeta", "alpha", "mid"]])
    assert v3.tokens[4:] == ["alpha", "mid", "zeta"]


@pytest.mark.parametrize("max_size", [0, 1, 3, 5, 100])
def test_build_max_size(max_size):
    rng = np.random.RandomState(0)
    seqs = [[str(t) for t in rng.zipf(1.5, size=30) % 40] for _ in range(20)]
    counts = Counter(t for s in seqs for t in s)
    v = Vocabulary.build(seqs, max_size=max_size)
    expected = expected_order(counts)[:max_size]
    assert v.tokens[4:] == expected
    assert len(v) == 4 + min(max_size, len(counts))


@pytest.mark.parametrize("min_count", [1, 2, 3, 10])
def test_build_min_count(min_count):
    rng = np.random.RandomState(1)
    seqs = [[str(t) for t in rng.randint(0, 15, size=rng.randint(1, 10))] for _ in range(12)]
    counts = Counter(t for s in seqs for t in s)
    v = Vocabulary.build(seqs, min_count=min_count)
    kept = {t: c for t, c in counts.items() if c >= min_count}
    assert v.tokens[4:] == expected_order(kept)


def test_build_max_size_and_min_count_together():
    seqs = [["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 1]
    v = Vocabulary.build(seqs, max_size=2, min_count=2)
    assert v.tokens[4:] == ["a", "b"]
    v = Vocabulary.build(seqs, max_size=10, min_count=2)
    assert v.tokens[4:] == ["a", "b", "c"]


def test_encode_unknown_and_specials():
    v = Vocabulary.build([["a", "b", "b"]])
    ids = v.encode(["b", "a", "zzz", "<eos>"], add_bos=True, add_eos=True)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert_array_equal(ids, [BOS, 4, 5, UNK, EOS, EOS])
    assert v.token_to_id("zzz") == UNK
    assert "zzz" not in v and "a" in v
    empty = v.encode([])
    assert empty.shape == (0,) and empty.dtype == np.int32
    assert_array_equal(v.encode([], add_bos=True, add_eos=True), [BOS, EOS])


def test_special_strings_in_corpus_are_not_regular_tokens():
    v = Vocabulary.build([["<unk>", "x", "<pad>", "<pad>"]])
    assert v.tokens == SPECIALS + ["x"]


def test_decode_skip_special():
    v = Vocabulary(["a", "b"])
    ids = [BOS, 4, UNK, 5, EOS, PAD, PAD]
    assert v.decode(ids) == ["a", "<unk>", "b"]
    assert v.decode(ids, skip_special=False) == ["<bos>", "a", "<unk>", "b", "<eos>", "<pad>",
                                                 "<pad>"]
    assert v.decode(np.array([], dtype=np.int32)) == []
    assert v.decode(np.array([4.0, 5.0])) == ["a", "b"]


@pytest.mark.parametrize(
    "ids, match",
    [
        ([4, 6], r"id 6 at position 1 is out of range.*size 6"),
        ([-1], r"id -1 at position 0"),
        ([[4, 5]], r"1-D"),
        ([4.5], r"integers"),
    ],
)
def test_decode_errors(ids, match):
    v = Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match=match):
        v.decode(ids)


def test_id_to_token_errors():
    v = Vocabulary(["a"])
    with pytest.raises(IndexError, match="out of range"):
        v.id_to_token(5)
    with pytest.raises(IndexError):
        v.id_to_token(-1)
    with pytest.raises(TypeError):
        v.id_to_token("a")
    assert v.id_to_token(np.int64(4)) == "a"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(list("abcdefg") + ["<s>", "xy", "é", "🙂"]),
                         max_size=12), min_size=1, max_size=6))
def test_encode_decode_round_trip(seqs):
    v = Vocabulary.build(seqs)
    for s in seqs:
        ids = v.encode(s, add_bos=True, add_eos=True)
        assert ids.dtype == np.int32
        assert len(ids) == len(s) + 2
        assert ids[0] == BOS and ids[-1] == EOS
        assert UNK not in ids[1:-1]
        assert v.decode(ids) == list(s)
        assert [v.id_to_token(int(i)) for i in ids[1:-1]] == list(s)


@pytest.mark.parametrize("n", [10, 300, 5000])
def test_encode_long_string_matches_token_by_token(n):
    rng = np.random.RandomState(0)
    alphabet = list("abc xyzé\n🙂")
    textv = "".join(rng.choice(alphabet, size=n))
    v = Vocabulary.build([list("abc é🙂")])
    expected = np.array([v.token_to_id(c) for c in textv], dtype=np.int32)
    got = v.encode(textv, add_bos=True, add_eos=True)
    assert got.dtype == np.int32
    assert_array_equal(got, np.concatenate([[BOS], expected, [EOS]]))
    assert_array_equal(v.encode(textv), expected)


def test_encode_string_with_lone_surrogate():
    s = "ab\ud800" * 200
    v = Vocabulary(["a", "b"])
    ids = v.encode(s)
    assert_array_equal(ids[:3], [4, 5, UNK])
    assert len(ids) == 600


def test_to_dict_from_dict_json_round_trip():
    v = Vocabulary.build([list("hello world")], max_size=5)
    d = json.loads(json.dumps(v.to_dict()))
    v2 = Vocabulary.from_dict(d)
    assert v2 == v
    assert v2.tokens == v.tokens
    assert v2.counts == v.counts
    assert_array_equal(v2.encode("hello"), v.encode("hello"))
    # without counts
    v3 = Vocabulary(["p", "q"])
    assert Vocabulary.from_dict(json.loads(json.dumps(v3.to_dict()))) == v3


def test_from_dict_errors():
    d = Vocabulary(["a"]).to_dict()
    with pytest.raises(ValueError, match="version"):
        Vocabulary.from_dict({**d, "version": 99})
    with pytest.raises(ValueError, match="special"):
        Vocabulary.from_dict({**d, "specials": ["<unk>", "<pad>", "<bos>", "<eos>"]})
    with pytest.raises(ValueError, match="tokens"):
        Vocabulary.from_dict({"foo": 1})
    with pytest.raises(ValueError, match="counts"):
        Vocabulary.from_dict({**d, "counts": [1, 2]})


def test_vocabulary_constructor_errors():
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="special"):
        Vocabulary(["<bos>"])
    with pytest.raises(TypeError, match="must be str"):
        Vocabulary(["a", 3])
    with pytest.raises(TypeError, match="single string"):
        Vocabulary("abc")
    with pytest.raises(TypeError, match="must be str"):
        Vocabulary.build([[1, 2]])
    with pytest.raises(TypeError, match="iterable"):
        Vocabulary.build("abc")
    with pytest.raises(TypeError, match="Sequence 1"):
        Vocabulary.build([["a"], 5])
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build([["a"]], max_size=-1)
    with pytest.raises(TypeError, match="mapping"):
        Vocabulary.from_counts([("a", 1)])


def test_vocabulary_pickle_and_stoi_copy():
    v = Vocabulary.build([list("abracadabra")])
    v2 = pickle.loads(pickle.dumps(v))
    assert v2 == v
    stoi = v.stoi
    stoi["zz"] = 99
    assert "zz" not in v
    assert v != Vocabulary(["a"])
    assert "Vocabulary(size=" in repr(v)


# ---------------------------------------------------------------------------- tokenizers
def test_char_tokenize():
    assert char_tokenize("ab c\n") == ["a", "b", " ", "c", "\n"]
    assert char_tokenize("") == []


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_char_tokenize_round_trip(s):
    assert "".join(char_tokenize(s)) == s


@pytest.mark.parametrize(
    "s, expected",
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("don't stop", ["don", "'", "t", "stop"]),
        ("  spaces\tand\nnewlines  ", ["spaces", "and", "newlines"]),
        ("café naïve über", ["café", "naïve", "über"]),
        ("x=3.14;", ["x", "=", "3", ".", "14", ";"]),
        ("snake_case2", ["snake_case2"]),
        ("", []),
    ],
)
def test_word_tokenize_examples(s, expected):
    assert word_tokenize(s) == expected


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_word_tokenize_covers_all_non_space(s):
    toks = word_tokenize(s)
    assert "".join(toks) == re.sub(r"\s", "", s)
    assert toks == re.findall(r"\w+|[^\w\s]", s)
    for t in toks:
        assert t and not re.search(r"\s", t)


@pytest.mark.parametrize("func", [char_tokenize, word_tokenize])
@pytest.mark.parametrize("bad", [b"bytes", None, 3, ["a"]])
def test_tokenizers_reject_non_str(func, bad):
    with pytest.raises(TypeError, match="expects a str"):
        func(bad)


def test_get_tokenizer():
    assert get_tokenizer("char") is char_tokenize
    assert get_tokenizer("word") is word_tokenize
    assert get_tokenizer(str.split) is str.split
    with pytest.raises(ValueError, match="Unknown tokenizer 'chars'"):
        get_tokenizer("chars")
    with pytest.raises(ValueError, match="Unknown tokenizer"):
        get_tokenizer(None)


# ---------------------------------------------------------------------------- SequenceVectorizer
def test_vectorizer_default_params():
    vec = SequenceVectorizer()
    assert vec.get_params() == {
        "analyzer": "word", "lowercase": True, "max_features": None, "min_df": 1,
        "add_bos": False, "add_eos": False, "subwords": "auto", "subword_buckets": 8192,
        "max_length": None,
    }


def test_vectorizer_fit_attributes_char():
    docs = ["Hello", "world"]
    vec = SequenceVectorizer(analyzer="char")
    assert vec.fit(docs) is vec
    counts = Counter("helloworld")
    assert list(vec.get_feature_names_out()) == SPECIALS + expected_order(counts)
    assert vec.vocab_size_ == len(vec.vocabulary_) == len(vec.get_feature_names_out())
    assert vec.vocab_size_ == 4 + len(counts)
    names = vec.get_feature_names_out()
    assert names.dtype == object
    for i, name in enumerate(names):
        assert vec.vocabulary_[name] == i
    assert isinstance(vec.vocab_, Vocabulary)
    assert vec.vocab_.stoi == vec.vocabulary_


def test_vectorizer_transform_output_types_and_values():
    docs = ["Hello world", "hi"]
    vec = SequenceVectorizer(analyzer="char").fit(docs)
    X = vec.transform(docs)
    assert isinstance(X, list) and len(X) == 2
    for doc, ids in zip(docs, X):
        assert isinstance(ids, np.ndarray)
        assert ids.dtype == np.int32 and ids.ndim == 1
        assert len(ids) == len(doc)
        assert_array_equal(ids, [vec.vocabulary_[c] for c in doc.lower()])
    # round trip, character level
    assert ["".join(t) for t in vec.inverse_transform(X)] == [d.lower() for d in docs]


def test_vectorizer_word_analyzer_round_trip():
    docs = [d for d in DOCS if d]
    vec = SequenceVectorizer(analyzer="word", add_bos=True, add_eos=True, subwords=False)
    X = vec.fit_transform(docs)
    for doc, ids in zip(docs, X):
        toks = word_tokenize(doc.lower())
        assert ids[0] == BOS and ids[-1] == EOS
        assert len(ids) == len(toks) + 2
    assert vec.inverse_transform(X) == [word_tokenize(d.lower()) for d in docs]


def test_vectorizer_lowercase_false():
    vec = SequenceVectorizer(analyzer="word", lowercase=False, subwords=False).fit(["The the THE"])
    assert set(vec.vocabulary_) == set(SPECIALS) | {"The", "the", "THE"}
    vec = SequenceVectorizer(analyzer="word", lowercase=True, subwords=False).fit(["The the THE"])
    assert set(vec.vocabulary_) == set(SPECIALS) | {"the"}
    assert vec.vocab_.counts == {"the": 3}


def test_vectorizer_unknown_tokens():
    vec = SequenceVectorizer(analyzer="word", subwords=False).fit(["a b c"])
    ids = vec.transform(["a zebra c QUUX"])[0]
    assert_array_equal(ids, [vec.vocabulary_["a"], UNK, vec.vocabulary_["c"], UNK])
    assert vec.inverse_transform([ids]) == [["a", "<unk>", "c", "<unk>"]]


def _random_word_docs(seed, n_docs=40):
    rng = np.random.RandomState(seed)
    words = [f"w{i}" for i in range(30)]
    p = 1.0 / np.arange(1, 31)
    p /= p.sum()
    return [" ".join(rng.choice(words, size=rng.randint(1, 15), p=p)) for _ in range(n_docs)]


@pytest.mark.parametrize("min_df", [1, 2, 5, 0.1, 0.25, 0.5, 1.0])
def test_vectorizer_min_df_matches_counter(min_df):
    docs = [d + " everywhere" for d in _random_word_docs(0)]  # min_df=1.0 keeps something
    vec = SequenceVectorizer(analyzer="word", min_df=min_df, subwords=False).fit(docs)
    tf = Counter(t for d in docs for t in d.split())
    df = Counter(t for d in docs for t in set(d.split()))
    if isinstance(min_df, int):
        kept = {t for t in tf if df[t] >= min_df}
    else:
        kept = {t for t in tf if df[t] >= min_df * len(docs) - 1e-9}
    got = list(vec.get_feature_names_out()[4:])
    assert set(got) == kept
    assert got == expected_order({t: tf[t] for t in kept})


def test_vectorizer_min_df_float_exact_proportion():
    # 3 of 10 documents contain "x": 0.3 * 10 is 3.0000000000000004 in floating point,
    # but the proportion 3/10 == 0.3, so "x" must be kept.
    docs = ["x"] * 3 + ["y"] * 7
    vec = SequenceVectorizer(analyzer="char", min_df=0.3).fit(docs)
    assert "x" in vec.vocabulary_
    vec = SequenceVectorizer(analyzer="char", min_df=0.31).fit(docs)
    assert "x" not in vec.vocabulary_ and "y" in vec.vocabulary_


def test_vectorizer_min_df_counts_documents_not_occurrences():
    docs = ["a a a a a", "b", "b"]
    vec = SequenceVectorizer(analyzer="word", min_df=2, subwords=False).fit(docs)
    assert set(vec.get_feature_names_out()[4:]) == {"b"}


@pytest.mark.parametrize("max_features", [1, 3, 10, 1000])
def test_vectorizer_max_features_matches_counter(max_features):
    docs = _random_word_docs(1)
    vec = SequenceVectorizer(analyzer="word", max_features=max_features, subwords=False).fit(docs)
    tf = Counter(t for d in docs for t in d.split())
    assert list(vec.get_feature_names_out()[4:]) == expected_order(tf)[:max_features]
    assert vec.vocab_size_ == 4 + min(max_features, len(tf))


def test_vectorizer_min_df_applied_before_max_features():
    docs = ["a a a a a a", "b c", "b c", "c"]
    # "a" is most frequent overall but appears in one document only
    vec = SequenceVectorizer(analyzer="word", min_df=2, max_features=1, subwords=False).fit(docs)
    assert list(vec.get_feature_names_out()[4:]) == ["c"]


def test_vectorizer_empty_document_errors_and_bos_eos():
    vec = SequenceVectorizer(analyzer="word", subwords=False).fit(["a b"])
    with pytest.raises(ValueError, match=r"Document 1 .*no tokens.*add_bos=True"):
        vec.transform(["a", "", "b"])
    with pytest.raises(ValueError, match=r"Document 0"):
        vec.transform(["  ...  "[:2]])
    with pytest.raises(ValueError, match="Document 1"):
        SequenceVectorizer(analyzer="char").fit_transform(["ab", ""])
    X = SequenceVectorizer(analyzer="word", add_bos=True, subwords=False).fit(
        ["a"]).transform(["", "a"])
    assert_array_equal(X[0], [BOS])
    X = SequenceVectorizer(analyzer="word", add_eos=True, subwords=False).fit(["a"]).transform([""])
    assert_array_equal(X[0], [EOS])
    # empty documents are fine in fit (they count for min_df proportions)
    vec = SequenceVectorizer(analyzer="char", min_df=0.5).fit(["ab", "a", "", ""])
    assert list(vec.get_feature_names_out()[4:]) == ["a"]
    assert vec.transform([]) == []


def test_fit_transform_equals_fit_then_transform():
    docs = _random_word_docs(2)
    for params in [dict(analyzer="word", add_eos=True, min_df=2), dict(max_features=5)]:
        a = SequenceVectorizer(**params).fit_transform(docs)
        vec = SequenceVectorizer(**params).fit(docs)
        b = vec.transform(docs)
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_array_equal(x, y)
            assert x.dtype == y.dtype == np.int32


@pytest.mark.parametrize("method", ["fit", "fit_transform", "transform"])
def test_vectorizer_single_string_error(method):
    vec = SequenceVectorizer(analyzer="char").fit(["abc"])
    with pytest.raises(ValueError, match=r"single str 'hello'.*Wrap it in a list"):
        getattr(vec, method)("hello")
    with pytest.raises(ValueError, match="single bytes"):
        getattr(vec, method)(b"hello")


@pytest.mark.parametrize(
    "docs, exc, match",
    [
        (["ok", None], TypeError, r"document 1 is NoneType None, neither a str nor a list"),
        (["ok", "fine", 3.5], TypeError, r"document 2 is float 3.5"),
        ([b"bytes"], TypeError, r"document 0 is bytes"),
        ([["a", 2]], TypeError, r"document 0 is list \['a', 2\], neither a str"),
        (42, TypeError, r"iterable of str documents, got int 42"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, r"shape \(2, 2\)"),
    ],
)
def test_vectorizer_bad_documents(docs, exc, match):
    with pytest.raises(exc, match=match):
        SequenceVectorizer(analyzer="char").fit(docs)
    vec = SequenceVectorizer(analyzer="char").fit(["abc"])
    with pytest.raises(exc, match=match):
        vec.transform(docs)


def test_vectorizer_accepts_arrays_and_generators():
    docs = ["ab", "bc"]
    a = SequenceVectorizer(analyzer="char").fit_transform(np.array(docs))
    b = SequenceVectorizer(analyzer="char").fit_transform(d for d in docs)
    c = SequenceVectorizer(analyzer="char").fit_transform(tuple(docs))
    for x, y, z in zip(a, b, c):
        assert_array_equal(x, y)
        assert_array_equal(x, z)


def test_vectorizer_pandas_series():
    pd = pytest.importorskip("pandas")
    docs = pd.Series(["ab", "ba", "c"], index=[10, 20, 30])
    X = SequenceVectorizer(analyzer="char").fit_transform(docs)
    assert len(X) == 3


def test_vectorizer_empty_corpus_errors():
    with pytest.raises(ValueError, match="no documents"):
        SequenceVectorizer(analyzer="char").fit([])
    with pytest.raises(ValueError, match="Empty vocabulary"):
        SequenceVectorizer(analyzer="char").fit(["", ""])
    with pytest.raises(ValueError, match="no tokens remain.*lower min_df"):
        SequenceVectorizer(analyzer="char", min_df=3).fit(["ab", "cd"])


def test_vectorizer_callable_analyzer():
    vec = SequenceVectorizer(analyzer=str.split, lowercase=True, subwords=False)
    X = vec.fit_transform(["A b. c", "b"])
    assert list(vec.get_feature_names_out()[4:]) == ["a", "b", "b.", "c"]  # all counts 1
    assert vec.inverse_transform(X) == [["a", "b.", "c"], ["b"]]
    with pytest.raises(TypeError, match=r"token of type int .*document 0"):
        SequenceVectorizer(analyzer=lambda s: [1, 2], subwords=False).fit(["ab"])
    with pytest.raises(TypeError, match="must return a list of str"):
        SequenceVectorizer(analyzer=lambda s: s, subwords=False).fit(["ab"])


@pytest.mark.parametrize(
    "params",
    [
        dict(analyzer="chars"),
        dict(analyzer=3),
        dict(lowercase="yes"),
        dict(max_features=0),
        dict(max_features=2.5),
        dict(min_df=0),
        dict(min_df=0.0),
        dict(min_df=1.5),
        dict(min_df=-1),
        dict(add_bos=1),
        dict(add_eos=None),
    ],
)
def test_vectorizer_invalid_params(params):
    with pytest.raises(InvalidParameterError):
        SequenceVectorizer(**params).fit(["abc"])


def test_vectorizer_not_fitted():
    vec = SequenceVectorizer(analyzer="char")
    with pytest.raises(NotFittedError):
        vec.transform(["a"])
    with pytest.raises(NotFittedError):
        vec.inverse_transform([[4]])
    with pytest.raises(NotFittedError):
        vec.get_feature_names_out()


def test_inverse_transform_padded_and_errors():
    docs = ["abc", "a", "cab"]
    vec = SequenceVectorizer(analyzer="char", add_bos=True, add_eos=True)
    X = vec.fit_transform(docs)
    padded, lengths = pad_sequences(X)
    assert vec.inverse_transform(padded) == vec.inverse_transform(X) == [list(d) for d in docs]
    with pytest.raises(ValueError, match="single sequence"):
        vec.inverse_transform(X[0])
    with pytest.raises(ValueError, match="out of range"):
        vec.inverse_transform([np.array([4, 999])])
    with pytest.raises(TypeError):
        vec.inverse_transform("abc")


def test_vectorizer_clone_and_params():
    vec = SequenceVectorizer(analyzer="word", min_df=2, add_eos=True, subwords=False).fit(
        _random_word_docs(3))
    c = clone(vec)
    assert c.get_params() == vec.get_params()
    assert not hasattr(c, "vocab_") and not hasattr(c, "vocabulary_")
    c.set_params(max_features=3)
    assert c.max_features == 3 and vec.max_features is None


def test_vectorizer_pickle():
    docs = _random_word_docs(4)
    vec = SequenceVectorizer(analyzer="word", add_bos=True, subwords=False).fit(docs)
    vec2 = pickle.loads(pickle.dumps(vec))
    assert vec2.vocabulary_ == vec.vocabulary_
    assert vec2.vocab_ == vec.vocab_
    for x, y in zip(vec.transform(docs), vec2.transform(docs)):
        assert_array_equal(x, y)


def _pad_ids(X):
    return pad_sequences(X, max_length=40)[0]


def test_vectorizer_in_pipeline():
    rng = np.random.RandomState(0)
    docs, y = [], []
    for _ in range(60):
        label = rng.randint(2)
        letters = "abc" if label else "xyz"
        docs.append("".join(rng.choice(list(letters), size=rng.randint(5, 30))))
        y.append(label)
    pipe = make_pipeline(
        SequenceVectorizer(analyzer="char", add_eos=True),
        FunctionTransformer(_pad_ids),
        LogisticRegression(max_iter=500),
    )
    pipe.fit(docs, y)
    assert pipe.score(docs, y) > 0.9
    pipe.set_params(sequencevectorizer__max_features=3)
    pipe.fit(docs, y)
    assert pipe.named_steps["sequencevectorizer"].vocab_size_ == 7
    scores = cross_val_score(clone(pipe), docs, y, cv=3)
    assert scores.shape == (3,)
    pipe2 = pickle.loads(pickle.dumps(pipe))
    assert_array_equal(pipe2.predict(docs), pipe.predict(docs))


def test_vectorizer_has_no_set_output_wrapping():
    # transform returns a ragged list; it must never be wrapped into a DataFrame
    assert not hasattr(SequenceVectorizer(analyzer="char"), "set_output")


def test_vectorizer_tags():
    from sklearn.utils import get_tags

    tags = get_tags(SequenceVectorizer(analyzer="char"))
    assert tags.input_tags.string is True
    assert tags.input_tags.two_d_array is False


@pytest.mark.parametrize(
    "check_name",
    [
        "check_no_attributes_set_in_init",
        "check_parameters_default_constructible",
        "check_get_params_invariance",
        "check_set_params",
        "check_estimator_repr",
        "check_estimator_cloneable",
        "check_valid_tag_types",
        "check_estimator_tags_renamed",
    ],
)
def test_sklearn_generic_checks(check_name):
    check = getattr(estimator_checks, check_name, None)
    if check is None:
        pytest.skip(f"{check_name} not in this scikit-learn")
    est = SequenceVectorizer(analyzer="char")
    check("SequenceVectorizer", est)


def test_fit_does_not_change_params():
    vec = SequenceVectorizer(analyzer="word", min_df=0.5, max_features=7, subwords=False)
    before = vec.get_params()
    vec.fit(_random_word_docs(5))
    assert vec.get_params() == before


# ---------------------------------------------------------------------------- pad_sequences
def test_pad_sequences_1d():
    seqs = [np.array([1, 2, 3], dtype=np.int32), np.array([4], dtype=np.int32),
            np.array([], dtype=np.int32)]
    X, lengths = pad_sequences(seqs)
    assert X.shape == (3, 3) and X.dtype == np.int32
    assert lengths.dtype == np.int64
    assert_array_equal(lengths, [3, 1, 0])
    assert_array_equal(X, [[1, 2, 3], [4, 0, 0], [0, 0, 0]])


def test_pad_sequences_nd_value_dtype():
    rng = np.random.RandomState(0)
    seqs = [rng.rand(t, 3, 2).astype(np.float32) for t in (4, 2, 5)]
    X, lengths = pad_sequences(seqs, value=-1.0)
    assert X.shape == (3, 5, 3, 2) and X.dtype == np.float32
    for i, s in enumerate(seqs):
        assert_array_equal(X[i, : len(s)], s)
        assert np.all(X[i, len(s):] == -1.0)
    X64, _ = pad_sequences(seqs, dtype=np.float64, value=np.nan)
    assert X64.dtype == np.float64
    assert np.isnan(X64[1, 2:]).all() and not np.isnan(X64[1, :2]).any()
    # mixed dtypes promote
    X, _ = pad_sequences([np.zeros(2, np.int32), np.zeros(1, np.float32)])
    assert X.dtype == np.result_type(np.int32, np.float32)


def test_pad_sequences_max_length_pads_up_and_never_truncates():
    seqs = [[1, 2], [3, 4, 5], [6]]
    X, lengths = pad_sequences(seqs, max_length=6)
    assert X.shape == (3, 6)
    assert_array_equal(lengths, [2, 3, 1])
    X, _ = pad_sequences(seqs, max_length=3)
    assert X.shape == (3, 3)
    with pytest.raises(ValueError, match=r"Sequence 1 has length 3, longer than max_length=2"):
        pad_sequences(seqs, max_length=2)
    with pytest.raises(ValueError, match=r"never truncates"):
        pad_sequences([[1] * 10], max_length=0)


@pytest.mark.parametrize(
    "seqs, kwargs, exc, match",
    [
        ([], {}, ValueError, "at least one"),
        ("abc", {}, TypeError, "single str"),
        (5, {}, TypeError, "iterable"),
        ([np.zeros((2, 3)), np.zeros((2, 4))], {}, ValueError, r"Sequence 1 has shape \(2, 4\)"),
        ([np.zeros((2, 3)), np.zeros(2)], {}, ValueError, "Sequence 1 has shape"),
        ([[1, 2], 3], {}, ValueError, "Sequence 1 is a scalar"),
        ([[1], "ab"], {}, TypeError, "Sequence 1 is a str"),
        ([[1, 2], [[1], [2, 3]]], {}, ValueError, "Sequence 1"),
        ([[1, 2]], {"dtype": np.int32, "value": 0.5}, ValueError, "cannot be stored exactly"),
        ([[1, 2]], {"dtype": np.int8, "value": 1000}, ValueError, "overflows"),
        ([[1, 2]], {"dtype": np.int32, "value": np.nan}, ValueError, "Padding value"),
        ([[1, 2]], {"max_length": -1}, ValueError, "max_length"),
        ([[1, 2]], {"max_length": 2.0}, ValueError, "max_length"),
    ],
)
def test_pad_sequences_errors(seqs, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pad_sequences(seqs, **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 12), min_size=1, max_size=10),
    st.integers(0, 3),
    st.integers(-5, 5),
)
def test_pad_sequences_property(lens, extra, value):
    rng = np.random.RandomState(sum(lens))
    seqs = [rng.randint(10, 20, size=L).astype(np.int32) for L in lens]
    X, lengths = pad_sequences(seqs, value=value, max_length=max(lens) + extra)
    assert X.shape == (len(lens), max(lens) + extra)
    assert_array_equal(lengths, lens)
    for i, s in enumerate(seqs):
        assert_array_equal(X[i, : lens[i]], s)
        assert np.all(X[i, lens[i]:] == value)


# ---------------------------------------------------------------------------- bucketing
def _check_partition(batches, n, batch_size):
    flat = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    assert flat.size == n
    assert_array_equal(np.sort(flat), np.arange(n))
    assert len(batches) == math.ceil(n / batch_size)
    sizes = sorted(len(b) for b in batches)
    assert all(s == batch_size for s in sizes[1:]) or len(sizes) <= 1
    assert all(1 <= s <= batch_size for s in sizes)
    for b in batches:
        assert b.dtype == np.int64


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 50), max_size=60),
    st.integers(1, 9),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_length_buckets_partition_property(lengths, batch_size, shuffle, seed):
    batches = length_buckets(lengths, batch_size, random_state=seed, shuffle=shuffle)
    n = len(lengths)
    _check_partition(batches, n, batch_size)
    if n == 0:
        return
    lengths = np.asarray(lengths)
    # batches are contiguous slices of the length-sorted order
    ordered = sorted(batches, key=lambda b: (lengths[b].min(), lengths[b].max()))
    for a, b in zip(ordered, ordered[1:]):
        assert lengths[a].max() <= lengths[b].min()


def test_length_buckets_unshuffled_is_deterministic_and_sorted():
    lengths = [7, 3, 3, 9, 1, 3, 8]
    b1 = length_buckets(lengths, 3, shuffle=False)
    b2 = length_buckets(lengths, 3, shuffle=False, random_state=123)
    assert [x.tolist() for x in b1] == [x.tolist() for x in b2] == [[4, 1, 2], [5, 0, 6], [3]]


def test_length_buckets_random_state():
    rng = np.random.RandomState(0)
    lengths = rng.randint(1, 100, size=200)
    a = length_buckets(lengths, 8, random_state=0)
    b = length_buckets(lengths, 8, random_state=0)
    c = length_buckets(lengths, 8, random_state=1)
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]
    # batch order is shuffled, not sorted by length
    mins = [lengths[x].min() for x in a]
    assert mins != sorted(mins)


def test_length_buckets_random_tie_breaking():
    lengths = np.full(40, 5)
    groups = {
        tuple(sorted(tuple(sorted(b.tolist())) for b in length_buckets(lengths, 4, random_state=s)))
        for s in range(5)
    }
    assert len(groups) > 1


def test_bucketing_reduces_padding_on_skewed_lengths():
    rng = np.random.RandomState(0)
    lengths = np.ceil(rng.lognormal(mean=3.0, sigma=1.0, size=2000)).astype(int)
    batch_size = 32
    bucketed = length_buckets(lengths, batch_size, random_state=0)
    perm = rng.permutation(len(lengths))
    random_batches = [perm[i: i + batch_size] for i in range(0, len(perm), batch_size)]
    w_bucket = padding_waste(lengths, bucketed)
    w_random = padding_waste(lengths, random_batches)
    assert w_random > 0.5
    assert w_bucket < 0.15
    assert w_bucket < w_random / 5


@pytest.mark.parametrize(
    "lengths, batch_size, match",
    [
        ([1, 2], 0, "batch_size"),
        ([1, 2], 2.0, "batch_size"),
        ([1, -2], 1, "non-negative"),
        ([[1, 2]], 1, "1-D"),
        ([1.5, 2], 1, "integers"),
    ],
)
def test_length_buckets_errors(lengths, batch_size, match):
    with pytest.raises(ValueError, match=match):
        length_buckets(lengths, batch_size)


def test_length_buckets_empty():
    assert length_buckets([], 4) == []


def test_padding_waste_values():
    lengths = [4, 1, 4, 1]
    assert padding_waste(lengths, [[0, 1], [2, 3]]) == pytest.approx(6 / 16)
    assert padding_waste(lengths, [[0, 2], [1, 3]]) == 0.0
    assert padding_waste(lengths, [np.arange(4)]) == pytest.approx(6 / 16)
    assert padding_waste([0, 0], [[0, 1]]) == 0.0
    assert padding_waste([3], []) == 0.0
    with pytest.raises(ValueError, match="out of range"):
        padding_waste(lengths, [[0, 4]])


def test_padding_waste_matches_pad_sequences():
    rng = np.random.RandomState(3)
    seqs = [np.ones(rng.randint(1, 20), dtype=np.int32) for _ in range(50)]
    lengths = np.array([len(s) for s in seqs])
    batches = length_buckets(lengths, 7, random_state=0)
    pad_cells = real = 0
    for b in batches:
        X, L = pad_sequences([seqs[i] for i in b])
        pad_cells += X.size - L.sum()
        real += X.size
    assert padding_waste(lengths, batches) == pytest.approx(pad_cells / real)


def test_end_to_end_text_to_batches():
    docs = ["".join(np.random.RandomState(i).choice(list(string.ascii_lowercase), size=i + 1))
            for i in range(30)]
    vec = SequenceVectorizer(analyzer="char", add_bos=True, add_eos=True)
    X = vec.fit_transform(docs)
    lengths = np.array([len(x) for x in X])
    for b in length_buckets(lengths, 4, random_state=0):
        padded, L = pad_sequences([X[i] for i in b])
        assert padded.dtype == np.int32
        assert_array_equal(L, lengths[b])
        assert (padded[np.arange(len(b)), L - 1] == EOS).all()
        assert (padded[:, 0] == BOS).all()


# ---------------------------------------------------------------------------------------------
# subword features, tokenised documents, truncation
# ---------------------------------------------------------------------------------------------


def test_subword_features_are_stable_hashes_of_affixes_and_shape():
    import subprocess
    import sys
    import zlib

    from fastrnn.text import subword_features

    f = subword_features("Running", 1000)
    want = [zlib.crc32(s.encode()) % 1000 for s in
            ("p1=r", "p2=ru", "p3=run", "s1=g", "s2=ng", "s3=ing", "shape=Xx")]
    assert list(f) == want
    assert subword_features("C3PO-2", 10 ** 9)[-1] == zlib.crc32(b"shape=XdX-d") % 10 ** 9
    # the same in another process (no per-process hash seed)
    code = "from fastrnn.text import subword_features; print(subword_features('Running', 1000))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(f)


def test_vectorizer_subword_rows_for_words_and_tokenised_sentences():
    from fastrnn.text import TokenSequences, subword_features

    vec = SequenceVectorizer(subword_buckets=50, add_bos=True)
    X = vec.fit_transform(["The cat sat.", ["A", "Dog", "ran"]])
    assert isinstance(X, TokenSequences) and vec.subwords_
    V = len(vec.vocab_)
    assert vec.vocab_size_ == X.vocab_size == V + 50
    assert X[0].shape == (5, 8) and X[1].shape == (4, 8) and X[0].dtype == np.int32
    assert_array_equal(X[0][:, 0], [BOS] + [vec.vocabulary_[t] for t in ["the", "cat", "sat", "."]])
    assert_array_equal(X[0][0, 1:], 0)  # <bos> has no spelling
    assert_array_equal(X[1][2, 1:], np.array(subword_features("Dog", 50)) + V)
    # an unseen word is <unk>, but keeps its spelling
    row = vec.transform([["Cats"]])[0][1]
    assert row[0] == UNK and row[-1] == subword_features("Cats", 50)[-1] + V
    assert vec.inverse_transform(X) == [["the", "cat", "sat", "."], ["a", "dog", "ran"]]
    # characters get no subword features unless asked for
    assert SequenceVectorizer(analyzer="char").fit_transform(["ab"])[0].ndim == 1
    assert SequenceVectorizer(subwords=False).fit_transform(["a b"])[0].ndim == 1
    assert SequenceVectorizer(analyzer="char", subwords=True).fit_transform(["ab"])[0].ndim == 2


def test_vectorizer_max_length_keeps_the_first_tokens():
    vec = SequenceVectorizer(max_length=3, subwords=False)
    X = vec.fit_transform(["a b c d e", "f"])
    assert [len(x) for x in X] == [3, 1]
    assert vec.inverse_transform(X)[0] == ["a", "b", "c"]
    full = SequenceVectorizer(subwords=False).fit(["a b c d e", "f"])
    assert vec.vocab_ == full.vocab_  # the vocabulary sees every token


def test_tagger_pipeline_on_tokenised_sentences_reads_unseen_words():
    """A word never seen in fit still gets a sensible tag through its suffix: here every word
    ending in -ed is a verb and every word ending in -ly an adverb."""
    from sklearn.pipeline import make_pipeline

    from fastrnn import RNNTagger

    rng = np.random.RandomState(0)
    stems = ["walk", "jump", "talk", "call", "look", "play", "kick", "pick", "fill", "pull",
             "push", "rock"]
    sents, tags = [], []
    for _ in range(120):
        n = rng.randint(2, 6)
        words = [stems[i] + suf for i, suf in zip(rng.randint(0, 8, n),
                                                   rng.choice(["ed", "ly"], n))]
        sents.append(words)
        tags.append(["V" if w.endswith("ed") else "R" for w in words])
    pipe = make_pipeline(SequenceVectorizer(),
                         RNNTagger(hidden_size=16, max_iter=30, learning_rate=1e-2,
                                   random_state=0))
    pipe.fit(sents, tags)
    unseen, truth = [], []  # stems 8-11: never seen in fit
    for _ in range(30):
        words = [stems[i] + suf for i, suf in zip(rng.randint(8, 12, 4),
                                                   rng.choice(["ed", "ly"], 4))]
        unseen.append(words)
        truth += ["V" if w.endswith("ed") else "R" for w in words]
    pred = np.concatenate(pipe.predict(unseen))
    assert np.mean(pred == np.array(truth)) > 0.95
