"""Export layers, networks and fitted estimators to ONNX, written from fastrnn's own arrays.

:func:`export` builds the graph with ``onnx.helper`` from the parameters fastrnn holds; PyTorch is
not involved. The recurrent layers become ONNX's own ``RNN``, ``LSTM`` and ``GRU`` operators (one
per stacked layer, both directions in one operator), so any ONNX runtime runs them with its
recurrent kernels; MinGRU, MinLSTM and IndRNN, which have no operator, become a ``MatMul`` for
the input projection and a ``Scan`` over time for the recurrence. The ``onnx`` package is imported only when :func:`export` is called (the
``onnx`` extra: ``pip install 'fastrnn[onnx]'``, which also installs ONNX Runtime).

Every exported graph takes a batch-first input ``X`` and the number of real steps of each
sequence, ``lengths``; the batch and time axes are dynamic. See the user guide page "Deploying
models" for the inputs and outputs of each kind of model.
"""

import os

import numpy as np

__all__ = ["export", "DEFAULT_OPSET", "MIN_OPSET"]

#: the opset of :func:`export` unless another is asked for
DEFAULT_OPSET = 17
#: the oldest opset :func:`export` writes (ONNX's recurrent operators took their present form in 14)
MIN_OPSET = 14

# fastrnn's gate blocks in the order of ONNX's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
_GATE_ORDER = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "gru_v1": (1, 0, 2)}
# the LSTM's peephole rows (i, f, o) in ONNX's order (i, o, f)
_PEEPHOLE_ORDER = (0, 2, 1)
_OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "gru_v1": "GRU"}
# the cells without an ONNX operator, written as a Scan over their element-wise recurrence
_ELEMENTWISE = ("mingru", "minlstm", "indrnn")


def _onnx():
    """The ``onnx`` package, or an ImportError that names the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "fastrnn.onnx.export needs the onnx package, which is not installed. Install the "
            "onnx extra: pip install 'fastrnn[onnx]' (onnx, and onnxruntime to run the model)."
        ) from exc
    return onnx


class _Graph:
    """Nodes, initialisers, inputs and outputs of the graph being written, with unique names."""

    def __init__(self, onnx, opset, dtype):
        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.elem = self.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self._count = 0

    def name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array, hint="c"):
        """A constant tensor (an initialiser); returns its name."""
        name = self.name(hint)
        array = np.asarray(array)
        if array.dtype.kind in "OUS":
            values = [v.encode("utf-8") if isinstance(v, str) else bytes(v)
                      for v in array.reshape(-1).tolist()]
            tensor = self.helper.make_tensor(name, self.onnx.TensorProto.STRING, array.shape,
                                             values)
        else:
            tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.inits.append(tensor)
        return name

    def ints(self, values):
        return self.const(np.asarray(values, np.int64), "ints")

    def op(self, op_type, inputs, n_out=1, hint=None, **attrs):
        """Add a node; returns its output's name (a list of names when ``n_out > 1``)."""
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def add_input(self, name, elem, shape):
        self.inputs.append(self.helper.make_tensor_value_info(name, elem, shape))
        return name

    def add_output(self, value, name, elem, shape):
        """Expose ``value`` as the graph output ``name``."""
        self.op("Identity", [value], hint=name)
        self.nodes[-1].output[0] = name
        self.outputs.append(self.helper.make_tensor_value_info(name, elem, shape))

    # ------------------------------------------------------------------ small helpers
    def reduce(self, op_type, x, axes, keepdims=0):
        """``ReduceSum`` / ``ReduceMax`` over ``axes``: an input from the opset where it became one
        (13 for ReduceSum, 18 for the others), an attribute before."""
        since = 13 if op_type == "ReduceSum" else 18
        if self.opset >= since:
            return self.op(op_type, [x, self.ints(axes)], keepdims=keepdims)
        return self.op(op_type, [x], axes=list(axes), keepdims=keepdims)

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x, axes):
        return self.op("Squeeze", [x, self.ints(axes)])

    def dim(self, x, axis):
        """The size of axis ``axis`` of ``x``, an int64 tensor of shape (1,)."""
        return self.op("Gather", [self.op("Shape", [x]), self.ints([axis])], axis=0)


# --------------------------------------------------------------------------------------------
# the recurrent layers
# --------------------------------------------------------------------------------------------


def _check_layer(layer):
    spec = layer._spec
    if spec.kind == "lstm" and not np.all(np.asarray(spec.gates_on) == 1):
        off = [n for n, on in zip(("input_gate", "forget_gate", "output_gate"), spec.gates_on)
               if not on]
        raise ValueError(
            f"this LSTM has {', '.join(off)}=False: ONNX's LSTM operator has no switch for a "
            "gate, so a gate ablation cannot be exported. Export an LSTM with all three gates on."
        )
    if spec.kind not in _OPS and spec.kind not in _ELEMENTWISE:
        raise ValueError(f"cells of kind {spec.kind!r} cannot be exported; export an RNN, LSTM, "
                         "GRU, MinGRU, MinLSTM or IndRNN layer.")


