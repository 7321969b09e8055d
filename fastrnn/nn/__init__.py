"""Layers and networks: recurrent layers with PyTorch-compatible parameters."""

from .recurrent import GRU, LSTM, RNN

__all__ = ["RNN", "LSTM", "GRU"]
