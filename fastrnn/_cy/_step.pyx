# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""One streaming step of one recurrent layer, every buffer bound once (the Cython backend).

A streaming step is a few microseconds of arithmetic, so what a general kernel call costs around it
-- checking and converting a dozen array arguments, a numpy product for the input projection, the
copies in and out of the state -- would be most of its time. :class:`LayerStep` takes the
layer's weights and the stream's buffers once, when the stream starts, keeps raw pointers to them,
and :meth:`LayerStep.run` then does the whole step in C: the input projection and the recurrent
product through BLAS (:mod:`fastrnn._cy._blas`) and the cell through the same inline functions as
the sequence kernels (:mod:`fastrnn._cy._cellmath`), so the mathematics is not written twice.

Cells (``kind``): ``"rnn"`` (tanh or relu), ``"lstm"`` (peepholes, gate switches), ``"gru"``
(reset gate after the recurrent product) and ``"gru_v1"`` (before). Weights in the layer's
conventions: ``wih_t`` is ``W_ih^T`` of shape ``(I, G*H)``, ``bias`` the bias added to the input
projection (``b_ih``, plus ``b_hh`` except for ``"gru"``), ``whh_t`` is ``W_hh^T`` ``(H, G*H)``
(``"gru_v1"``: the reset and update blocks ``(H, 2H)``, and ``whh_n_t`` the candidate's
``(H, H)``), ``bhh`` the GRU's recurrent bias ``(3H,)``, ``peep`` the LSTM's ``(3, H)`` peephole
weights.
"""

from cython cimport floating

from ._blas cimport matmul
from ._cellmath cimport gru_fwd_row, gru_v1_gates_row, gru_v1_out_row, lstm_fwd_row, rnn_act
from ._rows cimport copy

import numpy as np

_KINDS = {"rnn": 0, "lstm": 1, "gru": 2, "gru_v1": 3}


cdef class LayerStep


cdef inline char* _ptr(object a):
    cdef Py_ssize_t address = a.ctypes.data
    return <char*>address


cdef void _project(const floating* inp, const floating* wih_t, const floating* bias,
                   floating* xp, Py_ssize_t B, Py_ssize_t I, Py_ssize_t G) noexcept nogil:
    cdef Py_ssize_t b, j
    matmul(inp, wih_t, xp, B, I, G, <floating>0)
    for b in range(B):
        for j in range(G):
            xp[b * G + j] += bias[j]


cdef void _rnn(LayerStep s, floating* xp, floating* a, floating* h, floating* hnew) noexcept nogil:
    cdef Py_ssize_t q, n = s.B * s.H
    matmul(<floating*>h, <floating*>s.whh_t, a, s.B, s.H, s.H, <floating>0)
    for q in range(n):
        hnew[q] = rnn_act(xp[q] + a[q], s.relu)
    copy(hnew, h, n)


cdef void _lstm(LayerStep s, floating* xp, floating* a, floating* h, floating* hnew) noexcept nogil:
    cdef Py_ssize_t b, H = s.H, G = s.G
    cdef floating* c = <floating*>s.c
    cdef floating* cnew = <floating*>s.cnew
    cdef floating* act = <floating*>s.acts
    cdef const floating* peep = <floating*>s.peep
    matmul(<floating*>h, <floating*>s.whh_t, a, s.B, H, G, <floating>0)
    for b in range(s.B):
        lstm_fwd_row(H, xp + b * G, a + b * G, c + b * H, peep, peep + H, peep + 2 * H,
                     s.on_i, s.on_f, s.on_o, act + b * G, cnew + b * H, hnew + b * H)
    copy(cnew, c, s.B * H)
    copy(hnew, h, s.B * H)


cdef void _gru(LayerStep s, floating* xp, floating* a, floating* h, floating* hnew) noexcept nogil:
    cdef Py_ssize_t b, H = s.H, G = s.G
    cdef floating* act = <floating*>s.acts
    matmul(<floating*>h, <floating*>s.whh_t, a, s.B, H, G, <floating>0)
    for b in range(s.B):
        gru_fwd_row(H, xp + b * G, a + b * G, <floating*>s.bhh, h + b * H, act, hnew + b * H)
    copy(hnew, h, s.B * H)


cdef void _gru_v1(LayerStep s, floating* xp, floating* a, floating* h,
                  floating* hnew) noexcept nogil:
    cdef Py_ssize_t b, H = s.H, G = s.G
    cdef floating* act = <floating*>s.acts
    cdef floating* rh = <floating*>s.rh
    cdef floating* an = <floating*>s.an
    matmul(<floating*>h, <floating*>s.whh_t, a, s.B, H, 2 * H, <floating>0)
    for b in range(s.B):
        gru_v1_gates_row(H, xp + b * G, a + b * 2 * H, h + b * H, act + b * G, rh + b * H)
    matmul(rh, <floating*>s.whh_n_t, an, s.B, H, H, <floating>0)
    for b in range(s.B):
        gru_v1_out_row(H, xp + b * G, an + b * H, h + b * H, act + b * G, hnew + b * H)
    copy(hnew, h, s.B * H)


cdef bint _finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether ``x[:n]`` is all finite (``0 * x`` is NaN for an infinite or NaN ``x``)."""
    cdef Py_ssize_t q
    cdef floating acc = 0
    for q in range(n):
        acc += x[q] * 0
    return acc == 0