def _unit_arrays(layer, sfx, dtype):
    """``W``, ``R``, ``B`` (and ``P``) of one layer-direction in ONNX's gate order."""
    kind, H = layer._spec.kind, layer.hidden_size
    p = layer.params
    blocks = _GATE_ORDER[kind]

    def reorder(a):
        return np.concatenate([a[g * H:(g + 1) * H] for g in blocks]).astype(dtype)

    W = reorder(p["weight_ih" + sfx])
    R = reorder(p["weight_hh" + sfx])
    B = np.concatenate([reorder(p["bias_ih" + sfx]), reorder(p["bias_hh" + sfx])])
    P = None
    if kind == "lstm" and layer.peephole:
        P = p["weight_peephole" + sfx][list(_PEEPHOLE_ORDER)].reshape(-1).astype(dtype)
    return W, R, B, P


def _recurrent(g, layer, x_tbi, seq_lens, h0=None, c0=None, mask=None):
    """Write ``layer`` as one ONNX operator per stacked layer (and its connections between the
    layers, :func:`_connect`).

    Parameters
    ----------
    g : _Graph
    layer : RNN, LSTM or GRU
    x_tbi : str
        The time-major input (T, B, input_size).
    seq_lens : str
        The lengths as int32 (B,) (ONNX Runtime's recurrent kernels take no other type).
    h0, c0 : str or None
        Initial states (num_layers * num_directions, B, H); zeros when None.
    mask : str
        The (B, T) mask of real steps; needed by a layer with connections (``skip``).

    Returns
    -------
    y : str
        The last layer's output (T, num_directions, B, H).
    hn, cn : list of str
        Each layer's final states (num_directions, B, H); ``cn`` empty but for an LSTM.
    """
    _check_layer(layer)
    spec = layer._spec
    D, H = layer.num_directions, layer.hidden_size
    kind = spec.kind
    attrs = dict(hidden_size=H, direction="bidirectional" if D == 2 else "forward")
    if kind == "rnn":
        attrs["activations"] = ["Relu" if spec.relu else "Tanh"] * D
    elif kind in ("gru", "gru_v1"):
        attrs["linear_before_reset"] = 1 if kind == "gru" else 0
    x, hn, cn = x_tbi, [], []
    n_out = 3 if kind == "lstm" else 2
    skip = getattr(layer, "skip", None)
    if skip is not None:  # nothing of a padded step may reach a connection (NaN * 0 is NaN)
        real = g.unsqueeze(g.op("Transpose", [mask], perm=[1, 0]), [2])  # (T, B, 1)
        zero = g.const(np.zeros((), g.dtype), "zero")
        x = x0 = g.op("Where", [real, x_tbi, zero])
        outs_below = []
    if kind in _ELEMENTWISE:
        lens64 = g.op("Cast", [seq_lens], to=g.onnx.TensorProto.INT64)
        real_tb = g.unsqueeze(g.op("Transpose", [mask], perm=[1, 0]), [2])  # (T, B, 1)
    for k in range(layer.num_layers):
        if kind in _ELEMENTWISE:
            y, h = _elementwise_layer(g, layer, k, x, lens64, real_tb, h0)
            hn.append(h)
            if skip is not None:
                f = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]),
                                     g.ints([0, 0, -1])])
                z = _connect(g, layer, k, x, g.op("Where", [real, f, zero]))
                outs_below.append(z)
                x = g.op("Concat", [x0] + outs_below, axis=2) if skip == "dense" else z
            elif k + 1 < layer.num_layers:
                x = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]),
                                     g.ints([0, 0, -1])])
            continue
        units = [_unit_arrays(layer, f"_l{k}" + ("_reverse" if d else ""), g.dtype)
                 for d in range(D)]
        W, R, B = (g.const(np.stack([u[i] for u in units]), n) for i, n in
                   enumerate(("W", "R", "B")))
        state = []
        for s in (h0, c0):
            if s is not None:
                state.append(g.op("Slice", [s, g.ints([k * D]), g.ints([(k + 1) * D]),
                                            g.ints([0])]))
            else:
                state.append("")
        inputs = [x, W, R, B, seq_lens, state[0]]
        if kind == "lstm":
            inputs.append(state[1])
            if units[0][3] is not None:
                inputs.append(g.const(np.stack([u[3] for u in units]), "P"))
        while inputs[-1] == "":
            inputs.pop()
        outs = g.op(_OPS[kind], inputs, n_out=n_out, hint=f"{_OPS[kind].lower()}{k}", **attrs)
        y = outs[0]
        hn.append(outs[1])
        if kind == "lstm":
            cn.append(outs[2])
        if skip is not None:
            f = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]), g.ints([0, 0, -1])])
            z = _connect(g, layer, k, x, g.op("Where", [real, f, zero]))
            outs_below.append(z)
            x = g.op("Concat", [x0] + outs_below, axis=2) if skip == "dense" else z
        elif k + 1 < layer.num_layers:  # (T, D, B, H) -> (T, B, D*H), the next layer's input
            x = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]), g.ints([0, 0, -1])])
    if skip is not None:  # the top layer's output (T, B, D*H) back to (T, D, B, H)
        y = g.op("Transpose", [g.op("Reshape", [outs_below[-1], g.ints([0, 0, D, H])])],
                 perm=[0, 2, 1, 3])
    return y, hn, cn


