"""fastrnn: recurrent neural networks with compiled CPU kernels and a scikit-learn API."""

__version__ = "0.1.0"
