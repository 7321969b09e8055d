"""Documents, tokens and ids of :class:`~fastrnn.estimators.RNNLanguageModel`: tokenising texts
(or taking lists of tokens), encoding them with the vocabulary, and checking the vocabulary."""

import warnings
from collections.abc import Iterable

import numpy as np

from ..text import N_SPECIAL, UNK, get_tokenizer

__all__ = ["LMTextMixin", "check_vocabulary"]


def check_vocabulary(vocab, docs, min_count, max_vocab):
    """Refuse a vocabulary with no regular token; warn when most training tokens are unknown."""
    settings = f"min_count={min_count}" + (f", max_vocab={max_vocab}" if max_vocab else "")
    if len(vocab) <= N_SPECIAL:
        from collections import Counter

        counts = Counter()
        for d in docs:
            counts.update(d)
        top = counts.most_common(1)
        most = (f" (the most frequent one, {top[0][0]!r}, appears {top[0][1]} times)"
                if top else "")
        raise ValueError(
            f"the vocabulary has no regular token: with {settings} every token of the training "
            f"texts becomes <unk>{most}, and the model could only predict <unk>. Lower "
            "min_count (or raise max_vocab)."
        )
    total = sum(len(d) for d in docs)
    known = sum(vocab.counts.values()) if vocab.counts else total
    share = 1.0 - known / total if total else 0.0
    if share > 0.5:
        warnings.warn(
            f"{share:.0%} of the training tokens are unknown (<unk>): {settings} keeps "
            f"{len(vocab) - N_SPECIAL} token type(s). The model will mostly learn to predict "
            "<unk>; lower min_count or raise max_vocab.", UserWarning, stacklevel=4)


class LMTextMixin:
    """Text handling of the language model (its ``level``, ``vocabulary_`` and ``input_type_``)."""

    def _tokenizer(self):
        if self.level is None:
            raise ValueError(
                "this model was trained with a custom tokenizer, which cannot be saved; set it "
                "again with model.set_params(level=your_tokenizer), or pass lists of tokens."
            )
        return get_tokenizer(self.level)

    def _documents(self, texts, name, input_type=None):
        """Token sequences (str for character level, else lists of str) of ``texts``."""
        if isinstance(texts, (str, bytes)):
            raise ValueError(
                f"{name} must be a list of documents, got a single {type(texts).__name__} "
                f"{texts[:40]!r}...; wrap it in a list: [{name}]."
            )
        if not isinstance(texts, Iterable):
            raise ValueError(f"{name} must be a list of documents (str, or lists of tokens), got "
                             f"{type(texts).__name__}.")
        docs = list(texts)
        kinds = set()
        for i, doc in enumerate(docs):
            if isinstance(doc, str):
                kinds.add("text")
            elif (isinstance(doc, (list, tuple, np.ndarray))
                  and all(isinstance(t, str) for t in doc)):
                kinds.add("tokens")
            else:
                raise ValueError(
                    f"{name}[{i}] is a {type(doc).__name__} ({str(doc)[:40]!r}); each document "
                    "must be a str or a list of token strings."
                )
        if len(kinds) > 1:
            raise ValueError(f"{name} mixes strings and token lists; pass only one kind.")
        kind = kinds.pop() if kinds else (input_type or "text")
        if input_type is not None and kind != input_type:
            want = "strings" if input_type == "text" else "lists of tokens"
            raise ValueError(f"this model was fitted on {want}; pass {name} as {want} too.")
        if kind == "tokens":
            return [list(d) for d in docs], kind
        if self.level == "char":
            return docs, kind  # strings are sequences of characters; Vocabulary encodes them fast
        tok = self._tokenizer()
        out = []
        for d in docs:
            toks = tok(d)
            if not isinstance(toks, (list, tuple)) or not all(isinstance(t, str) for t in toks):
                raise ValueError("the tokenizer must return a list of str, got "
                                 f"{type(toks).__name__}; fix the level callable.")
            out.append(list(toks))
        return out, kind

    def _encode(self, docs):
        """Token sequences -> id arrays ``[BOS, ..., EOS]``; special strings inside a document
        become UNK."""
        out = []
        for d in docs:
            ids = self.vocabulary_.encode(d, add_bos=True, add_eos=True)
            inner = ids[1:-1]
            inner[(inner < N_SPECIAL) & (inner != UNK)] = UNK
            out.append(ids)
        return out

    def _prompt_ids(self, prefix, name="prefix"):
        if isinstance(prefix, str):
            if self.input_type_ == "tokens":
                if prefix == "":
                    toks = []
                else:
                    raise ValueError(f"this model was fitted on lists of tokens; pass {name} "
                                     f"as a list of tokens, got the str {prefix!r}.")
            else:
                toks = prefix if self.level == "char" else self._tokenizer()(prefix)
        elif isinstance(prefix, (list, tuple)) and all(isinstance(t, str) for t in prefix):
            toks = list(prefix)
        else:
            raise ValueError(f"{name} must be a str or a list of token strings, got "
                             f"{type(prefix).__name__}.")
        ids = self.vocabulary_.encode(toks, add_bos=True)
        inner = ids[1:]
        inner[(inner < N_SPECIAL) & (inner != UNK)] = UNK
        return ids

    @property
    def _separator(self):
        return "" if (self.input_type_ == "text" and self.level == "char") else " "