def _elementwise_layer(g, layer, k, x, lens64, real, h0):
    """Stacked layer ``k`` of a MinGRU, MinLSTM or IndRNN: its input projection for the whole
    sequence (one MatMul), then the recurrence as a ``Scan`` over time, each direction on its own
    (the reverse one reads each sequence's real steps backwards, ``ReverseSequence``).

    ``x`` is the time-major input (T, B, I), ``real`` the (T, B, 1) mask of real steps and
    ``h0`` the initial states (num_layers * D, B, H) or None. Returns the outputs (T, D, B, H)
    and the final states (D, B, H); at a padded step the state is carried unchanged, so the
    final state is the one at each sequence's last real step.
    """
    D = layer.num_directions
    ys, hs = [], []
    for d in range(D):
        sfx = f"_l{k}" + ("_reverse" if d else "")
        if h0 is not None:
            init = g.squeeze(g.op("Slice", [h0, g.ints([k * D + d]), g.ints([k * D + d + 1]),
                                            g.ints([0])]), [0])
        else:
            shape = g.op("Concat", [g.dim(x, 1), g.ints([layer.hidden_size])], axis=0)
            init = g.op("ConstantOfShape", [shape], value=g.onnx.numpy_helper.from_array(
                np.zeros(1, g.dtype)))
        xs = x
        if d:
            xs = g.op("ReverseSequence", [x, lens64], batch_axis=1, time_axis=0)
        y, h = _elementwise_scan(g, layer, sfx, xs, real, init)
        if d:
            y = g.op("ReverseSequence", [y, lens64], batch_axis=1, time_axis=0)
        ys.append(g.unsqueeze(y, [1]))
        hs.append(g.unsqueeze(h, [0]))
    if D == 1:
        return ys[0], hs[0]
    return g.op("Concat", ys, axis=1), g.op("Concat", hs, axis=0)


def _elementwise_scan(g, layer, sfx, x, real, init):
    """One layer-direction of an element-wise cell over the time-major ``x`` (T, B, I), from
    the state ``init`` (B, H): its outputs (T, B, H) and final state (B, H).

    minGRU and minLSTM are linear in the state, ``h_t = a_t * h_{t-1} + b_t`` with ``a_t`` and
    ``b_t`` computed for all steps before the Scan (``a = 1``, ``b = 0`` at padded steps, so
    the state is carried); IndRNN's ``h_t = phi(W x_t + b + u * h_{t-1})`` keeps its state at
    padded steps with a ``Where``.
    """
    spec, H, p, dt = layer._spec, layer.hidden_size, layer.params, g.dtype
    helper, TP = g.helper, g.onnx.TensorProto
    bias = p["bias_ih" + sfx].astype(np.float64)
    if spec.kind == "indrnn":
        bias = bias + p["bias_hh" + sfx]
    proj = g.op("Add", [g.op("MatMul", [x, g.const(p["weight_ih" + sfx].T.astype(dt), "W")]),
                        g.const(bias.astype(dt), "b")])  # (T, B, G*H)

    def block(i):
        return g.op("Slice", [proj, g.ints([i * H]), g.ints([(i + 1) * H]), g.ints([2])])

    one = g.const(np.array(1, dt), "one")
    zero = g.const(np.array(0, dt), "zero")
    # the body of the Scan: names made by g.name, so none repeats one of the outer graph
    h_in, h_out, y_out = g.name("h"), g.name("h_next"), g.name("y")
    body_nodes, body_inits = [], []
    if spec.kind == "indrnn":
        scan_in = [proj, real]
        a_t, m_t = g.name("a_t"), g.name("real_t")
        body_in = [helper.make_tensor_value_info(h_in, g.elem, None),
                   helper.make_tensor_value_info(a_t, g.elem, None),
                   helper.make_tensor_value_info(m_t, TP.BOOL, None)]
        u = g.name("u")
        body_inits.append(g.onnx.numpy_helper.from_array(p["weight_hh" + sfx].astype(dt), u))
        uh, pre, new = g.name("uh"), g.name("pre"), g.name("new")
        body_nodes += [helper.make_node("Mul", [u, h_in], [uh]),
                       helper.make_node("Add", [a_t, uh], [pre]),
                       helper.make_node("Relu" if spec.relu else "Tanh", [pre], [new]),
                       helper.make_node("Where", [m_t, new, h_in], [h_out])]
    else:
        if spec.kind == "mingru":
            z = g.op("Sigmoid", [block(0)])
            keep, take, v = g.op("Sub", [one, z]), z, block(1)
        else:  # minLSTM: the forget and input gates, normalised to sum to 1
            f, i = g.op("Sigmoid", [block(0)]), g.op("Sigmoid", [block(1)])
            total = g.op("Add", [f, i])
            keep, take, v = g.op("Div", [f, total]), g.op("Div", [i, total]), block(2)
        if spec.cand:  # g(v) = v + 0.5 for v >= 0, sigmoid(v) below
            half = g.const(np.array(0.5, dt), "half")
            v = g.op("Where", [g.op("GreaterOrEqual", [v, zero]), g.op("Add", [v, half]),
                               g.op("Sigmoid", [v])])
        a = g.op("Where", [real, keep, one])
        b = g.op("Where", [real, g.op("Mul", [take, v]), zero])
        scan_in = [a, b]
        a_t, b_t = g.name("a_t"), g.name("b_t")
        body_in = [helper.make_tensor_value_info(n, g.elem, None) for n in (h_in, a_t, b_t)]
        ah = g.name("ah")
        body_nodes += [helper.make_node("Mul", [a_t, h_in], [ah]),
                       helper.make_node("Add", [ah, b_t], [h_out])]
    body_nodes.append(helper.make_node("Identity", [h_out], [y_out]))
    body = helper.make_graph(
        body_nodes, g.name(f"{spec.kind}_step"), body_in,
        [helper.make_tensor_value_info(n, g.elem, None) for n in (h_out, y_out)],
        initializer=body_inits)
    h_n, y = g.op("Scan", [init] + scan_in, n_out=2, hint=f"{spec.kind}_scan", body=body,
                  num_scan_inputs=len(scan_in))
    return y, h_n


