"""Step-by-step inference for online use: one input vector at a time, nothing allocated per call.

``state = layer.init_state(batch_size)`` preallocates every buffer a step needs; ``layer.step(x,
state)`` advances all layers by one step with the layer's backend kernels (the same kernels as the
full-sequence forward, run over a single step) and returns the top layer's output. Results equal the
full-sequence :meth:`forward` on the same inputs.
"""

import numpy as np

from .._backend import get_backend, has_backend

__all__ = ["StreamState", "StreamingMixin"]


class StreamState:
    """The carried state and scratch buffers of a streaming layer.

    Attributes
    ----------
    h : ndarray of shape (num_layers, batch_size, hidden_size)
        Hidden state after the last step.
    c : ndarray of shape (num_layers, batch_size, hidden_size) or None
        Cell state (LSTM).
    steps : int
        Number of steps taken since :meth:`reset`.
    """

    def __init__(self, layer, batch_size):
        L, H, B, dt = layer.num_layers, layer.hidden_size, int(batch_size), layer.dtype
        G = layer.G
        self.batch_size = B
        self.h = np.zeros((L, B, H), dt)
        self.c = np.zeros((L, B, H), dt) if layer.has_cell else None
        self.steps = 0
        # per-layer buffers, shaped as the kernels expect for a sequence of one step
        self.xp = np.empty((1, B, G * H), dt)
        self.hs = np.empty((2, B, H), dt)
        self.cs = np.empty((2, B, H), dt)
        v1 = type(layer).__name__ == "GRU" and not layer.reset_after
        self.acts = np.empty((1, B, (3 if v1 else 4) * H), dt)
        self.rh = np.empty((1, B, H), dt)
        self.hin = np.empty((B, H), dt)
        self.a = np.empty((B, G * H), dt)
        self.a2 = np.empty((B, 2 * H), dt)
        self.an = np.empty((B, H), dt)
        self.batch_sizes = np.full(1, B, np.int64)
        self.nomask = np.zeros((0, 0), dt)
        self.x = np.empty((B, layer.input_size), dt)
        self.out = np.empty((B, H), dt)
        self._steppers = None  # bound Cython steps, when the stream runs on that backend

    def reset(self):
        """Start new sequences: zero the carried state."""
        self.h[...] = 0.0
        if self.c is not None:
            self.c[...] = 0.0
        self.steps = 0
        return self


class StreamingMixin:
    """Adds :meth:`init_state` and :meth:`step` to the recurrent layers."""

    def init_state(self, batch_size=1):
        """Preallocate a :class:`StreamState` for ``batch_size`` parallel streams (zero state)."""
        if self.bidirectional:
            raise ValueError(
                "a bidirectional layer cannot run step by step: its reverse direction needs the "
                "whole sequence. Use forward() on the complete sequence, or a unidirectional layer."
            )
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self._stream_weights = self._stream_prepare()
        self._stream_backend = self.backend
        if getattr(self, "auto_backend", False) and has_backend("cython"):
            # One step is a few microseconds of arithmetic: the call overhead decides, and the
            # Cython backend has the least (see _bind_cython).
            self._stream_backend = "cython"
        state = StreamState(self, batch_size)
        if self._stream_backend == "cython":
            state._steppers = self._bind_cython(state)
        return state

    def _bind_cython(self, state):
        """One :class:`fastrnn._cy._step.LayerStep` per layer, bound to the weights and to
        ``state``'s buffers: a step is then one C call per layer (about 3 us for an LSTM of
        H=128 against 13 us through the general kernel call, whose argument checks, numpy input
        projection and state copies cost more than the step's arithmetic)."""
        from .._cy._step import LayerStep

        p, dt = self.params, self.dtype
        kind = type(self).__name__.lower()
        reset_after = getattr(self, "reset_after", True)
        if kind == "gru" and not reset_after:
            kind = "gru_v1"
        steppers = []
        for layer in range(self.num_layers):
            sfx = f"_l{layer}"
            w = self._stream_weights[layer]
            bias = p["bias_ih" + sfx] + (0 if kind == "gru" else p["bias_hh" + sfx])
            steppers.append(LayerStep(
                kind, state.x if layer == 0 else state.h[layer - 1],
                np.ascontiguousarray(p["weight_ih" + sfx].T, dt), np.ascontiguousarray(bias, dt),
                w[0], w[1] if kind == "gru_v1" else None,
                np.ascontiguousarray(p["bias_hh" + sfx], dt) if kind == "gru" else None,
                w[1] if kind == "lstm" else None,
                getattr(self, "gates_on", None), getattr(self, "nonlinearity", "tanh") == "relu",
                state.h[layer], state.c[layer] if state.c is not None else None))
        return steppers

    def _stream_prepare(self):
        """Transposed recurrent weights per layer, made once (the parameters may change between
        calls of :meth:`init_state`, never during a stream)."""
        out = []
        H = self.hidden_size
        for layer in range(self.num_layers):
            w = self.params[f"weight_hh_l{layer}"]
            if self.has_cell:
                out.append((np.ascontiguousarray(w.T), self._peep(f"_l{layer}")))
            elif getattr(self, "reset_after", True):
                out.append((np.ascontiguousarray(w.T),))
            else:
                out.append((np.ascontiguousarray(w[:2 * H].T), np.ascontiguousarray(w[2 * H:].T)))
        return out

    def step(self, x, state):
        """Advance every stream by one step.

        Parameters
        ----------
        x : array-like of shape (batch_size, input_size)
            The input of this step for each stream.
        state : StreamState
            From :meth:`init_state`; updated in place.

        Returns
        -------
        y : ndarray of shape (batch_size, hidden_size)
            The top layer's output at this step. It is a buffer of ``state`` that the next step
            overwrites: copy it to keep it.
        state : StreamState
            The same object, advanced.
        """
        if not isinstance(state, StreamState):
            raise ValueError("state must come from layer.init_state(batch_size); got "
                             f"{type(state).__name__}.")
        x = np.asarray(x)
        B, I = state.batch_size, self.input_size
        if x.shape != (B, I):
            raise ValueError(f"x must have shape (batch_size, input_size) = {(B, I)}, got {x.shape}.")
        if state._steppers is not None:
            np.copyto(state.x, x, casting="same_kind")
            for stepper in state._steppers:
                if not stepper.run():  # checks its input before changing anything
                    raise ValueError("x holds a non-finite value; pass finite inputs.")
            state.steps += 1
            np.copyto(state.out, state.h[-1])
            return state.out, state
        if not np.all(np.isfinite(x)):
            raise ValueError("x holds a non-finite value; pass finite inputs.")
        np.copyto(state.x, x, casting="same_kind")
        bk = get_backend(self._stream_backend)
        inp = state.x
        for layer in range(self.num_layers):
            sfx = f"_l{layer}"
            self._stream_unit(bk, layer, sfx, inp, state)
            state.h[layer] = state.hs[1]
            if state.c is not None:
                state.c[layer] = state.cs[1]
            inp = state.h[layer]
        state.steps += 1
        np.copyto(state.out, inp)
        return state.out, state

    def _stream_unit(self, bk, layer, sfx, inp, s):
        p = self.params
        xp2 = s.xp[0]
        np.dot(inp, p["weight_ih" + sfx].T, out=xp2)
        xp2 += p["bias_ih" + sfx]
        kind = type(self).__name__
        reset_after = getattr(self, "reset_after", True)
        if kind != "GRU" or not reset_after:
            xp2 += p["bias_hh" + sfx]
        s.hs[0] = s.h[layer]
        w = self._stream_weights[layer]
        if kind == "RNN":
            bk.rnn_forward(s.xp, w[0], s.batch_sizes, s.nomask, False, self.nonlinearity == "relu",
                           s.hs, s.hin, s.a)
        elif kind == "LSTM":
            s.cs[0] = s.c[layer]
            bk.lstm_forward(s.xp, w[0], s.batch_sizes, s.nomask, False, w[1],
                            self.gates_on, s.hs, s.cs, s.acts, s.hin, s.a)
        elif reset_after:
            bk.gru_forward(s.xp, w[0], p["bias_hh" + sfx], s.batch_sizes, s.nomask, False, s.hs,
                           s.acts, s.hin, s.a)
        else:
            bk.gru_v1_forward(s.xp, w[0], w[1], s.batch_sizes, s.nomask, False, s.hs,
                              s.acts, s.rh, s.hin, s.a2, s.an)
