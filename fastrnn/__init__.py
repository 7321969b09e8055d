"""fastrnn: recurrent neural networks with compiled CPU kernels and a scikit-learn API.

The inference path (``fastrnn.nn``, loading a model, predicting) does not import scikit-learn, so a
fresh process starts fast; the estimators import it when they are first used.
"""

from ._backend import available_backends, show_backends

__version__ = "0.1.0"

__all__ = ["__version__", "show_backends", "available_backends"]