def _connect(g, layer, k, x, f):
    """The output (T, B, D*H) of stacked layer ``k`` of a layer with connections (``skip``, see
    :mod:`fastrnn.nn._skip`), from its input ``x`` and its recurrent outputs ``f``, both
    time-major and zero at padded steps."""
    skip, p = layer.skip, layer.params
    if skip == "dense" or (skip == "residual" and k == 0):
        return f
    P = p.get(f"skip_proj_l{k}")
    carried = x if P is None else g.op("MatMul", [x, g.const(P.T.astype(g.dtype), "skip_proj")])
    if skip == "residual":
        return g.op("Add", [f, carried])
    W = g.const(p[f"skip_gate_weight_l{k}"].T.astype(g.dtype), "skip_gate_weight")
    b = g.const(p[f"skip_gate_bias_l{k}"].astype(g.dtype), "skip_gate_bias")
    gate = g.op("Sigmoid", [g.op("Add", [g.op("MatMul", [x, W]), b])])
    return g.op("Add", [carried, g.op("Mul", [gate, g.op("Sub", [f, carried])])], hint="highway")


def _lengths_parts(g, X, lengths):
    """The int32 lengths of the recurrent operators and the (B, T) mask of real steps."""
    seq_lens = g.op("Cast", [lengths], to=g.onnx.TensorProto.INT32, hint="seq_lens")
    T = g.op("Squeeze", [g.dim(X, 1)])
    steps = g.op("Range", [g.const(np.array(0, np.int64)), T, g.const(np.array(1, np.int64))])
    mask = g.op("Less", [g.unsqueeze(steps, [0]), g.unsqueeze(lengths, [1])], hint="mask")
    return seq_lens, mask


def _batch_first(g, y, mask):
    """(T, D, B, H) -> (B, T, D*H), zero past each length."""
    y = g.op("Reshape", [g.op("Transpose", [y], perm=[2, 0, 1, 3]), g.ints([0, 0, -1])])
    zero = g.const(np.zeros((), g.dtype), "zero")
    return g.op("Where", [g.unsqueeze(mask, [2]), y, zero])


def _run_layer(g, layer, X, lengths, h0=None, c0=None):
    """A recurrent layer on the batch-first input ``X``: the outputs (B, T, D*H) zero past each
    length, the last layer's final states and all layers' final states."""
    seq_lens, mask = _lengths_parts(g, X, lengths)
    x_tbi = g.op("Transpose", [X], perm=[1, 0, 2])
    y, hn, cn = _recurrent(g, layer, x_tbi, seq_lens, h0, c0, mask)
    return _batch_first(g, y, mask), hn, cn, mask


def _last_outputs(g, Y, lengths, D, H):
    """The top layer's outputs that end each direction, (D, B, H): the forward half of ``Y``
    (B, T, D*H) at each sequence's last real step, the reverse half at step 0. Without
    connections they are the last layer's final states; with them (``skip``) they differ."""
    T = g.op("Squeeze", [g.dim(Y, 1)])
    steps = g.op("Range", [g.const(np.array(0, np.int64)), T, g.const(np.array(1, np.int64))])
    last = g.op("Sub", [lengths, g.const(np.array(1, np.int64))])
    at_last = g.op("Equal", [g.unsqueeze(steps, [0]), g.unsqueeze(last, [1])])
    zero = g.const(np.zeros((), g.dtype), "zero")
    out = g.reduce("ReduceSum", g.op("Where", [g.unsqueeze(at_last, [2]), Y, zero]), [1])
    if D == 2:  # (B, 2H): the forward half at the last step, the reverse half at the first
        first = g.squeeze(g.op("Gather", [Y, g.ints([0])], axis=1), [1])
        out = g.op("Concat", [g.op("Slice", [out, g.ints([0]), g.ints([H]), g.ints([1])]),
                              g.op("Slice", [first, g.ints([H]), g.ints([2 * H]), g.ints([1])])],
                   axis=1)
    return g.op("Transpose", [g.op("Reshape", [out, g.ints([0, D, H])])], perm=[1, 0, 2])


def _concat_states(g, states):
    return states[0] if len(states) == 1 else g.op("Concat", states, axis=0)


# --------------------------------------------------------------------------------------------
# the network around the layers
# --------------------------------------------------------------------------------------------


