"""Checks of a saved model file, run when it is loaded (:func:`fastrnn.load`).

``_from_saved`` of each estimator calls these functions before it builds anything from a file, so
that a damaged or inconsistent file is refused at load time with one error type,
:class:`fastrnn.ModelFileError`, instead of failing (or predicting nonsense) later. They check:

* the structure and the types of the metadata (``meta.json``);
* the constructor parameters, against the class's ``_parameter_constraints``;
* the network architecture against the arrays' shapes, *before* a network of that size is built,
  then every weight: floating point, of the expected shape, finite in the network's dtype;
* the fitted attributes, on their own (types, finite values, positive scales, sorted distinct
  labels) and against each other and the network (as many labels as outputs, standardisation
  statistics of the input's width, token input or not);
* that the file holds no array and no attribute that the class does not know.

The error raised here does not know the file's path; :func:`fastrnn._persist.rebuild` adds it.
"""

import math
from numbers import Real

import numpy as np

from .._persist import UPGRADE, ModelFileError, _describe
from ..nn import SequenceNetwork
from ..nn.layers import POOLINGS
from ..nn._skip import SKIPS
from ..nn.network import CELLS, HEADS

__all__ = ["check_estimator_file", "check_fitted_file", "check_format_version",
           "check_language_model_file", "network_from_saved", "ESTIMATOR_FORMAT_VERSION",
           "LM_FITTED", "SAVED_ATTRIBUTES"]

#: Version of the estimator part of a saved model (the container has its own, in ``_persist``).
ESTIMATOR_FORMAT_VERSION = 1

_COMMON = ("n_features_in_", "vocab_size_", "feature_mean_", "feature_scale_", "n_iter_", "t_",
           "loss_curve_", "grad_norm_curve_", "lr_curve_", "validation_scores_", "best_loss_",
           "best_validation_score_")

#: the fitted attributes each estimator saves (its ``_saved_attributes``)
SAVED_ATTRIBUTES = {
    "BaseRNNEstimator": _COMMON,
    "RNNClassifier": _COMMON + ("classes_", "frame_size_", "difference_"),
    "RNNRegressor": _COMMON + ("n_outputs_", "target_mean_", "target_scale_", "_y_ndim"),
    "RNNTagger": _COMMON + ("classes_",),
}

#: fitted attributes of a language model besides the vocabulary and the network, saved with it
LM_FITTED = ("n_iter_", "n_steps_", "n_tokens_seen_", "loss_curve_", "validation_bits_per_token_",
             "best_validation_bits_per_token_", "history_", "stop_reason_", "training_time_")

_NETWORK_INTS = ("n_outputs", "hidden_size", "num_layers")
_NETWORK_OPTIONAL_INTS = ("n_features", "vocab_size", "embedding_dim")
_NETWORK_BOOLS = ("bidirectional", "learn_initial_state", "tie_weights", "bag_of_embeddings",
                  "linear")
_NETWORK_KEYS = frozenset(_NETWORK_INTS + _NETWORK_OPTIONAL_INTS + _NETWORK_BOOLS + (
    "cell", "dropout", "recurrent_dropout", "pooling", "cell_options", "dtype", "head",
    "excluded_outputs", "skip", "quantized"))
_INITS = ("default", "pytorch", "irnn")
#: the options each cell accepts, with the values they may take
#: a cell option that takes a positive number or null
_POSITIVE_OR_NULL = "positive or null"
_CELL_OPTIONS = {
    "rnn": {"nonlinearity": ("tanh", "relu"), "init": _INITS},
    "lstm": {"forget_bias": Real, "peephole": bool, "input_gate": bool, "forget_gate": bool,
             "output_gate": bool, "init": _INITS},
    "gru": {"reset_after": bool, "init": _INITS},
    "mingru": {"candidate": ("identity", "g"), "init": _INITS[:2]},
    "minlstm": {"candidate": ("identity", "g"), "init": _INITS[:2]},
    "indrnn": {"nonlinearity": ("relu", "tanh"), "init": _INITS[:2],
               "recurrent_max": _POSITIVE_OR_NULL},
}
#: the array of the first layer whose rows give the hidden size (rows per unit), by cell: the
#: recurrent weights where the cell has a matrix of them
_SIZE_ARRAYS = {"mingru": ("weight_ih", 2), "minlstm": ("weight_ih", 3), "indrnn": ("weight_ih", 1)}
_LABEL_KINDS = {None: "biufUS", "str": "U", "bool": "b", "int": "iu", "float": "f"}


