"""Networks and estimators as ONNX graphs, on top of the recurrent layers of
:mod:`fastrnn.onnx._recurrent`."""

import numpy as np

from ._recurrent import _concat_states, _last_outputs, _run_layer

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
    from ..nn.layers import SoftmaxHead
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
    if getattr(est, "ngram_", None) is not None:
        raise ValueError(
            f"this language model mixes its network with a {est.ngram_.order}-gram Kneser-Ney "
            f"model (ngram_weight_={est.ngram_weight_:.3g}), whose count tables ONNX cannot look "
            "up, so an exported graph would give other probabilities. Fit it with "
            "ngram_order=None to export it.")
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
