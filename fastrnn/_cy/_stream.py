"""Streaming on the Cython backend: one bound :class:`fastrnn._cy._step.LayerStep` per layer.

A step's arithmetic is a few microseconds, so the call overhead decides: a ``LayerStep`` is bound
once to the weights and to the stream's buffers, and a step is then one C call per layer (about
3 us for an LSTM of H=128 against 13 us through the general per-step kernel call, whose argument
checks, numpy input projection and state copies cost more than the arithmetic).
"""

import numpy as np

from .._workspace import aligned_copy
from ._step import LayerStep

__all__ = ["stream"]


class _Steps:
    """The step function of :func:`stream`."""

    def __init__(self, state, steppers):
        self.state = state
        self.steppers = steppers

    def __call__(self):
        for stepper in self.steppers:
            if not stepper.run():  # checks its input before changing anything
                return False
        return True


def stream(spec, params, state):
    """Bind a step function over ``state``'s buffers (see :mod:`fastrnn._backend`)."""
    dt, H = spec.dtype, spec.hidden_size
    steppers = []
    for layer in range(spec.num_layers):
        sfx = f"_l{layer}"
        w = params["weight_hh" + sfx]
        kind = spec.kind
        bias = params["bias_ih" + sfx] + (0 if kind == "gru" else params["bias_hh" + sfx])
        if kind == "gru_v1":
            w0, w1 = aligned_copy(w[:2 * H].T), aligned_copy(w[2 * H:].T)
        else:
            w0, w1 = aligned_copy(w.T), None
        peep = None
        if kind == "lstm":
            peep = params.get("weight_peephole" + sfx)
            peep = np.zeros((3, H), dt) if peep is None else peep
        steppers.append(LayerStep(
            kind, state.x if layer == 0 else state.h[layer - 1],
            aligned_copy(params["weight_ih" + sfx].T, dt), np.ascontiguousarray(bias, dt),
            w0, w1, np.ascontiguousarray(params["bias_hh" + sfx], dt) if kind == "gru" else None,
            peep, spec.gates_on if kind == "lstm" else None, spec.relu,
            state.h[layer], state.c[layer] if state.c is not None else None))
    # one layer: the bound C method itself, without a Python frame around it
    return steppers[0].run if len(steppers) == 1 else _Steps(state, steppers)