def _fail(problem, cause=None, fix=None):
    raise ModelFileError(problem, fix=fix) from cause


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_scalar(v):
    return v is None or isinstance(v, (bool, int, float, str))


def _mapping(meta, key, default=None):
    value = meta.get(key, default)
    if key not in meta and default is None:
        _fail(f"meta.json has no {key!r} entry")
    if not isinstance(value, dict):
        _fail(f"meta.json {key!r} must be a JSON object, got {_describe(value)}")
    return value


def _positive_int(value, what, minimum=1):
    if not _is_int(value) or value < minimum:
        _fail(f"{what} must be an integer >= {minimum}, got {_describe(value)}")
    return value


def _validate_params(est, what="params"):
    """scikit-learn's parameter validation of ``est``, raising :class:`ModelFileError`."""
    try:
        est._validate_params()
    except (ValueError, TypeError) as exc:
        _fail(f"{what}: {exc}", exc)


def _check_params(cls, params, substitutes=None):
    """Known names, JSON values and ``cls._parameter_constraints``; returns the instance used for
    the check (``substitutes`` maps a name to a function giving the value to check instead)."""
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        _fail(f"params holds parameter(s) {unknown} that {cls.__name__} does not have")
    for name, value in params.items():
        if name == "class_weight" and isinstance(value, dict):
            _check_class_weight(value)
        elif not _is_scalar(value):
            _fail(f"parameter {name} must be a number, a string, a boolean or null, got "
                  f"{_describe(value)}")
    checked = dict(params)
    for name, fn in (substitutes or {}).items():
        if name in checked:
            checked[name] = fn(checked[name])
    if isinstance(checked.get("class_weight"), dict):
        checked["class_weight"] = {a: b for a, b in checked["class_weight"]["__pairs__"]}
    est = cls(**checked)
    _validate_params(est)
    return est


def _check_class_weight(value):
    pairs = value.get("__pairs__")
    if set(value) != {"__pairs__"} or not isinstance(pairs, list):
        _fail(f"parameter class_weight must be null, a string or {{'__pairs__': [[label, "
              f"weight], ...]}}, got {_describe(value)}")
    for pair in pairs:
        if (not isinstance(pair, list) or len(pair) != 2 or not _is_scalar(pair[0])
                or not _is_real(pair[1]) or not math.isfinite(pair[1]) or pair[1] < 0):
            _fail(f"class_weight holds {_describe(pair)}; each entry must be [label, weight] "
                  "with a finite weight >= 0")


# ---------------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------------


def _array(arrays, name, ndim=None):
    a = arrays.get(name)
    if a is None:
        _fail(f"array {name!r} is missing")
    if ndim is not None and a.ndim != ndim:
        _fail(f"array {name!r} must be {ndim}-D, got shape {a.shape}")
    return a


