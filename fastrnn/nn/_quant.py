"""Int8 and bf16 inference of the recurrent layers (:meth:`fastrnn.nn.LSTM.quantize`).

Weights: ``weight_ih`` and ``weight_hh`` of every layer-direction quantised per output row,
symmetrically: ``scale = max|w_row| / 127``, ``q = rint(w / scale)`` in [-127, 127] (a row of
zeros has scale 0). Activations: the input of each step and the state entering each recurrent
product quantised the same way, per vector, when they are used (dynamic quantisation). The
products accumulate in int32, exactly; the result is ``acc * scale_x * scale_w`` in float32, to
which the float32 biases are added; the cell mathematics stays float32. The kernels are those of
one-sequence inference (:mod:`fastrnn._cy._infer`: AVX-512 VNNI, AVX2 or portable C), run on each
sequence of a batch in turn.

bf16: the same weights rounded to bfloat16 (to nearest, ties to even: the upper 16 bits of a
float32), the activations rounded likewise when used, the products summed in float32 (AVX-512
BF16's ``vdpbf16ps`` where the CPU has it, portable C elsewhere).
"""

import numpy as np

__all__ = ["PRECISIONS", "KINDS", "quantize_rows", "to_bf16", "quantize_layer", "set_quantized",
           "forward", "quantized_arrays"]

#: the precisions of :meth:`quantize`
PRECISIONS = ("int8", "bf16")
#: the cells that can be quantised (those with a recurrent matrix)
KINDS = ("rnn", "lstm", "gru", "gru_v1")
#: the weights quantised, per layer-direction
WEIGHTS = ("weight_ih", "weight_hh")


def quantize_rows(w):
    """Symmetric per-row int8 quantisation.

    Parameters
    ----------
    w : ndarray of shape (R, K)

    Returns
    -------
    q : ndarray of int8, shape (R, K)
        ``rint(w / scale[:, None])``, in [-127, 127].
    scale : ndarray of float32, shape (R,)
        ``max|w[r]| / 127`` (0 for a row of zeros, whose ``q`` is 0).
    """
    w = np.asarray(w, dtype=np.float32)
    amax = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0], np.float32)
    scale = (amax / np.float32(127)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1))
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    return q, scale


def to_bf16(w):
    """float32 -> bfloat16, rounded to nearest (ties to even), as the uint16 of its bits; a NaN
    stays a NaN (its sign kept, made quiet), which rounding its bits could turn into infinity."""
    u = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, (u >> 16) | 0x0040, rounded).astype(np.uint16)


def check_precision(precision, layer):
    """``precision`` checked for ``layer``: one of :data:`PRECISIONS`, a cell of :data:`KINDS`,
    a float32 layer."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}.")
    kind = layer._spec.kind
    if kind not in KINDS:
        raise ValueError(
            f"quantize() is for the cells with a recurrent matrix (RNN, LSTM, GRU); this layer is "
            f"a {type(layer).__name__}, whose products are few: run it in float32.")
    if layer.dtype != np.float32:
        raise ValueError(f"quantize() needs a float32 layer, got dtype={layer.dtype.name}. Build "
                         "(or fit) the model with dtype float32.")
    if getattr(layer, "skip", None) is not None:
        raise ValueError(
            f"quantize() runs a stack of layers in one call and cannot apply the connections "
            f"between them yet; this layer has skip={layer.skip!r}. Run it in float32 (the "
            "one-sequence float32 path does apply them), or use a stack without skip.")
    _kernels()


def _kernels():
    try:
        from .._cy import _infer, _single
    except ImportError as exc:
        raise RuntimeError(
            "int8 inference runs on the compiled kernels of the Cython backend, which are not "
            f"built here ({exc}). Build them with `pip install -e .` or `python setup.py "
            "build_ext --inplace` (Cython>=3 and a C compiler needed).") from exc
    return _infer, _single


def quantize_layer(layer, precision):
    """Quantise ``layer``'s weights (see the module docstring) and keep them on the layer."""
    check_precision(precision, layer)
    arrays = {}
    for sfx in layer._spec.units:
        for name in WEIGHTS:
            if precision == "bf16":
                arrays[name + sfx] = to_bf16(layer.params[name + sfx])
                continue
            q, scale = quantize_rows(layer.params[name + sfx])
            arrays[name + sfx] = q
            arrays[name + sfx + "/scale"] = scale
    set_quantized(layer, precision, arrays)


