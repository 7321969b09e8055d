"""Training: the optimisation step (:class:`Trainer`), the training loop every estimator runs
(:class:`TrainingLoop`) and truncated back-propagation through time over token streams.

:class:`Trainer` can be used on its own with any network that has ``params``, ``grads``,
``forward`` and ``backward`` (for example :class:`fastrnn.nn.SequenceNetwork`).
"""

from ._bptt import reset_streams, split_at_documents, truncated_bptt_batches
from ._loop import (STOP_REASONS, Batch, StoppingRule, Task, TrainingInterrupted,
                    TrainingLoop)
from ._trainer import NonFiniteWarning, Trainer, TrainingDivergedError

__all__ = [
    "Trainer", "NonFiniteWarning", "TrainingDivergedError", "TrainingLoop", "Task", "Batch",
    "StoppingRule", "TrainingInterrupted", "STOP_REASONS", "truncated_bptt_batches",
    "reset_streams", "split_at_documents",
]