def check_network_config(config, arrays, prefix, what="network"):
    """Check a saved network architecture and compare its sizes with the arrays that hold its
    weights, so that building it never allocates more than the file holds.

    Parameters
    ----------
    config : object
        The saved ``SequenceNetwork.config``.
    arrays : dict of str to ndarray
    prefix : str
        Prefix of the network's arrays in ``arrays`` (``"network/"`` or ``""``).
    what : str
        Name of ``config`` in ``meta.json``, for messages.

    Returns
    -------
    config : dict
    """
    if not isinstance(config, dict):
        _fail(f"meta.json {what!r} must be a JSON object, got {_describe(config)}")
    unknown = sorted(set(config) - _NETWORK_KEYS)
    if unknown:
        _fail(f"{what} holds unknown entries {unknown}")
    for key in _NETWORK_INTS:
        if key in config or key != "num_layers":
            _positive_int(config.get(key), f"{what} {key}")
    for key in _NETWORK_OPTIONAL_INTS:
        if config.get(key) is not None:
            _positive_int(config[key], f"{what} {key}")
    for key in _NETWORK_BOOLS:
        if key in config and not isinstance(config[key], bool):
            _fail(f"{what} {key} must be true or false, got {_describe(config[key])}")
    for key in ("dropout", "recurrent_dropout"):
        v = config.get(key, 0.0)
        if not (_is_real(v) and 0 <= v < 1):
            _fail(f"{what} {key} must be a number in [0, 1), got {_describe(v)}")
    cell = config.get("cell", "lstm")
    if not isinstance(cell, str) or cell not in CELLS:
        _fail(f"{what} cell must be one of {sorted(CELLS)}, got {_describe(cell)}")
    skip = config.get("skip")
    if skip is not None and skip not in SKIPS:
        _fail(f"{what} skip must be one of {list(SKIPS)} or null, got {_describe(skip)}")
    pooling = config.get("pooling", "last")
    if pooling is not None and pooling not in POOLINGS:
        _fail(f"{what} pooling must be one of {list(POOLINGS)} or null, got {_describe(pooling)}")
    head = config.get("head", "dense")
    if not isinstance(head, str) or head not in HEADS:
        _fail(f"{what} head must be one of {list(HEADS)}, got {_describe(head)}")
    excluded = config.get("excluded_outputs", [])
    if not (isinstance(excluded, list) and all(
            isinstance(e, int) and not isinstance(e, bool) and 0 <= e < config["n_outputs"]
            for e in excluded)):
        _fail(f"{what} excluded_outputs must be a list of output ids, got {_describe(excluded)}")
    if config.get("quantized", "int8") not in ("int8", "bf16"):
        _fail(f"{what} quantized must be 'int8' or 'bf16' (or absent), got "
              f"{_describe(config['quantized'])}")
    if config.get("dtype") not in ("float32", "float64"):
        _fail(f"{what} dtype must be 'float32' or 'float64', got {_describe(config.get('dtype'))}")
    options = config.get("cell_options", {})
    if not isinstance(options, dict):
        _fail(f"{what} cell_options must be a JSON object, got {_describe(options)}")
    for key, v in options.items():
        allowed = _CELL_OPTIONS[cell].get(key)
        if allowed is None:
            _fail(f"{what} cell_options holds {key!r}, which a {cell} cell does not take")
        ok = (isinstance(v, bool) if allowed is bool else
              _is_real(v) and math.isfinite(v) if allowed is Real else
              v is None or _is_real(v) and math.isfinite(v) and v > 0
              if allowed is _POSITIVE_OR_NULL else v in allowed)
        if not ok:
            _fail(f"{what} cell_options {key} = {_describe(v)} is not valid for a {cell} cell")
    if (config.get("n_features") is None) == (config.get("vocab_size") is None):
        _fail(f"{what} must give exactly one of n_features and vocab_size, got "
              f"n_features={config.get('n_features')!r}, vocab_size={config.get('vocab_size')!r}")
    if config.get("vocab_size") is not None and config.get("embedding_dim") is None:
        _fail(f"{what} has vocab_size but no embedding_dim")

    # the sizes against the arrays, before anything of that size is allocated
    H, L, n_out = config["hidden_size"], config.get("num_layers", 1), config["n_outputs"]
    if cell in _SIZE_ARRAYS:
        name, G = _SIZE_ARRAYS[cell]
        w = _array(arrays, prefix + f"rnn.{name}_l0", 2)
        if w.shape[0] != G * H:
            _fail(f"{what} hidden_size is {H}, but array {prefix + f'rnn.{name}_l0'!r} has shape "
                  f"{w.shape}")
    else:
        name = "weight_hh"
        whh = _array(arrays, prefix + "rnn.weight_hh_l0", 2)
        if whh.shape[1] != H:
            _fail(f"{what} hidden_size is {H}, but array {prefix + 'rnn.weight_hh_l0'!r} has "
                  f"shape {whh.shape}")
    last, beyond = prefix + f"rnn.{name}_l{L - 1}", prefix + f"rnn.{name}_l{L}"
    if last not in arrays or beyond in arrays:
        _fail(f"{what} num_layers is {L}, which does not match the recurrent weights in the file")
    bias = _array(arrays, prefix + "head.bias", 1)
    if bias.shape[0] != n_out:
        _fail(f"{what} n_outputs is {n_out}, but array {prefix + 'head.bias'!r} has shape "
              f"{bias.shape}")
    if config.get("vocab_size") is not None:
        emb = _array(arrays, prefix + "embedding.weight", 2)
        want = (config["vocab_size"], config["embedding_dim"])
        if emb.shape != want:
            _fail(f"{what} vocab_size and embedding_dim are {want}, but array "
                  f"{prefix + 'embedding.weight'!r} has shape {emb.shape}")
    else:
        wih = _array(arrays, prefix + "rnn.weight_ih_l0", 2)
        if wih.shape[1] != config["n_features"]:
            _fail(f"{what} n_features is {config['n_features']}, but array "
                  f"{prefix + 'rnn.weight_ih_l0'!r} has shape {wih.shape}")
    return config


