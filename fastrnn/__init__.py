"""fastrnn: recurrent neural networks with compiled CPU kernels and a scikit-learn API.

The inference path (``fastrnn.nn``, loading a model, predicting) does not import scikit-learn, so a
fresh process starts fast; the estimators (``fastrnn.RNNClassifier`` ...) are imported on first use.
"""

from ._backend import available_backends, show_backends
from ._config import num_threads, set_num_threads
from ._persist import ModelFileError, load
from ._version import __version__

_LAZY = {
    "RNNClassifier": "fastrnn.estimators",
    "RNNRegressor": "fastrnn.estimators",
    "RNNTagger": "fastrnn.estimators",
    "RNNLanguageModel": "fastrnn.estimators",
    "RNNSeq2Seq": "fastrnn.estimators",
    "SequenceVectorizer": "fastrnn.text",
    "load_predictor": "fastrnn.inference",
    "Predictor": "fastrnn.inference",
    "warm_up": "fastrnn._warmup",
}

__all__ = ["__version__", "show_backends", "available_backends", "load", "ModelFileError",
           "set_num_threads", "num_threads", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fastrnn' has no attribute {name!r}")