cdef bint _run(LayerStep s, floating* dummy) noexcept nogil:
    cdef floating* xp = <floating*>s.xp
    cdef floating* a = <floating*>s.a
    cdef floating* h = <floating*>s.h
    cdef floating* hnew = <floating*>s.hnew
    if not _finite(<floating*>s.inp, s.B * s.n_in):
        return False
    _project(<floating*>s.inp, <floating*>s.wih_t, <floating*>s.bias, xp, s.B, s.n_in, s.G)
    if s.kind == 0:
        _rnn(s, xp, a, h, hnew)
    elif s.kind == 1:
        _lstm(s, xp, a, h, hnew)
    elif s.kind == 2:
        _gru(s, xp, a, h, hnew)
    else:
        _gru_v1(s, xp, a, h, hnew)
    return True


cdef class LayerStep:
    """One layer's streaming step with its weights and buffers bound.

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru", "gru_v1"}
    inp : ndarray of shape (B, I)
        Where the step's input is read (the stream's input buffer, or the state ``h`` of the layer
        below, which that layer's step has just updated).
    wih_t, bias, whh_t, whh_n_t, bhh, peep
        Weights (see the module docstring); arrays of the cell that does not use them may be
        ``None``. They are read, never copied: keep them unchanged while the stream runs.
    gates_on : sequence of 3 ints
        LSTM input, forget and output gates switched on.
    relu : bool
        Simple RNN with ReLU instead of tanh.
    h : ndarray of shape (B, H)
        The carried state, updated in place by :meth:`run`.
    c : ndarray of shape (B, H) or None
        The LSTM's carried cell state, updated in place.

    Every array must be C-contiguous and of the dtype of ``h`` (float32 or float64); the object
    keeps references to all of them.
    """

    cdef object _keep
    cdef int kind
    cdef bint f64, relu, on_i, on_f, on_o
    cdef Py_ssize_t B, n_in, H, G
    cdef char* inp
    cdef char* wih_t
    cdef char* bias
    cdef char* whh_t
    cdef char* whh_n_t
    cdef char* bhh
    cdef char* peep
    cdef char* h
    cdef char* c
    cdef char* xp
    cdef char* a
    cdef char* an
    cdef char* acts
    cdef char* rh
    cdef char* hnew
    cdef char* cnew

    def __init__(self, kind, inp, wih_t, bias, whh_t, whh_n_t, bhh, peep, gates_on, relu, h,
                 c=None):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}.")
        self.kind = _KINDS[kind]
        dt = np.asarray(h).dtype
        if dt not in (np.float32, np.float64):
            raise ValueError(f"h must be float32 or float64, got {dt}.")
        B, H = h.shape
        I = inp.shape[1]
        G = {"rnn": 1, "lstm": 4, "gru": 3, "gru_v1": 3}[kind]
        rec = 2 * H if kind == "gru_v1" else G * H
        want = {"inp": (inp, (B, I)), "wih_t": (wih_t, (I, G * H)), "bias": (bias, (G * H,)),
                "whh_t": (whh_t, (H, rec)), "h": (h, (B, H))}
        if kind == "lstm":
            want.update(peep=(peep, (3, H)), c=(c, (B, H)))
        if kind == "gru":
            want.update(bhh=(bhh, (3 * H,)))
        if kind == "gru_v1":
            want.update(whh_n_t=(whh_n_t, (H, H)))
        for name, (arr, shape) in want.items():
            if not isinstance(arr, np.ndarray) or arr.dtype != dt or arr.shape != shape \
                    or not arr.flags.c_contiguous:
                raise ValueError(
                    f"LayerStep: {name} must be a C-contiguous {dt} array of shape {shape}, got "
                    f"{type(arr).__name__} {getattr(arr, 'dtype', '')} "
                    f"{getattr(arr, 'shape', '')}.")
        if kind in ("lstm",) and (h is c):
            raise ValueError("LayerStep: h and c must be different arrays.")
        self.f64 = dt == np.float64
        self.B, self.n_in, self.H, self.G = B, I, H, G * H  # G: gate columns
        self.relu = bool(relu)
        on = [int(g) != 0 for g in gates_on] if gates_on is not None else [True] * 3
        self.on_i, self.on_f, self.on_o = on
        scratch = dict(xp=np.zeros((B, G * H), dt), a=np.zeros((B, rec), dt),
                       an=np.zeros((B, H), dt), acts=np.zeros((B, 4 * H), dt),
                       rh=np.zeros((B, H), dt), hnew=np.zeros((B, H), dt),
                       cnew=np.zeros((B, H), dt))
        self._keep = (inp, wih_t, bias, whh_t, whh_n_t, bhh, peep, h, c, scratch)
        self.inp, self.wih_t, self.bias = _ptr(inp), _ptr(wih_t), _ptr(bias)
        self.whh_t, self.h = _ptr(whh_t), _ptr(h)
        self.whh_n_t = _ptr(whh_n_t) if whh_n_t is not None else NULL
        self.bhh = _ptr(bhh) if bhh is not None else NULL
        self.peep = _ptr(peep) if peep is not None else NULL
        self.c = _ptr(c) if c is not None else NULL
        self.xp, self.a, self.an = _ptr(scratch["xp"]), _ptr(scratch["a"]), _ptr(scratch["an"])
        self.acts, self.rh = _ptr(scratch["acts"]), _ptr(scratch["rh"])
        self.hnew, self.cnew = _ptr(scratch["hnew"]), _ptr(scratch["cnew"])

    def run(self):
        """Advance the layer by one step: read ``inp``, update ``h`` (and ``c``) in place.

        Returns
        -------
        ok : bool
            False, with nothing changed, when ``inp`` holds NaN or an infinity.
        """
        cdef bint ok
        with nogil:
            if self.f64:
                ok = _run[double](self, NULL)
            else:
                ok = _run[float](self, NULL)
        return ok