def _check_weight(name, a, shape, dtype):
    if a.dtype.kind != "f":
        _fail(f"array {name!r} holds {a.dtype} values; weights are floating-point numbers")
    if a.shape != shape:
        _fail(f"array {name!r} has shape {a.shape}, expected {shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(a.astype(dtype, copy=False))
    if not finite.all():
        bad = float(a.ravel()[np.flatnonzero(~finite.ravel())[0]])
        if math.isfinite(bad):
            _fail(f"array {name!r} holds {bad!r}, which overflows {dtype.name} (the network's "
                  "dtype)")
        _fail(f"array {name!r} holds non-finite values ({bad!r}); a trained network has finite "
              "weights")


def network_from_saved(config, arrays, prefix, backend, what="network", overrides=None):
    """Build the saved network and load its weights, after checking both.

    Parameters
    ----------
    config : object
        The saved ``SequenceNetwork.config``.
    arrays : dict of str to ndarray
        The file's arrays; those named ``prefix + <parameter>`` are the weights. Names under
        ``prefix`` that are no parameter are an error (except ``train/...``, a checkpoint's).
    prefix : str
    backend : str
    what : str
        Name of ``config`` in ``meta.json``, for messages.
    overrides : dict, optional
        Entries of the config that the estimator fixes (e.g. a language model's softmax head).

    Returns
    -------
    net : SequenceNetwork
        In inference mode.
    """
    config = dict(check_network_config(config, arrays, prefix, what), **(overrides or {}))
    quantized = config.pop("quantized", None)
    try:
        net = SequenceNetwork(**config, backend=backend, random_state=0)
    except (ValueError, TypeError) as exc:
        _fail(f"{what} cannot be built ({exc})", exc)
    state = {}
    weights = net.weights()
    for k, target in weights.items():
        name = prefix + k
        a = _array(arrays, name)
        _check_weight(name, a, target.shape, net.dtype)
        state[k] = a
    qprefix = f"{prefix}{quantized}/rnn." if quantized else None
    extra = sorted(n for n in arrays if n.startswith(prefix) and not n.startswith("train/")
                   and n[len(prefix):] not in weights
                   and not (qprefix and n.startswith(qprefix)))
    if extra:
        _fail(f"the file holds array(s) {extra} that are no parameter of its network")
    net.load_state_dict(state)
    if quantized:
        from ..nn._quant import set_quantized

        try:
            set_quantized(net.rnn, quantized, {n[len(qprefix):]: a for n, a in arrays.items()
                                               if n.startswith(qprefix)})
        except ValueError as exc:
            _fail(f"the {quantized} weights of its network are not valid ({exc})", exc)
        net.config["quantized"] = quantized
    net.eval()
    return net


# ---------------------------------------------------------------------------------------------
# the recurrent estimators (classifier, regressor, tagger)
# ---------------------------------------------------------------------------------------------


def _float_vector(name, a, length, what_length, positive=False):
    if a is None:
        return
    if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype.kind != "f":
        _fail(f"{name} must be a 1-D floating-point array, got {_describe(a)}")
    if a.shape[0] != length:
        _fail(f"{name} has {a.shape[0]} values, but {what_length} is {length}")
    if not np.isfinite(a).all():
        _fail(f"{name} holds non-finite values ({a.tolist()[:5]})")
    if positive and not (a > 0).all():
        _fail(f"{name} must be > 0 (it divides the values), got {a.tolist()[:5]}")


def _check_labels(name, a, kind):
    if not (kind is None or isinstance(kind, str)) or kind not in _LABEL_KINDS:
        _fail(f"label_kinds {name} is {_describe(kind)}, expected one of "
              f"{[k for k in _LABEL_KINDS]}")
    if a.ndim != 1 or a.dtype.kind not in _LABEL_KINDS[kind]:
        _fail(f"{name} must be a 1-D array of labels ({kind or 'numbers or strings'}), got "
              f"{a.dtype} of shape {a.shape}")
    if a.shape[0] < 2:
        _fail(f"{name} holds {a.shape[0]} label(s); a fitted model has at least 2")
    if not (a[1:] > a[:-1]).all():  # NaN fails too
        _fail(f"{name} must hold distinct labels in sorted order, got {a.tolist()[:10]}")


def _fitted_value(name, value, arrays):
    """A fitted attribute from ``meta["fitted"]`` (a JSON value, or ``"__list__"``)."""
    if value == "__list__":
        a = _array(arrays, f"attr/{name}")
        if a.ndim != 1 or a.dtype.kind not in "fiu":
            _fail(f"array 'attr/{name}' must be a 1-D array of numbers, got {a.dtype} of shape "
                  f"{a.shape}")
        return a.astype(np.float64).tolist()
    if not _is_scalar(value):
        _fail(f"fitted {name} must be a number, a string, a boolean or null, got "
              f"{_describe(value)}")
    return value


#: fitted attributes that files written by earlier versions lack (the model loads without them)
OPTIONAL_ATTRIBUTES = {"lr_curve_", "frame_size_", "difference_"}

#: types of the fitted attributes (``None``: may be None)
_ATTRIBUTE_RULES = {
    "n_features_in_": ("count", 1),
    "vocab_size_": ("count", 1, None),
    "n_iter_": ("count", 0),
    "t_": ("count", 0),
    "n_outputs_": ("count", 1),
    "frame_size_": ("count", 1),
    "difference_": ("bool",),
    "loss_curve_": ("list",),
    "grad_norm_curve_": ("list",),
    "lr_curve_": ("list",),
    "validation_scores_": ("list", None),
    "best_loss_": ("real", None),
    "best_validation_score_": ("real", None),
    "feature_mean_": ("vector", None),
    "feature_scale_": ("vector", None),
    "target_mean_": ("vector", None),
    "target_scale_": ("vector", None),
    "_y_ndim": ("choice", (1, 2)),
}


def _check_attribute(name, value):
    rule = _ATTRIBUTE_RULES.get(name)
    if rule is None or (value is None and None in rule[1:]):
        return
    kind = rule[0]
    if kind == "count":
        _positive_int(value, f"fitted {name}", rule[1])
    elif kind == "list" and not isinstance(value, list):
        _fail(f"fitted {name} must be a list of numbers, got {_describe(value)}")
    elif kind == "real" and not _is_real(value):
        _fail(f"fitted {name} must be a number or null, got {_describe(value)}")
    elif kind == "vector" and not isinstance(value, np.ndarray):
        _fail(f"fitted {name} must be an array or null, got {_describe(value)}")
    elif kind == "bool" and not isinstance(value, bool):
        _fail(f"fitted {name} must be true or false, got {_describe(value)}")
    elif kind == "choice" and (not _is_int(value) or value not in rule[1]):
        _fail(f"fitted {name} must be one of {list(rule[1])}, got {_describe(value)}")


def check_estimator_file(cls, meta, arrays):
    """Check everything a :class:`~fastrnn.estimators._base.BaseRNNEstimator` subclass reads from
    a file (see the module docstring), before it builds anything from it.

    Parameters
    ----------
    cls : type
        The class that loads the file.
    meta : dict
        ``meta.json`` (the container was checked by :func:`fastrnn._persist.read_model`).
    arrays : dict of str to ndarray

    Raises
    ------
    ModelFileError
    """
    check_format_version(cls.__name__, meta)
    est = _check_params(cls, _mapping(meta, "params"))
    check_fitted_file(meta, arrays, cls.__name__, cls._saved_attributes, est._label_attributes(),
                      est._pooling() is None)


def check_format_version(name, meta):
    """Refuse a file written by a newer fastrnn (``name``: the saved class, for the message)."""
    version = meta.get("estimator_format_version", 0)
    if not _is_int(version) or version < 0:
        _fail(f"estimator_format_version must be an integer >= 0, got {_describe(version)}")
    if version > ESTIMATOR_FORMAT_VERSION:
        _fail(f"this {name} was saved with estimator format version {version}, but this "
              f"fastrnn reads up to {ESTIMATOR_FORMAT_VERSION}", fix=UPGRADE)


def check_fitted_file(meta, arrays, name, saved, labels, per_step):
    """Check a saved estimator's fitted attributes and network, on their own and against each
    other (everything :func:`check_estimator_file` checks but the constructor parameters).

    Parameters
    ----------
    meta, arrays
        As read by :func:`fastrnn._persist.read_model`.
    name : str
        The saved class, for messages.
    saved : tuple of str
        The fitted attributes the class saves (all must be present, but those of
        ``OPTIONAL_ATTRIBUTES``, which files of earlier versions lack).
    labels : tuple of str
        Those among them that hold class labels.
    per_step : bool
        Whether the class predicts one output per step (a network without pooling).

    Returns
    -------
    values : dict
        The fitted attributes, by name (arrays as stored).
    """
    fitted = _mapping(meta, "fitted")
    listed = meta.get("array_attributes")
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        _fail(f"meta.json 'array_attributes' must be a list of names, got {_describe(listed)}")
    kinds = _mapping(meta, "label_kinds", {})
    allowed = set(saved)
    unknown = sorted((set(fitted) | set(listed)) - allowed)
    if unknown:
        _fail(f"the file sets attribute(s) {unknown}, which a {name} does not save")
    twice = sorted(set(fitted) & set(listed)) or sorted({n for n in listed if listed.count(n) > 1})
    if twice:
        _fail(f"the file gives attribute(s) {twice} twice")
    missing = sorted(allowed - set(fitted) - set(listed) - OPTIONAL_ATTRIBUTES)
    if missing:
        _fail(f"fitted attribute(s) {missing} are missing")
    labels = set(labels)
    if set(kinds) - labels or labels - set(listed):
        _fail(f"label attributes {sorted(labels)} must be arrays with a label kind, got "
              f"array_attributes={listed}, label_kinds={sorted(kinds)}")

    expected = {f"attr/{n}" for n in listed}
    expected |= {f"attr/{n}" for n, v in fitted.items() if v == "__list__"}
    # a training checkpoint also holds the state of its run (train/...), which loading ignores
    extra = sorted(n for n in arrays if not n.startswith("network/") and n not in expected
                   and not ("checkpoint" in meta and n.startswith("train/")))
    if extra:
        _fail(f"the file holds unexpected array(s) {extra}")
    values = {n: _fitted_value(n, v, arrays) for n, v in fitted.items()}
    for n in listed:
        values[n] = _array(arrays, f"attr/{n}")
        if n in labels:
            _check_labels(n, values[n], kinds.get(n))
    for n, v in values.items():
        _check_attribute(n, v)

    # the attributes against each other and against the network
    config = check_network_config(meta.get("network"), arrays, "network/")
    tokens = config.get("vocab_size") is not None
    if values.get("vocab_size_") != config.get("vocab_size"):
        _fail(f"fitted vocab_size_ is {values.get('vocab_size_')!r}, but the network's "
              f"vocab_size is {config.get('vocab_size')!r}")
    n_in = values["n_features_in_"]
    frame = values.get("frame_size_", 1)
    if tokens and frame != 1:
        _fail(f"fitted frame_size_ is {frame}, but the network reads token ids, step by step")
    diff = values.get("difference_", False)
    if tokens and diff:
        _fail("fitted difference_ is true, but the network reads token ids, which have no "
              "difference")
    channels = 2 if diff else 1
    if not tokens and n_in * channels * frame != config["n_features"]:
        _fail(f"fitted n_features_in_ is {n_in}, difference_ {diff} and frame_size_ {frame}, but "
              f"the network reads {config['n_features']} features per step (not {n_in} * "
              f"{channels} * {frame})")
    for mean, scale, n, what in (("feature_mean_", "feature_scale_", n_in, "n_features_in_"),
                                 ("target_mean_", "target_scale_",
                                  values.get("n_outputs_"), "n_outputs_")):
        if mean not in values:
            continue
        if (values[mean] is None) != (values[scale] is None):
            _fail(f"fitted {mean} and {scale} must both be arrays or both be null")
        if tokens and mean == "feature_mean_" and values[mean] is not None:
            _fail("a model that reads token ids has no feature standardisation, but the file "
                  "holds feature_mean_")
        _float_vector(mean, values[mean], n, what)
        _float_vector(scale, values[scale], n, what, positive=True)
    if per_step != (config.get("pooling", "last") is None):
        _fail(f"network pooling is {config.get('pooling', 'last')!r}, but a {name} "
              f"needs {'none (one output per step)' if per_step else 'one of ' + str(POOLINGS)}")
    n_out = config["n_outputs"]
    for name, count in (("classes_", lambda v: v.shape[0]), ("n_outputs_", lambda v: v)):
        if name in values and count(values[name]) != n_out:
            _fail(f"{name} gives {count(values[name])} outputs, but the network's output layer "
                  f"has {n_out}")
    if values.get("_y_ndim") == 1 and values.get("n_outputs_") != 1:
        _fail(f"fitted _y_ndim is 1 (a 1-D y) but n_outputs_ is {values.get('n_outputs_')}")
    return values


# ---------------------------------------------------------------------------------------------
# the language model
# ---------------------------------------------------------------------------------------------


def _identifier_or(default):
    """Substitute for a parameter stored as a name the constraints may not list (a custom
    optimizer class is saved by its class name)."""
    return lambda v: default if isinstance(v, str) and v.isidentifier() else v


def check_language_model_file(cls, meta, arrays):
    """Check what :class:`~fastrnn.estimators.language_model.RNNLanguageModel` reads from a
    file (a saved model or a training checkpoint), before it builds anything from it.

    The network's weights are checked by :func:`network_from_saved`.

    Raises
    ------
    ModelFileError
    """
    from ..text import Vocabulary

    params = _mapping(meta, "params")
    # a custom tokenizer is saved as level=None; a custom optimizer by its class name
    _check_params(cls, params, {"level": lambda v: "char" if v is None else v,
                                "optimizer": _identifier_or("adam")})
    try:
        vocab = Vocabulary.from_dict(meta.get("vocabulary"))
    except (ValueError, TypeError, KeyError) as exc:
        _fail(f"meta.json 'vocabulary' is not a valid vocabulary ({exc})", exc)
    if meta.get("input_type", "text") not in ("text", "tokens"):
        _fail(f"input_type must be 'text' or 'tokens', got {_describe(meta.get('input_type'))}")
    if not (meta.get("tokenizer") is None or isinstance(meta.get("tokenizer"), str)):
        _fail(f"tokenizer must be a name or null, got {_describe(meta.get('tokenizer'))}")
    config = check_network_config(meta.get("network_config"), arrays, "", "network_config")
    V = len(vocab)
    if (config.get("vocab_size"), config["n_outputs"]) != (V, V):
        _fail(f"network_config has vocab_size={config.get('vocab_size')!r} and n_outputs="
              f"{config['n_outputs']}, but the vocabulary has {V} tokens")
    if config.get("pooling", "last") is not None:
        _fail(f"network_config pooling must be null for a language model, got "
              f"{_describe(config.get('pooling'))}")
    if "checkpoint" not in meta and any(n.startswith("train/") for n in arrays):
        _fail("the file holds training-state arrays (train/...) but is no checkpoint")
    _check_ngram(meta.get("ngram"), arrays, V)

    fitted = _mapping(meta, "fitted")
    unknown = sorted(set(fitted) - set(LM_FITTED))
    if unknown:
        _fail(f"fitted holds unknown attribute(s) {unknown}")
    if "loss_curve_" not in fitted:
        _fail("fitted attribute 'loss_curve_' is missing")
    for name in ("n_iter_", "n_steps_", "n_tokens_seen_"):
        if name in fitted:
            _positive_int(fitted[name], f"fitted {name}", 0)
    for name in ("loss_curve_", "validation_bits_per_token_"):
        v = fitted.get(name, [])
        if not isinstance(v, list) or not all(x is None or _is_real(x) for x in v):
            _fail(f"fitted {name} must be a list of numbers, got {_describe(v)}")
    for name in ("best_validation_bits_per_token_", "training_time_"):
        v = fitted.get(name)
        if not (v is None or _is_real(v)):
            _fail(f"fitted {name} must be a number or null, got {_describe(v)}")
    if not (fitted.get("stop_reason_") is None or isinstance(fitted["stop_reason_"], str)):
        _fail(f"fitted stop_reason_ must be a string, got {_describe(fitted['stop_reason_'])}")
    history = fitted.get("history_", [])
    if not isinstance(history, list):
        _fail(f"fitted history_ must be a list of objects, got {_describe(history)}")
    for entry in history:
        if not (isinstance(entry, dict) and set(entry) == set(_HISTORY)
                and all(check(entry[k]) for k, check in _HISTORY.items())):
            _fail(f"fitted history_ holds {_describe(entry)}; each entry must give "
                  f"{', '.join(_HISTORY)} as numbers")


def _check_ngram(info, arrays, V):
    """Check a language model's n-gram part: ``meta["ngram"]`` and the ``ngram/...`` arrays."""
    from ..text._ngram import max_order

    names = {n for n in arrays if n.startswith("ngram/")}
    if info is None:
        if names:
            _fail(f"the file holds n-gram arrays {sorted(names)[:4]} but no 'ngram' entry")
        return
    if not isinstance(info, dict) or set(info) != {"order", "weight"}:
        _fail(f"ngram must be an object with order and weight, got {_describe(info)}")
    order = _positive_int(info["order"], "ngram order")
    if order > max_order(V):
        _fail(f"ngram order {order} is too high for {V} token ids (at most {max_order(V)})")
    if not (_is_real(info["weight"]) and 0.0 <= info["weight"] <= 1.0):
        _fail(f"ngram weight must be a number in [0, 1], got {_describe(info['weight'])}")
    expected = {f"ngram/{n}/{k}" for n in range(1, order + 1) for k in ("grams", "counts")}
    if names != expected:
        _fail(f"the n-gram arrays of order {order} must be {sorted(expected)}, got "
              f"{sorted(names)}")
    for n in range(1, order + 1):
        grams, counts = _array(arrays, f"ngram/{n}/grams", 1), _array(arrays, f"ngram/{n}/counts", 1)
        if grams.dtype.kind not in "iu" or counts.dtype.kind not in "iu":
            _fail(f"the n-gram arrays of order {n} must hold integers, got {grams.dtype} and "
                  f"{counts.dtype}")
        if len(grams) != len(counts) or len(grams) == 0:
            _fail(f"ngram/{n}/grams and ngram/{n}/counts must have the same non-zero length, "
                  f"got {len(grams)} and {len(counts)}")
        if (np.any(np.diff(grams) <= 0) or grams[0] < 0 or grams[-1] >= V ** n
                or np.any(counts < 1)):
            _fail(f"ngram/{n} must hold increasing n-gram codes in [0, {V}**{n}) with positive "
                  "counts")


#: the entries of a language model's ``history_`` and what each may hold
_HISTORY = {
    "epoch": _is_real, "step": lambda v: _is_int(v) and v >= 0,
    "tokens": lambda v: _is_int(v) and v >= 0, "seconds": _is_real,
    "train_bits": lambda v: v is None or _is_real(v),
    "val_bits": lambda v: v is None or _is_real(v), "lr": _is_real,
}
