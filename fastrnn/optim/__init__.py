"""Optimisers, learning-rate schedules and gradient clipping.

Parameters and gradients are plain dictionaries ``name -> numpy.ndarray`` with
the same keys and shapes (for example the ``.params`` / ``.grads`` of a
:mod:`fastrnn.nn` layer).  Every optimiser updates the parameter arrays **in
place**, because the layers hold references to them; the per-parameter state
(momentum buffers, moment estimates, ...) takes the parameter's dtype, so a
float32 model stays float32 end to end.  After the first step an update
allocates no new arrays: all arithmetic goes through ``out=`` and in-place
operators on buffers that are created once.

The update rules are those of :mod:`torch.optim` (``SGD`` with dampening 0,
``Adagrad`` with ``lr_decay=0``, ``Adam``, ``AdamW``), and the schedules follow
:mod:`torch.optim.lr_scheduler`, so results can be compared one to one.

Examples
--------
>>> import numpy as np
>>> from fastrnn.optim import Adam, clip_grad_norm
>>> params = {"w": np.array([1.0, -2.0])}
>>> grads = {"w": np.array([3.0, 4.0])}
>>> clip_grad_norm(grads, max_norm=1.0)
5.0
>>> grads["w"]
array([0.6, 0.8])
>>> opt = Adam(lr=0.1)
>>> opt.step(params, grads)
>>> params["w"]
array([ 0.9, -2.1])
"""

__all__ = [
    "Optimizer",
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "get_optimizer",
    "LRScheduler",
    "ConstantLR",
    "StepLR",
    "ExponentialLR",
    "ReduceLROnPlateau",
    "AnnealingLR",
    "global_norm",
    "clip_grad_norm",
]

from ._clip import clip_grad_norm, global_norm
from ._optimizers import SGD, AdaGrad, Adam, AdamW, Optimizer, get_optimizer
from ._schedules import (AnnealingLR, ConstantLR, ExponentialLR, LRScheduler,
                         ReduceLROnPlateau, StepLR)
