"""scikit-learn estimators built on recurrent networks.

* :class:`RNNClassifier`: one label per sequence (softmax on the pooled recurrent outputs);
* :class:`RNNRegressor`: one or more real values per sequence;
* :class:`RNNTagger`: one label per step (part-of-speech tagging, named entities);
* :class:`RNNLanguageModel`: next-token distribution, perplexity, text generation.

The first three accept a 2-D array ``(n_samples, T)``, a 3-D array
``(n_samples, T, n_features)`` or a list of arrays of different lengths; with ``embedding_dim``
set they read token ids (e.g. from :class:`fastrnn.text.SequenceVectorizer`). Importing this
package imports scikit-learn; the language model is imported on first use.
"""

from ._streaming import EstimatorStream
from .classifier import RNNClassifier
from .regressor import RNNRegressor
from .tagger import RNNTagger

__all__ = ["RNNClassifier", "RNNRegressor", "RNNTagger", "RNNLanguageModel", "EstimatorStream"]


def __getattr__(name):
    if name == "RNNLanguageModel":
        from .language_model import RNNLanguageModel

        return RNNLanguageModel
    raise AttributeError(f"module 'fastrnn.estimators' has no attribute {name!r}")