def _network_body(g, net, X, lengths, standardize=None):
    """Embedding or standardisation, recurrent layers, pooling (or not) and the head's input.

    Returns the head's input (B, F) with pooling, else (B, T, F); the mask of real steps; and
    the last layer's final states (D, B, H).
    """
    if net.embedding is not None:
        x = g.op("Gather", [g.const(net.embedding.params["weight"].astype(g.dtype), "embedding"),
                            X], axis=0)
        if standardize == "bag":  # (B, T, K, E): several ids per step add up
            x = g.reduce("ReduceSum", x, [2])
    elif standardize is not None:
        mean, scale = standardize
        x = g.op("Cast", [X], to=g.onnx.TensorProto.DOUBLE)
        x = g.op("Div", [g.op("Sub", [x, g.const(np.asarray(mean, np.float64), "mean")]),
                         g.const(np.asarray(scale, np.float64), "scale")])
        x = g.op("Cast", [x], to=g.elem, hint="standardized")
    else:
        x = X
    h0 = c0 = None
    if net.learn_initial_state:
        B = g.dim(X, 0)
        for key in ("h0", "c0") if net.rnn.has_cell else ("h0",):
            init = net._state_params[key]
            shape = g.op("Concat", [g.ints([init.shape[0]]), B, g.ints([init.shape[1]])], axis=0)
            full = g.op("Expand", [g.const(init[:, None, :].astype(g.dtype), key), shape])
            if key == "h0":
                h0 = full
            else:
                c0 = full
    Y, hn, _, mask = _run_layer(g, net.rnn, x, lengths, h0, c0)
    rnn = net.rnn
    top = hn[-1] if rnn.skip is None else _last_outputs(g, Y, lengths, rnn.num_directions,
                                                        rnn.hidden_size)
    pooling = net.pooling
    if pooling is None:
        return Y, mask, top
    if pooling == "last":  # forward state at the last real step, reverse state at the first
        out = g.op("Reshape", [g.op("Transpose", [top], perm=[1, 0, 2]), g.ints([0, -1])])
    elif pooling == "mean":
        n = g.unsqueeze(g.op("Cast", [lengths], to=g.elem), [1])
        out = g.op("Div", [g.reduce("ReduceSum", Y, [1]), n])
    else:
        low = g.const(np.array(-np.inf, g.dtype), "minus_inf")
        out = g.reduce("ReduceMax", g.op("Where", [g.unsqueeze(mask, [2]), Y, low]), [1])
    if net.bag_of_embeddings:  # the token vectors of the real steps, summed, over sqrt(length)
        zero = g.const(np.array(0, g.dtype), "zero")
        total = g.reduce("ReduceSum", g.op("Where", [g.unsqueeze(mask, [2]), x, zero]), [1])
        root = g.op("Sqrt", [g.unsqueeze(g.op("Cast", [lengths], to=g.elem), [1])])
        out = g.op("Concat", [out, g.op("Div", [total, root])], axis=1)
    return out, mask, top


def _linear_logits(g, linear, X, mask, n_ids=1):
    """The logits of a network's linear part (``fastrnn.nn._linear.TokenLinear``): the
    sublinear TF-IDF vector of each sequence's first ids, L2-normalised, times the weight, plus
    the bias.

    The count ``c`` of the id of each real step comes from a (B, T, T) comparison of the ids,
    which needs no table of counts; each of the ``c`` steps holding an id then carries a
    ``1 / c`` share of its ``u = (1 + log c) * idf``, of ``u * weight`` and of ``u ** 2``."""
    p = linear.params
    word = X
    if n_ids > 1:  # (B, T, K): the token's own id comes first
        word = g.squeeze(g.op("Gather", [X, g.ints([0])], axis=2), [2])
    zero = g.const(np.array(0, g.dtype), "zero_linear")
    a = g.op("Where", [mask, g.op("Gather", [g.const(p["idf"].astype(g.dtype), "linear_idf"),
                                              word], axis=0), zero])
    rows = g.op("Gather", [g.const(p["weight"].astype(g.dtype), "linear_weight"), word], axis=0)
    one = g.const(np.array(1, g.dtype), "one_linear")
    same = g.op("Cast", [g.op("Equal", [g.unsqueeze(word, [2]), g.unsqueeze(word, [1])])],
                to=g.elem)
    real = g.unsqueeze(g.op("Cast", [mask], to=g.elem), [2])
    count = g.op("Max", [g.squeeze(g.op("MatMul", [same, real]), [2]), one])  # (B, T)
    u = g.op("Mul", [a, g.op("Add", [one, g.op("Log", [count])])])  # (1 + log c) idf
    share = g.op("Div", [u, count])
    num = g.reduce("ReduceSum", g.op("Mul", [g.unsqueeze(share, [2]), rows]), [1])
    square = g.reduce("ReduceSum", g.op("Mul", [share, u]), [1])
    norm = g.op("Sqrt", [square])
    norm = g.op("Where", [g.op("Greater", [norm, zero]), norm, one])
    return g.op("Add", [g.op("Div", [num, g.unsqueeze(norm, [1])]),
                        g.const(p["bias"].astype(g.dtype), "linear_bias")])


