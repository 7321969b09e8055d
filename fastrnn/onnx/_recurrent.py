"""The recurrent layers as ONNX: RNN, LSTM and GRU as ONNX's own operators, MinGRU, MinLSTM and
IndRNN as a ``Scan`` over time, and the connections between stacked layers."""

import numpy as np

# fastrnn's gate blocks in the order of ONNX's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
_GATE_ORDER = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "gru_v1": (1, 0, 2)}
# the LSTM's peephole rows (i, f, o) in ONNX's order (i, o, f)
_PEEPHOLE_ORDER = (0, 2, 1)
_OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "gru_v1": "GRU"}
# the cells without an ONNX operator, written as a Scan over their element-wise recurrence
_ELEMENTWISE = ("mingru", "minlstm", "indrnn")


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
