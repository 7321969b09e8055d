"""See inside a recurrent network: gradient flow through time, gate statistics, memory length,
and plots of training histories.

The functions return small result objects of numpy arrays; the ``plot_*`` functions draw them
with matplotlib (the ``plot`` extra: ``pip install fastrnn[plot]``), which is imported only when
a plot is asked for.
"""

from ._flow import GradientFlow, gradient_flow
from ._gates import GateStatistics, gate_statistics
from ._memory import MemoryLength, make_recall_task, memory_length
from ._plot import history_curves, plot_gate_statistics, plot_gradient_flow, plot_history

__all__ = ["GradientFlow", "gradient_flow", "GateStatistics", "gate_statistics",
           "MemoryLength", "memory_length", "make_recall_task",
           "history_curves", "plot_history", "plot_gradient_flow", "plot_gate_statistics"]