def _dense(g, head, x):
    W = g.const(head.params["weight"].T.astype(g.dtype), "head_weight")
    return g.op("Add", [g.op("MatMul", [x, W]), g.const(head.params["bias"].astype(g.dtype),
                                                         "head_bias")], hint="logits")


# --------------------------------------------------------------------------------------------
# what each kind of model exports
# --------------------------------------------------------------------------------------------


def _export_layer(g, layer, initial_state):
    T = g.onnx.TensorProto
    D, H, L = layer.num_directions, layer.hidden_size, layer.num_layers
    X = g.add_input("X", g.elem, ["batch", "time", layer.input_size])
    lengths = g.add_input("lengths", T.INT64, ["batch"])
    h0 = c0 = None
    if initial_state:
        h0 = g.add_input("h0", g.elem, [L * D, "batch", H])
        if layer.has_cell:
            c0 = g.add_input("c0", g.elem, [L * D, "batch", H])
    Y, hn, cn, _ = _run_layer(g, layer, X, lengths, h0, c0)
    g.add_output(Y, "Y", g.elem, ["batch", "time", D * H])
    g.add_output(_concat_states(g, hn), "h_n", g.elem, [L * D, "batch", H])
    if layer.has_cell:
        g.add_output(_concat_states(g, cn), "c_n", g.elem, [L * D, "batch", H])


def _network_input(g, net, n_ids=1, n_features=None):
    """The graph inputs ``X`` and ``lengths`` of a network; whether ids come several per step;
    the features per step of float input (the network's unless given)."""
    T = g.onnx.TensorProto
    if net.embedding is not None:
        shape = ["batch", "time"] + ([n_ids] if n_ids > 1 else [])
        X = g.add_input("X", T.INT64, shape)
    else:
        X = g.add_input("X", g.elem, ["batch", "time", n_features or net.n_features])
    return X, g.add_input("lengths", T.INT64, ["batch"])


def _export_network(g, net):
    X, lengths = _network_input(g, net)
    from .nn.layers import SoftmaxHead
    if isinstance(net.head, SoftmaxHead):
        raise ValueError("a network with head='softmax' (a language model's) is exported through "
                         "its estimator: pass the fitted RNNLanguageModel to export().")
    body, mask, _ = _network_body(g, net, X, lengths)
    out = _dense(g, net.head, body)
    if net.linear is not None:
        out = g.op("Add", [out, _linear_logits(g, net.linear, X, mask)])
    K = net.head.out_features
    g.add_output(out, "output", g.elem, ["batch", K] if net.pooling else ["batch", "time", K])


def _classes_const(g, classes):
    """``classes_`` as a constant tensor: numbers keep their dtype, strings become strings."""
    classes = np.asarray(classes)
    T = g.onnx.TensorProto
    if classes.dtype.kind in "biuf":
        return g.const(classes, "classes"), g.helper.np_dtype_to_tensor_dtype(classes.dtype)
    if classes.dtype.kind in "US" or (classes.dtype == object and all(
            isinstance(c, (str, bytes)) for c in classes.tolist())):
        return g.const(classes.astype(object), "classes"), T.STRING
    raise ValueError(
        f"the classes of this model, {classes.tolist()[:5]}, are neither numbers nor strings: "
        "an ONNX tensor cannot hold them. Refit with numeric or string labels (e.g. encode them "
        "with sklearn.preprocessing.LabelEncoder).")


def _estimator_input(g, est):
    """The graph inputs ``X`` and ``lengths`` of an estimator, and what its network reads:
    ``(x, lengths, prep)`` for :func:`_network_body`. A float-series classifier that adds the
    first difference (``difference_``) or reads frames (``frame_size_``) gets them computed in
    the graph (:func:`_series_input`); ``x`` is then the network's input and ``lengths`` the
    number of frames."""
    net = est.network_
    n_ids = int(est.n_features_in_) if net.embedding is not None else 1
    X, lengths = _network_input(g, net, n_ids, int(est.n_features_in_))
    if net.embedding is not None:
        prep = "bag" if n_ids > 1 else None
    else:
        mean = getattr(est, "feature_mean_", None)
        prep = None if mean is None else (mean, est.feature_scale_)
    frame, diff = getattr(est, "frame_size_", 1), getattr(est, "difference_", False)
    if net.embedding is None and (frame > 1 or diff):
        return _series_input(g, X, lengths, prep, frame, diff)
    return X, lengths, prep


