# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""Inference on one sequence: every layer and direction of a recurrent layer in one C call.

At batch 1 a step's arithmetic is a few microseconds, so what surrounds it decides: the general
kernels (:mod:`fastrnn._cy._lstm` ...) take their weights transposed (a copy per call), check a
dozen arguments per call and run the recurrent product through BLAS ``sgemv``, whose call costs
about as much as the product of a small layer. Here one call runs the whole sequence:

* the input projection of every step is one ``sgemm`` (float32) with ``weight_ih`` read as it is
  stored, or, for int8 weights, one int8 product per step;
* the recurrence of each layer-direction is C (``fastrnn/_cy/_infer.h``): the matrix-vector
  product ``weight_hh @ h`` of each step on the weights as stored (float32) or packed once
  (int8, :class:`QMatrix`), and the cell's float32 mathematics, compiled for AVX-512, AVX2 and
  portable C, the level chosen when this module is imported (:func:`isa`);
* nothing returns to Python between steps, layers or directions.

Int8: weights quantised per output row, activations (the step's input and state) quantised per
step and per vector, integer accumulation, cell mathematics in float32. bf16 (:class:`BMatrix`):
weights and activations rounded to bfloat16, products summed in float32 (``vdpbf16ps``).

``FASTRNN_ISA`` (``"avx512"``, ``"avx2"`` or ``"generic"``) caps the level used, as does
:func:`set_isa`; the default is the highest the CPU supports.
"""


from libc.stdint cimport int8_t, int32_t, uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from scipy.linalg.cython_blas cimport sgemm

import numpy as np

from ._isa import isa_from_env

cdef extern from "stdlib.h" nogil:
    void* aligned_alloc(size_t alignment, size_t size)


cdef inline void* alloc_lines(size_t nbytes) noexcept nogil:
    """``nbytes`` of memory starting on a cache line (64 bytes), released with ``free``: the
    kernels' 64-byte vector loads then never straddle two lines."""
    return aligned_alloc(64, (nbytes + 63) // 64 * 64)


cdef extern from "_infer.h" nogil:
    ctypedef Py_ssize_t fr_idx
    ctypedef struct fr_mat:
        const float* w
        fr_idx ldw
        const uint16_t* bf
        const int8_t* p
        const int32_t* corr
        const float* scale
        fr_idx R, K, Rp, Kp
    ctypedef struct fr_spec:
        int kind, relu, on_i, on_f, on_o
        fr_idx L, H, G
    void fr_matvec(const fr_mat* m, const float* x, float* y, int8_t* qbuf, int32_t* acc)
    void fr_qmatvec(const fr_mat* m, const float* x, float* y, int8_t* qbuf, int32_t* acc)
    void fr_sgemv(const float* W, fr_idx ldw, fr_idx R, fr_idx K, const float* x, float* y)
    void fr_recur(const fr_spec* s, int d, const float* xp, const fr_mat* hh, const fr_mat* hhn,
                  const float* b_hh, const float* peep, float* out, fr_idx ld_out,
                  const float* h0, const float* c0, float* hn, float* cn, float* ws,
                  int8_t* qbuf, int32_t* acc)
    int fr_project(const float* W, fr_idx G, fr_idx K, const float* X, fr_idx ldx, fr_idx L,
                   const float* b1, const float* b2, float* out, float* panel)
    int fr_isa_supported(int* i8, int* bf)
    int fr_isa_set(int level)
    int fr_level_f32
    int fr_level_i8
    int fr_level_bf16

__all__ = ["QMatrix", "BMatrix", "Weights", "forward", "isa", "set_isa", "sgemv", "qgemv", "bgemv",
           "LEVELS"]

#: ISA levels by name
LEVELS = {"generic": 0, "avx2": 1, "avx512": 2}
_NAMES = {v: k for k, v in LEVELS.items()}
_KINDS = {"rnn": 0, "lstm": 1, "gru": 2, "gru_v1": 3}


def isa():
    """The instruction set levels in use and supported.

    Returns
    -------
    dict
        ``float32``, ``int8`` and ``bf16``: the level of the kernels in use (``"avx512"``,
        ``"avx2"`` or ``"generic"``; bf16 has no AVX2 kernel); ``supported_float32``,
        ``supported_int8``, ``supported_bf16``: the highest this CPU runs (int8 at
        ``"avx512"`` needs AVX-512 VNNI, bf16 AVX-512 BF16).
    """
    cdef int q, b
    cdef int f = fr_isa_supported(&q, &b)
    return {"float32": _NAMES[fr_level_f32], "int8": _NAMES[fr_level_i8],
            "bf16": _NAMES[fr_level_bf16], "supported_float32": _NAMES[f],
            "supported_int8": _NAMES[q], "supported_bf16": _NAMES[b]}


def set_isa(level):
    """Use the kernels of ``level`` (``"avx512"``, ``"avx2"`` or ``"generic"``), or of the highest
    level the CPU supports below it. Returns :func:`isa`'s dict. For tests and comparisons: the
    results of the levels differ only by the order of float32 sums."""
    if level not in LEVELS:
        raise ValueError(f"ISA level must be one of {sorted(LEVELS)}, got {level!r}.")
    fr_isa_set(LEVELS[level])
    return isa()


def projection_uses_blas():
    """Whether :func:`forward`'s float32 input projection calls BLAS (``sgemm``) at the level in
    use; at AVX-512 it is this module's own kernel, and a call makes no BLAS call at all."""
    return fr_level_f32 != 2


fr_isa_set(LEVELS[isa_from_env(LEVELS)])


cdef class QMatrix:
    """An int8 weight matrix packed for :func:`qgemv`: ``W ≈ q * scale[:, None]``.

    Parameters
    ----------
    q : ndarray of int8, shape (R, K)
        Quantised weights, in [-127, 127].
    scale : ndarray of float32, shape (R,)
        One scale per row (output).

    Attributes
    ----------
    packed : ndarray of int8, shape (Rp // 16, Kp // 4, 16, 4)
        ``q`` padded with zeros to ``Rp`` rows (a multiple of 16) and ``Kp`` columns (a multiple
        of 4), in blocks of 16 rows by 4 columns.
    corr : ndarray of int32, shape (Rp,)
        ``128 * q.sum(axis=1)``: the offset the VNNI kernel's unsigned activations add.
    """

    cdef readonly object packed, corr, scale
    cdef readonly Py_ssize_t R, K, Rp, Kp
    cdef const int8_t* p_packed
    cdef const int32_t* p_corr
    cdef const float* p_scale

    def __init__(self, q, scale):
        q = np.asarray(q)
        scale = np.ascontiguousarray(scale, dtype=np.float32)
        if q.dtype != np.int8 or q.ndim != 2:
            raise ValueError(f"QMatrix: q must be a 2-D int8 array, got {q.dtype} of shape "
                             f"{q.shape}.")
        if scale.shape != (q.shape[0],):
            raise ValueError(f"QMatrix: scale must have shape ({q.shape[0]},) (one per row of q), "
                             f"got {scale.shape}.")
        R, K = q.shape
        Rp, Kp = -(-R // 16) * 16, -(-K // 4) * 4
        full = np.zeros((Rp, Kp), np.int8)
        full[:R, :K] = q
        packed = np.ascontiguousarray(full.reshape(Rp // 16, 16, Kp // 4, 4).transpose(0, 2, 1, 3))
        corr = (128 * full.sum(axis=1, dtype=np.int64)).astype(np.int32)
        self.packed, self.corr, self.scale = packed, corr, scale
        self.R, self.K, self.Rp, self.Kp = R, K, Rp, Kp
        cdef const int8_t[:, :, :, ::1] pv = packed
        cdef const int32_t[::1] cv = corr
        cdef const float[::1] sv = scale
        self.p_packed = &pv[0, 0, 0, 0]
        self.p_corr = &cv[0]
        self.p_scale = &sv[0]


# --------------------------------------------------------------------------- one matrix product
cdef int set_float(fr_mat* m, object w, Py_ssize_t row0, Py_ssize_t R, Py_ssize_t K) except -1:
    """``m``: rows ``row0 .. row0+R`` of the float32 matrix ``w`` (C-contiguous, K columns)."""
    cdef const float[:, ::1] v = w
    if v.shape[1] != K or v.shape[0] < row0 + R:
        raise ValueError(f"a weight matrix has shape {tuple(w.shape)}, expected ({row0 + R}, {K}) "
                         "or more rows.")
    m.w = &v[row0, 0]
    m.ldw = K
    m.p = NULL
    m.bf = NULL
    m.R, m.K = R, K
    return 0


cdef class BMatrix


cdef int set_quant(fr_mat* m, object w, Py_ssize_t R, Py_ssize_t K) except -1:
    """``m``: the int8 :class:`QMatrix` or bf16 :class:`BMatrix` ``w`` of shape (R, K)."""
    cdef QMatrix q
    cdef BMatrix b
    if w.R != R or w.K != K:
        raise ValueError(f"a {type(w).__name__} has shape ({w.R}, {w.K}), expected ({R}, {K}).")
    m.w = NULL
    m.p = NULL
    m.bf = NULL
    if isinstance(w, QMatrix):
        q = w
        m.p, m.corr, m.scale = q.p_packed, q.p_corr, q.p_scale
        m.Rp, m.Kp = q.Rp, q.Kp
    else:
        b = w
        m.bf = b.p_packed
        m.Rp, m.Kp = b.Rp, b.Kp
    m.R, m.K = R, K
    return 0


cdef class BMatrix:
    """A bf16 weight matrix packed for the bf16 product (AVX-512 BF16's ``vdpbf16ps``, float32
    sums).

    Parameters
    ----------
    bits : ndarray of uint16, shape (R, K)
        The bf16 weights: the upper 16 bits of their float32 values.

    Attributes
    ----------
    packed : ndarray of uint16, shape (Rp // 16, Kp // 2, 16, 2)
        ``bits`` padded with zeros to ``Rp`` rows (a multiple of 16) and ``Kp`` columns (even),
        in blocks of 16 rows by 2 columns.
    """

    cdef readonly object packed
    cdef readonly Py_ssize_t R, K, Rp, Kp
    cdef const uint16_t* p_packed

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype != np.uint16 or bits.ndim != 2:
            raise ValueError(f"BMatrix: bits must be a 2-D uint16 array (bf16 values), got "
                             f"{bits.dtype} of shape {bits.shape}.")
        R, K = bits.shape
        Rp, Kp = -(-R // 16) * 16, -(-K // 2) * 2
        full = np.zeros((Rp, Kp), np.uint16)
        full[:R, :K] = bits
        packed = np.ascontiguousarray(full.reshape(Rp // 16, 16, Kp // 2, 2).transpose(0, 2, 1, 3))
        self.packed = packed
        self.R, self.K, self.Rp, self.Kp = R, K, Rp, Kp
        cdef const uint16_t[:, :, :, ::1] pv = packed
        self.p_packed = &pv[0, 0, 0, 0]


cdef struct Unit:
    fr_mat ih, hh, hhn
    const float* b_ih
    const float* b_hh
    const float* peep    # (3, H) or NULL


cdef void run_unit(const fr_spec* s, const Unit* u, int d, const float* inp, Py_ssize_t ld_in,
                   Py_ssize_t K, float* out, Py_ssize_t ld_out, const float* h0, const float* c0,
                   float* hn, float* cn, float* ws, int8_t* qbuf, int32_t* acc) noexcept nogil:
    """One direction of one layer: ``inp`` (L, K) rows of leading dimension ``ld_in``; the states
    written to ``out`` (row ``t``, columns ``d*H .. (d+1)*H``, leading dimension ``ld_out``)."""
    cdef Py_ssize_t L = s.L, H = s.H, G = s.G, t, j
    cdef float* xp = ws                 # (L, G), then the recurrence's scratch, the panel
    cdef char tr_t = b'T', tr_n = b'N'
    cdef int m_ = <int>G, n_ = <int>L, k_ = <int>K, lda = <int>K, ldb = <int>ld_in, ldc = <int>G
    cdef float one = 1, zero = 0
    cdef bint add_hh = s.kind != 2
    # the input projection of every step, then the biases (b_hh too, but for the GRU whose b_hh
    # is inside the reset gate's product)
    if u.ih.w != NULL and fr_project(u.ih.w, G, K, inp, ld_in, L, u.b_ih,
                                     u.b_hh if add_hh else NULL, xp, xp + L * G + G + 11 * H):
        pass  # the biases are in
    else:
        if u.ih.w != NULL:
            sgemm(&tr_t, &tr_n, &m_, &n_, &k_, &one, <float*>u.ih.w, &lda, <float*>inp, &ldb,
                  &zero, xp, &ldc)
        else:
            for t in range(L):
                fr_matvec(&u.ih, inp + t * ld_in, xp + t * G, qbuf, acc)
        add_biases(u, xp, L, G, add_hh)
    fr_recur(s, d, xp, &u.hh, &u.hhn, u.b_hh, u.peep, out + d * H, ld_out, h0, c0, hn, cn,
             xp + L * G, qbuf, acc)


cdef inline void add_biases(const Unit* u, float* xp, Py_ssize_t L, Py_ssize_t G,
                            bint add_hh) noexcept nogil:
    cdef Py_ssize_t t, j
    for t in range(L):
        for j in range(G):
            xp[t * G + j] += u.b_ih[j]
        if add_hh:
            for j in range(G):
                xp[t * G + j] += u.b_hh[j]


cdef class Weights:
    """A recurrent layer's weights bound for :func:`forward` (raw pointers to the arrays, which it
    keeps alive: they are read at every call, never copied, so changes made to them in place are
    seen by the next call).

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru", "gru_v1"}
    relu : bool
        The simple RNN's activation is relu (else tanh).
    gates_on : sequence of 3 ints
        The LSTM's input, forget and output gates switched on.
    units : list
        One tuple per layer-direction, in PyTorch's order (layer 0, layer 0 reverse, layer 1,
        ...): ``(w_ih, w_hh, b_ih, b_hh, peep)`` with float32 C-contiguous weights in the layer's
        shapes (``weight_ih`` (G*H, K), ``weight_hh`` (G*H, H), biases (G*H,), ``peep`` (3, H)
        or None), where ``w_ih`` and ``w_hh`` may instead be :class:`QMatrix` (int8) or
        :class:`BMatrix` (bf16); for ``"gru_v1"`` with such weights ``w_hh`` is a pair, the rows
        of the reset and update gates (2H, H) and those of the candidate (H, H).
    input_size, hidden_size, num_directions : int
    """

    cdef Unit* us
    cdef fr_spec spec
    cdef readonly object units
    cdef readonly Py_ssize_t n, D, H, G, n_in, kmax, rmax

    def __cinit__(self):
        self.us = NULL

    def __dealloc__(self):
        free(self.us)

    def __init__(self, str kind, bint relu, gates_on, list units, Py_ssize_t input_size,
                 Py_ssize_t hidden_size, Py_ssize_t num_directions):
        cdef Py_ssize_t q, K, n = len(units), H = hidden_size, D = num_directions, G
        cdef const float[::1] bv
        cdef const float[:, ::1] pv
        cdef Unit* u
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}.")
        if D not in (1, 2) or n == 0 or n % D or H < 1:
            raise ValueError(f"units must hold num_directions ({D}) units per layer, got {n}.")
        G = {"rnn": 1, "lstm": 4, "gru": 3, "gru_v1": 3}[kind] * H
        self.spec.kind = _KINDS[kind]
        self.spec.relu = relu
        self.spec.on_i, self.spec.on_f, self.spec.on_o = [int(g) != 0 for g in gates_on]
        self.spec.H, self.spec.G = H, G
        self.n, self.D, self.H, self.G, self.n_in = n, D, H, G, input_size
        self.kmax, self.rmax = max(input_size, D * H), G
        self.us = <Unit*>malloc(n * sizeof(Unit))
        if self.us == NULL:
            raise MemoryError()
        for q in range(n):
            u = &self.us[q]
            w_ih, w_hh, b_ih, b_hh, peep = units[q]
            K = input_size if q < D else D * H
            if isinstance(w_ih, (QMatrix, BMatrix)):
                set_quant(&u.ih, w_ih, G, K)
                self.rmax = max(self.rmax, w_ih.Rp)
            else:
                set_float(&u.ih, w_ih, 0, G, K)
            if self.spec.kind == 3:
                if isinstance(w_hh, tuple):
                    set_quant(&u.hh, w_hh[0], 2 * H, H)
                    set_quant(&u.hhn, w_hh[1], H, H)
                    self.rmax = max(self.rmax, w_hh[0].Rp, w_hh[1].Rp)
                else:
                    set_float(&u.hh, w_hh, 0, 2 * H, H)
                    set_float(&u.hhn, w_hh, 2 * H, H, H)
            elif isinstance(w_hh, (QMatrix, BMatrix)):
                set_quant(&u.hh, w_hh, G, H)
                self.rmax = max(self.rmax, w_hh.Rp)
            else:
                set_float(&u.hh, w_hh, 0, G, H)
            for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
                bv = b
                if bv.shape[0] != G:
                    raise ValueError(f"{name} must have shape ({G},), got {tuple(b.shape)}.")
                if name == "b_ih":
                    u.b_ih = &bv[0]
                else:
                    u.b_hh = &bv[0]
            u.peep = NULL
            if self.spec.kind == 1 and peep is not None:
                pv = peep
                if pv.shape[0] != 3 or pv.shape[1] != H:
                    raise ValueError(f"peep must have shape (3, {H}), got {tuple(peep.shape)}.")
                u.peep = &pv[0, 0]
        self.units = tuple(tuple(u_) for u_ in units)


def forward(Weights w, x, Py_ssize_t length, h0, c0, y, hn, cn):
    """Run every layer and direction of a recurrent layer over one sequence.

    Parameters
    ----------
    w : Weights
    x : ndarray of float32, shape (T, input_size)
        The sequence; steps from ``length`` on are not read.
    length : int
        Steps of the sequence, ``1 <= length <= T``.
    h0, c0 : ndarray of float32, shape (n_units, H)
        Initial states (``c0`` read for an LSTM only).
    y : ndarray of float32, shape (T, D*H)
        Receives the last layer's outputs, zero from step ``length`` on.
    hn, cn : ndarray of float32, shape (n_units, H)
        Receive the final states (``cn`` written for an LSTM only).
    """
    cdef fr_spec s = w.spec
    cdef Py_ssize_t n = w.n, D = w.D, H = w.H, G = w.G, I = w.n_in, T, q, layer, d, K, n_layers
    cdef bint lstm = s.kind == 1
    cdef const float[:, ::1] xv = x
    cdef const float[:, ::1] h0v = h0
    cdef const float[:, ::1] c0v = c0 if lstm else h0
    cdef float[:, ::1] yv = y
    cdef float[:, ::1] hnv = hn
    cdef float[:, ::1] cnv = cn if lstm else hn
    cdef float* ws = NULL
    cdef float* bufs = NULL
    cdef int8_t* qbuf = NULL
    cdef int32_t* acc = NULL
    cdef const float* inp
    cdef float* out
    cdef Py_ssize_t ld_in, ld_out
    T = xv.shape[0]
    if xv.shape[1] != I or yv.shape[0] != T or yv.shape[1] != D * H:
        raise ValueError(f"x must have shape (T, {I}) and y (T, {D * H}), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}.")
    for name, v in (("h0", h0v), ("c0", c0v), ("hn", hnv), ("cn", cnv)):
        if v.shape[0] != n or v.shape[1] != H:
            raise ValueError(f"{name} must have shape ({n}, {H}) (one row per unit), got "
                             f"{tuple(v.shape)}.")
    if not 1 <= length <= T:
        raise ValueError(f"length must be in [1, {T}], got {length}.")
    s.L = length
    try:
        ws = <float*>alloc_lines((length * G + G + 11 * H + 64 * w.kmax + 16) * sizeof(float))
        bufs = <float*>alloc_lines((2 * length * D * H + 1) * sizeof(float))
        qbuf = <int8_t*>alloc_lines(2 * w.kmax + 64)  # int8 or bf16 activations
        acc = <int32_t*>alloc_lines((w.rmax + 64) * sizeof(int32_t))
        if ws == NULL or bufs == NULL or qbuf == NULL or acc == NULL:
            raise MemoryError()
        with nogil:
            n_layers = n // D
            for layer in range(n_layers):
                if layer == 0:
                    inp, ld_in, K = &xv[0, 0], I, I
                else:
                    inp, ld_in, K = bufs + ((layer - 1) % 2) * length * D * H, D * H, D * H
                if layer == n_layers - 1:
                    out, ld_out = &yv[0, 0], D * H
                else:
                    out, ld_out = bufs + (layer % 2) * length * D * H, D * H
                for d in range(D):
                    q = layer * D + d
                    run_unit(&s, &w.us[q], <int>d, inp, ld_in, K, out, ld_out, &h0v[q, 0],
                             &c0v[q, 0], &hnv[q, 0], &cnv[q, 0], ws, qbuf, acc)
            if length < T:
                memset(&yv[length, 0], 0, (T - length) * D * H * sizeof(float))
    finally:
        free(ws)
        free(bufs)
        free(qbuf)
        free(acc)


# ------------------------------------------------------------------------------ for the tests
def sgemv(w, x):
    """``w @ x`` (float32, ``w`` (R, K) C-contiguous, ``x`` (K,)) by the matrix-vector kernel of
    the level in use."""
    cdef const float[:, ::1] wv = w
    cdef const float[::1] xv = x
    if xv.shape[0] != wv.shape[1]:
        raise ValueError(f"x must have shape ({wv.shape[1]},), got ({xv.shape[0]},).")
    y = np.empty(wv.shape[0], np.float32)
    cdef float[::1] yv = y
    if wv.shape[0] and wv.shape[1]:
        fr_sgemv(&wv[0, 0], wv.shape[1], wv.shape[0], wv.shape[1], &xv[0], &yv[0])
    else:
        y[...] = 0
    return y


def bgemv(BMatrix m, x):
    """The bf16 product of :class:`BMatrix` ``m`` with ``x`` (float32, (K,)) as the recurrence
    computes it: ``x`` rounded to bf16, float32 sums by the kernel of the level in use. Returns
    ``y`` (float32, (R,))."""
    cdef const float[::1] xv = x
    cdef fr_mat mat
    if xv.shape[0] != m.K:
        raise ValueError(f"x must have shape ({m.K},), got ({xv.shape[0]},).")
    set_quant(&mat, m, m.R, m.K)
    y = np.empty(m.R, np.float32)
    q = np.empty(2 * m.Kp + 64, np.int8)
    acc = np.empty(m.Rp + 64, np.int32)
    cdef float[::1] yv = y
    cdef int8_t[::1] qv = q
    cdef int32_t[::1] av = acc
    fr_qmatvec(&mat, &xv[0], &yv[0], &qv[0], &av[0])
    return y


def qgemv(QMatrix m, x):
    """The int8 product of :class:`QMatrix` ``m`` with ``x`` (float32, (K,)) as the recurrence
    computes it: ``x`` quantised (per vector), integer products by the kernel of the level in use,
    dequantised. Returns ``y`` (float32, (R,))."""
    cdef const float[::1] xv = x
    cdef fr_mat mat
    if xv.shape[0] != m.K:
        raise ValueError(f"x must have shape ({m.K},), got ({xv.shape[0]},).")
    set_quant(&mat, m, m.R, m.K)
    y = np.empty(m.R, np.float32)
    q = np.empty(m.Kp + 64, np.int8)
    acc = np.empty(m.Rp + 64, np.int32)
    cdef float[::1] yv = y
    cdef int8_t[::1] qv = q
    cdef int32_t[::1] av = acc
    fr_qmatvec(&mat, &xv[0], &yv[0], &qv[0], &av[0])
    return y
