"""scikit-learn estimators built on recurrent networks.

* :class:`RNNClassifier`: one label per sequence (softmax on the pooled recurrent outputs);
* :class:`RNNRegressor`: one or more real values per sequence;
* :class:`RNNTagger`: one label per step (part-of-speech tagging, named entities);
* :class:`RNNLanguageModel`: next-token distribution, perplexity, text generation;
* :class:`RNNSeq2Seq`: an output sequence of tokens per input sequence (encoder–decoder).

The first three accept a 2-D array ``(n_samples, T)``, a 3-D array
``(n_samples, T, n_features)`` or a list of arrays of different lengths; with ``embedding_dim``
set they read token ids (e.g. from :class:`fastrnn.text.SequenceVectorizer`). The estimators need
scikit-learn, which is imported with the first of them used; the modules that predict with a
fitted model (:mod:`fastrnn.inference`) import nothing of it.
"""

from ._streaming import EstimatorStream

#: public estimator -> its module, imported on first use (each module imports scikit-learn)
_LAZY = {
    "RNNClassifier": "classifier",
    "RNNRegressor": "regressor",
    "RNNTagger": "tagger",
    "RNNLanguageModel": "language_model",
    "RNNSeq2Seq": "seq2seq",
}

__all__ = ["RNNClassifier", "RNNRegressor", "RNNTagger", "RNNLanguageModel", "RNNSeq2Seq",
           "EstimatorStream"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fastrnn.estimators' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