def _series_input(g, X, lengths, standardize, frame, difference):
    """The series a classifier's network reads (``series_input`` of the estimators), computed
    in the graph: standardised, with each sequence's first difference beside it over its real
    steps, scaled by its standard deviation (``difference``), in frames of ``frame`` steps whose
    last one repeats the sequence's last real step. Returns ``(x, lengths, None)``."""
    T = g.onnx.TensorProto
    if standardize is not None:
        mean, scale = standardize
        x = g.op("Cast", [X], to=T.DOUBLE)
        x = g.op("Div", [g.op("Sub", [x, g.const(np.asarray(mean, np.float64), "mean")]),
                         g.const(np.asarray(scale, np.float64), "scale")])
        x = g.op("Cast", [x], to=g.elem, hint="standardized")
    else:
        x = X
    steps = g.op("Range", [g.const(np.array(0, np.int64)), g.op("Squeeze", [g.dim(X, 1)]),
                           g.const(np.array(1, np.int64))])  # (T,)
    if difference:
        xd = g.op("Cast", [x], to=T.DOUBLE)
        first = g.op("Slice", [xd, g.ints([0]), g.ints([1]), g.ints([1])])
        before = g.op("Slice", [xd, g.ints([0]), g.ints([-1]), g.ints([1])])
        d = g.op("Sub", [xd, g.op("Concat", [first, before], axis=1)])  # row 0: 0
        real = g.unsqueeze(g.op("Less", [g.unsqueeze(steps, [0]), g.unsqueeze(lengths, [1])]),
                           [2])  # (B, T, 1)
        zero = g.const(np.zeros((), np.float64), "zero")
        d = g.op("Where", [real, d, zero])
        n = g.unsqueeze(g.op("Cast", [lengths], to=T.DOUBLE), [1, 2])
        dev = g.op("Where", [real, g.op("Sub", [d, g.op("Div", [g.reduce("ReduceSum", d, [1], 1),
                                                                n])]), zero])
        sd = g.op("Sqrt", [g.op("Div", [g.reduce("ReduceSum", g.op("Mul", [dev, dev]), [1], 1),
                                        n])])
        sd = g.op("Where", [g.op("Greater", [sd, zero]), sd,
                            g.const(np.ones((), np.float64), "one")])
        d = g.op("Cast", [g.op("Div", [d, sd])], to=g.elem, hint="difference")
        x = g.op("Concat", [x, d], axis=2)
    if frame > 1:
        f = g.const(np.array(frame, np.int64), "frame")
        one = g.const(np.array(1, np.int64), "one")
        n_frames = g.op("Div", [g.op("Add", [g.op("Squeeze", [g.dim(X, 1)]),
                                             g.op("Sub", [f, one])]), f])
        padded = g.op("Range", [g.const(np.array(0, np.int64)), g.op("Mul", [n_frames, f]), one])
        # step t of a sequence reads step min(t, length - 1): the last frame is filled up with
        # the last real step
        idx = g.op("Min", [g.unsqueeze(padded, [0]),
                           g.unsqueeze(g.op("Sub", [lengths, one]), [1])])  # (B, T')
        shape = g.op("Concat", [g.dim(x, 0), g.op("Shape", [padded]), g.dim(x, 2)], axis=0)
        x = g.op("GatherElements", [x, g.op("Expand", [g.unsqueeze(idx, [2]), shape])], axis=1)
        x = g.op("Reshape", [x, g.op("Concat", [g.dim(x, 0), g.ints([-1]),
                                                g.op("Mul", [g.dim(x, 2), g.ints([frame])])],
                                     axis=0)], hint="frames")
        lengths = g.op("Div", [g.op("Add", [lengths, g.op("Sub", [f, one])]), f],
                       hint="n_frames")
    return x, lengths, None


def _export_classifier(g, est, per_step):
    T = g.onnx.TensorProto
    X, lengths, prep = _estimator_input(g, est)
    body, mask, _ = _network_body(g, est.network_, X, lengths, prep)
    logits = _dense(g, est.network_.head, body)
    if est.network_.linear is not None:
        logits = g.op("Add", [logits, _linear_logits(g, est.network_.linear, X, mask,
                                                     int(est.n_features_in_))])
    classes, elem = _classes_const(g, est.classes_)
    C = len(est.classes_)
    axis = 2 if per_step else 1
    proba = g.op("Softmax", [g.op("Cast", [logits], to=T.DOUBLE)], axis=-1)
    label = g.op("Gather", [classes, g.op("ArgMax", [logits], axis=axis, keepdims=0)], axis=0)
    lead = ["batch", "time"] if per_step else ["batch"]
    if per_step:  # zero probabilities past each length
        proba = g.op("Where", [g.unsqueeze(mask, [2]), proba,
                               g.const(np.zeros((), np.float64), "zero")])
    g.add_output(label, "label", elem, lead)
    g.add_output(proba, "probabilities", T.DOUBLE, lead + [C])


def _export_regressor(g, est):
    T = g.onnx.TensorProto
    X, lengths, prep = _estimator_input(g, est)
    body, _, _ = _network_body(g, est.network_, X, lengths, prep)
    out = g.op("Cast", [_dense(g, est.network_.head, body)], to=T.DOUBLE)
    if est.target_mean_ is not None:
        out = g.op("Add", [g.op("Mul", [out, g.const(np.asarray(est.target_scale_, np.float64))]),
                           g.const(np.asarray(est.target_mean_, np.float64))])
    shape = ["batch", int(est.n_outputs_)]
    if est._y_ndim == 1:
        out, shape = g.squeeze(out, [1]), ["batch"]
    g.add_output(out, "prediction", T.DOUBLE, shape)


def _export_language_model(g, est):
    T = g.onnx.TensorProto
    net = est.network_
    X, lengths = _network_input(g, net)
    _, _, hn = _network_body(g, net, X, lengths)
    hidden = g.squeeze(hn, [0])  # (B, H): the state after each sequence's last real step
    head = net.head
    never = np.zeros(head.out_features)
    never[list(head.excluded)] = -np.inf  # ids that never get probability
    logits = g.op("Add", [g.op("Cast", [_dense(g, head, hidden)], to=T.DOUBLE),
                          g.const(never, "excluded")])
    proba = g.op("Softmax", [logits], axis=-1)
    g.add_output(proba, "probabilities", T.DOUBLE, ["batch", len(est.vocabulary_)])


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------


