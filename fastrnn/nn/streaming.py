"""Step-by-step inference for online use: one input vector at a time, nothing allocated per call.

``state = layer.init_state(batch_size)`` preallocates every buffer a step needs and binds the step
of the backend (:mod:`fastrnn._backend`: with ``backend="auto"`` the Cython backend's bound steps
when it is built); ``layer.step(x, state)`` advances all layers by one step and returns the top
layer's output. Results equal the full-sequence :meth:`forward` on the same inputs.
"""

import numpy as np

from .._backend import check_supports, get_backend, route

__all__ = ["StreamState", "DeviceStreamState", "StreamingMixin"]


class StreamState:
    """The carried state and the buffers of a streaming layer.

    Attributes
    ----------
    h : ndarray of shape (num_layers, batch_size, hidden_size)
        Hidden state after the last step.
    c : ndarray of shape (num_layers, batch_size, hidden_size) or None
        Cell state (LSTM).
    x : ndarray of shape (batch_size, input_size)
        The input of the step being taken.
    steps : int
        Number of steps taken since :meth:`reset`.
    backend : str
        The backend whose step was bound.
    """

    def __init__(self, layer, batch_size):
        L, H, B, dt = layer.num_layers, layer.hidden_size, int(batch_size), layer.dtype
        self.batch_size = B
        self.h = np.zeros((L, B, H), dt)
        self.c = np.zeros((L, B, H), dt) if layer.has_cell else None
        self.x = np.empty((B, layer.input_size), dt)
        self.out = np.empty((B, H), dt)
        self.steps = 0
        self.backend = None
        self._step = None

    def reset(self):
        """Start new sequences: zero the carried state."""
        self.h[...] = 0.0
        if self.c is not None:
            self.c[...] = 0.0
        self.steps = 0
        return self


class DeviceStreamState(StreamState):
    """A :class:`StreamState` whose carried states live on a GPU (``backend="cuda"``).

    The bound step (:mod:`fastrnn.kernels.cuda._stream`) keeps ``h`` and ``c`` on the device and
    writes only the top layer's output into ``out``: a step copies ``x`` up and ``out`` down, and
    nothing else. ``h`` and ``c`` read as host arrays as usual: the first read after a step
    downloads them. Writes into them are honoured too: the next step compares the arrays handed
    out with what they held when handed out, and uploads them when they differ (or when ``h`` or
    ``c`` was assigned a new array). Read them through the attributes after each step rather than
    keeping the arrays across steps: a kept array is not refreshed by later steps.
    """

    def __init__(self, layer, batch_size):
        self._stepper = None
        super().__init__(layer, batch_size)
        self._fresh()

    def _fresh(self):
        self._host_current = True  # the host arrays hold the device's state
        self._seen = None          # copies of the host arrays as handed out since the last step
        self._assigned = False     # h or c was replaced by a new array

    def _bind(self, stepper):
        """Attach the device step (its ``download_state``, ``upload_state`` and ``zero_state``),
        whose device state starts at zero, as the host arrays do."""
        self._stepper = stepper
        self._fresh()

    def _host_arrays(self):
        if self._stepper is not None and not self._host_current:
            self._stepper.download_state(self._h, self._c)
            self._host_current = True
        if self._seen is None:
            self._seen = [a.copy() for a in (self._h, self._c) if a is not None]

    @property
    def h(self):
        self._host_arrays()
        return self._h

    @h.setter
    def h(self, value):
        self._assign("_h", value)

    @property
    def c(self):
        self._host_arrays()
        return self._c

    @c.setter
    def c(self, value):
        self._assign("_c", value)

    def _assign(self, name, value):
        # bring the other array up to date first: the next step uploads both
        if self._stepper is not None and not self._host_current:
            self._stepper.download_state(self._h, self._c)
            self._host_current = True
        setattr(self, name, value)
        self._assigned = True

    def before_device_step(self):
        """Called by the device step before it runs: uploads host changes of ``h`` and ``c``."""
        seen = self._seen
        if self._assigned or (seen is not None and not all(
                np.array_equal(a, s) for a, s in zip((self._h, self._c), seen))):
            self._stepper.upload_state(self._h, self._c)
        self._seen, self._assigned = None, False

    def after_device_step(self):
        """Called by the device step after it ran: the host arrays are now behind."""
        self._host_current = False

    def reset(self):
        """Start new sequences: zero the carried state (on the device, no copy)."""
        self._h[...] = 0.0
        if self._c is not None:
            self._c[...] = 0.0
        if self._stepper is not None:
            self._stepper.zero_state()
        self._fresh()
        self.steps = 0
        return self


class StreamingMixin:
    """Adds :meth:`init_state` and :meth:`step` to the recurrent layers."""

    def init_state(self, batch_size=1):
        """Preallocate a :class:`StreamState` for ``batch_size`` parallel streams (zero state).

        The weights are read when the state is made: a later change of the parameters (training)
        needs a new state (with ``backend="cuda"`` a change is picked up at the next step).
        """
        if self.bidirectional:
            raise ValueError(
                "a bidirectional layer cannot run step by step: its reverse direction needs the "
                "whole sequence. Use forward() on the complete sequence, or a unidirectional layer."
            )
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        name = route(self.backend, "step", self._spec.kind)
        check_supports(name, self._spec.kind, self.backend)
        bk = get_backend(name)
        if getattr(self, "skip", None) is None:
            # a backend that streams on its device keeps the carried state there
            on_device = getattr(bk, "streams_on_device", False)
            state = (DeviceStreamState if on_device else StreamState)(self, batch_size)
            state._step = bk.stream(self._spec, self.params, state)
        else:
            # each layer's step, joined by the connections (which write state.out)
            state = StreamState(self, batch_size)
            from ._skip import Stream
            state._step = Stream(bk, self._spec, self.params, self.skip, state)
        state.backend = self.last_backend_ = name
        return state

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
        if not isinstance(state, StreamState) or state._step is None:
            raise ValueError("state must come from layer.init_state(batch_size); got "
                             f"{type(state).__name__}.")
        x = np.asarray(x)
        B, I = state.batch_size, self.input_size
        if x.shape != (B, I):
            raise ValueError(f"x must have shape (batch_size, input_size) = {(B, I)}, got {x.shape}.")
        if x.dtype.kind not in "fiub":
            raise ValueError(f"x must hold numbers, got dtype {x.dtype}.")
        if x.dtype == state.x.dtype:
            np.copyto(state.x, x)
        else:  # an overflow to inf is caught by the step's check (np.errstate costs microseconds)
            with np.errstate(over="ignore"):
                np.copyto(state.x, x, casting="unsafe")
        if not state._step():  # checks its input before changing anything
            raise ValueError(
                "x holds a non-finite value (or one too large for the layer's "
                f"{np.dtype(self.dtype).name}); pass finite inputs.")
        state.steps += 1
        if getattr(self, "skip", None) is None and not isinstance(state, DeviceStreamState):
            np.copyto(state.out, state.h[-1])
        return state.out, state
