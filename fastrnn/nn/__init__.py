"""Layers and networks: recurrent layers with PyTorch-compatible parameters, the blocks around them
and the sequence network that stacks them."""

from .layers import Dense, Embedding, SoftmaxHead, pool, pool_backward
from .network import NetworkStream, SequenceNetwork
from .recurrent import GRU, LSTM, RNN, IndRNN, MinGRU, MinLSTM
from .streaming import StreamState

__all__ = ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM", "IndRNN", "StreamState", "Embedding", "Dense",
           "SoftmaxHead", "pool", "pool_backward", "SequenceNetwork", "NetworkStream"]
