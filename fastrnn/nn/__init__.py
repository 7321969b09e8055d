"""Layers and networks: recurrent layers with PyTorch-compatible parameters."""

from .recurrent import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU"]

from .layers import Dense, Embedding, pool, pool_backward  # noqa: E402
from .network import SequenceNetwork  # noqa: E402

__all__ += ["Embedding", "Dense", "pool", "pool_backward", "SequenceNetwork"]