def set_quantized(layer, precision, arrays):
    """Make ``layer`` run on the quantised weights ``arrays`` (as :func:`quantized_arrays` returns
    them); they are checked here, as they may come from a file.

    Raises
    ------
    ValueError
        An array is missing, extra, or of the wrong dtype, shape or range.
    """
    check_precision(precision, layer)
    want = {}
    for sfx in layer._spec.units:
        for name in WEIGHTS:
            shape = layer.params[name + sfx].shape
            if precision == "bf16":
                want[name + sfx] = (np.uint16, shape)
                continue
            want[name + sfx] = (np.int8, shape)
            want[name + sfx + "/scale"] = (np.float32, shape[:1])
    missing, extra = sorted(set(want) - set(arrays)), sorted(set(arrays) - set(want))
    if missing or extra:
        raise ValueError(f"the {precision} weights of this layer are {sorted(want)}; missing "
                         f"{missing}, unexpected {extra}.")
    kept = {}
    for name, (dtype, shape) in want.items():
        a = np.asarray(arrays[name])
        if a.dtype != dtype or a.shape != shape:
            raise ValueError(f"{precision} weight {name!r} must be {np.dtype(dtype).name} of "
                             f"shape {shape}, got {a.dtype} of shape {a.shape}.")
        if dtype == np.int8 and a.size and int(np.abs(a.astype(np.int16)).max()) > 127:
            raise ValueError(f"int8 weight {name!r} holds -128; quantised weights lie in "
                             "[-127, 127].")
        if dtype == np.float32 and not (np.isfinite(a).all() and (a >= 0).all()):
            raise ValueError(f"the scales {name!r} must be finite and >= 0.")
        if dtype == np.uint16 and a.size and int(((a >> 7) & 0xFF).max()) == 0xFF:
            raise ValueError(f"bf16 weight {name!r} holds an infinity or NaN; a trained "
                             "network has finite weights.")
        a = np.array(a, dtype=dtype, order="C")
        a.flags.writeable = False
        kept[name] = a
    layer.quantized_ = precision
    layer._qarrays = kept
    layer._qbound = None


def quantized_arrays(layer):
    """The quantised weights of ``layer`` (read-only): ``{"weight_ih_l0": int8 (G*H, K),
    "weight_ih_l0/scale": float32 (G*H,), "weight_hh_l0": ..., ...}`` (bf16: the uint16 bits of
    the weights, no scales); empty when the layer is not quantised."""
    return dict(getattr(layer, "_qarrays", None) or {})


def _bound(layer):
    """The layer's weights bound for the kernel (built once: the quantised arrays are read-only,
    the float biases are read at every call)."""
    _infer, _single = _kernels()
    spec, p, qa = layer._spec, layer.params, layer._qarrays
    arrays = tuple(p[k] for k in sorted(p))
    if layer._qbound is not None and all(a is b for a, b in zip(layer._qbound[0], arrays)):
        return layer._qbound[1]
    H = spec.hidden_size
    if layer.quantized_ == "bf16":
        def matrix(name, rows):
            return _infer.BMatrix(qa[name][rows])
    else:
        def matrix(name, rows):
            return _infer.QMatrix(qa[name][rows], qa[name + "/scale"][rows])
    units = []
    for sfx in spec.units:
        ih = matrix("weight_ih" + sfx, slice(None))
        if spec.kind == "gru_v1":
            hh = (matrix("weight_hh" + sfx, slice(0, 2 * H)),
                  matrix("weight_hh" + sfx, slice(2 * H, None)))
        else:
            hh = matrix("weight_hh" + sfx, slice(None))
        peep = p.get("weight_peephole" + sfx) if spec.kind == "lstm" else None
        units.append((ih, hh, p["bias_ih" + sfx], p["bias_hh" + sfx], peep))
    w = _single.bind(spec, units)
    layer._qbound = (arrays, w)
    return w


def forward(layer, X, lengths, h0, c0):
    """The int8 forward of ``layer`` over a validated batch ``X`` (B, T, I) float32 with
    ``lengths`` (B,) and initial states ``h0``, ``c0`` (num_layers * D, B, H); returns
    ``(Y, hn, cn)`` as the backends' forward does."""
    _, _single = _kernels()
    return _single.run_sequences(layer._spec, _bound(layer), np.ascontiguousarray(X), lengths,
                                 h0, c0)