def _kind_of(model):
    from .estimators import RNNClassifier, RNNLanguageModel, RNNRegressor, RNNTagger
    from .nn import SequenceNetwork
    from .nn.recurrent import _Recurrent

    for cls, kind in ((_Recurrent, "layer"), (SequenceNetwork, "network"),
                      (RNNClassifier, "classifier"), (RNNRegressor, "regressor"),
                      (RNNTagger, "tagger"), (RNNLanguageModel, "language_model")):
        if isinstance(model, cls):
            break
    else:
        raise TypeError(
            f"export() takes a recurrent layer (RNN, LSTM, GRU), a SequenceNetwork or a fitted "
            f"RNNClassifier, RNNRegressor, RNNTagger or RNNLanguageModel, got "
            f"{type(model).__name__}.")
    if kind not in ("layer", "network"):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(model, "network_")
    return kind


def export(model, path=None, opset=DEFAULT_OPSET, initial_state=False, dtype="float32"):
    """Write ``model`` as an ONNX model, from fastrnn's own arrays.

    Parameters
    ----------
    model : RNN, LSTM, GRU, SequenceNetwork, or a fitted RNNClassifier, RNNRegressor, RNNTagger
        or RNNLanguageModel
        Inputs and outputs of the graph by kind of model:

        * a layer: ``X`` (B, T, input_size) and ``lengths`` (B,) int64 (and ``h0``, ``c0`` with
          ``initial_state=True``, of shape (num_layers * num_directions, B, hidden_size)) give
          ``Y`` (B, T, num_directions * hidden_size), zero past each length, ``h_n`` (and ``c_n``
          for an LSTM), as :meth:`fastrnn.nn.LSTM.forward` returns them;
        * a network: ``X`` and ``lengths`` give ``output``, as
          :meth:`fastrnn.nn.SequenceNetwork.infer` returns it;
        * a classifier: ``label`` (B,) and ``probabilities`` (B, n_classes), as ``predict`` and
          ``predict_proba`` give them; a tagger: the same per step, (B, T) and
          (B, T, n_classes), whose rows past each length are padding (probabilities zero);
        * a regressor: ``prediction`` (B,) or (B, n_outputs), as ``predict`` gives it;
        * a language model: ``X`` (B, T) token ids (starting with ``<bos>``) and ``lengths`` give
          ``probabilities`` (B, V), the distribution of the token after each sequence's last
          real step.

        Float input ``X`` has the graph's ``dtype``; token ids are int64 of shape (B, T), or
        (B, T, K) for a model fitted with ``K`` ids per step. The estimators' standardisation of
        the input is part of the graph, so ``X`` is passed as to ``predict`` (padded).
    path : str or path-like, optional
        Where to write the model; when None nothing is written.
    opset : int, default DEFAULT_OPSET
        The ONNX opset, from :data:`MIN_OPSET` to the newest the installed ``onnx`` knows.
    initial_state : bool, default False
        Layers only: add the inputs ``h0`` (and ``c0``) for the initial state.
    dtype : {"float32", "float64"}, default "float32"
        The float type of the graph: its weights, float inputs and the outputs of the network.
        A float64 model is rounded to float32 by default, because ONNX Runtime runs its recurrent
        operators in float32 only; ``"float64"`` writes a valid ONNX graph in double precision for
        runtimes that have such kernels.

    Returns
    -------
    onnx.ModelProto
        The model, checked with ``onnx.checker``.

    Raises
    ------
    ImportError
        When the ``onnx`` package is missing.
    ValueError
        For what ONNX cannot express: an LSTM with a gate switched off, class labels that are
        neither numbers nor strings.

    Notes
    -----
    ``lengths`` must lie in ``[1, T]``, as for fastrnn's own layers; ONNX Runtime refuses other
    values. The graph casts them to the int32 ``sequence_lens`` of the recurrent operators.
    """
    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not (
            MIN_OPSET <= opset <= newest):
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the newest the "
                         f"installed onnx knows), got {opset!r}.")
    kind = _kind_of(model)
    if initial_state and kind != "layer":
        raise ValueError("initial_state=True adds the state inputs of a layer; networks and "
                         f"estimators start from their own initial state. Got a {kind}.")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}.")
    g = _Graph(onnx, int(opset), dtype)
    if kind == "layer":
        _export_layer(g, model, initial_state)
    elif kind == "network":
        _export_network(g, model)
    elif kind in ("classifier", "tagger"):
        _export_classifier(g, model, per_step=kind == "tagger")
    elif kind == "regressor":
        _export_regressor(g, model)
    else:
        _export_language_model(g, model)
    graph = g.helper.make_graph(g.nodes, f"fastrnn_{type(model).__name__}", g.inputs, g.outputs,
                                initializer=g.inits)
    proto = g.helper.make_model(graph, opset_imports=[g.helper.make_opsetid("", int(opset))],
                                producer_name="fastrnn")
    from ._version import __version__
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto
