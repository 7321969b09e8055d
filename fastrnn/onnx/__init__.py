"""Export layers, networks and fitted estimators to ONNX, written from fastrnn's own arrays.

:func:`export` builds the graph with ``onnx.helper`` from the parameters fastrnn holds; PyTorch is
not involved. The recurrent layers become ONNX's own ``RNN``, ``LSTM`` and ``GRU`` operators (one
per stacked layer, both directions in one operator), so any ONNX runtime runs them with its
recurrent kernels; MinGRU, MinLSTM and IndRNN, which have no operator, become a ``MatMul`` for
the input projection and a ``Scan`` over time for the recurrence. The ``onnx`` package is
imported only when :func:`export` is called (the ``onnx`` extra: ``pip install
'fastrnn[onnx]'``, which also installs ONNX Runtime).

Every exported graph takes a batch-first input ``X`` and the number of real steps of each
sequence, ``lengths``; the batch and time axes are dynamic. See the user guide page "Deploying
models" for the inputs and outputs of each kind of model.
"""

import os

import numpy as np

from ._graph import _Graph, _onnx
from ._models import (_export_classifier, _export_language_model, _export_layer,
                      _export_network, _export_regressor)

__all__ = ["export", "DEFAULT_OPSET", "MIN_OPSET"]

#: the opset of :func:`export` unless another is asked for
DEFAULT_OPSET = 17
#: the oldest opset :func:`export` writes (ONNX's recurrent operators took their present form in 14)
MIN_OPSET = 14


# --------------------------------------------------------------------------------------------
# the entry point
# --------------------------------------------------------------------------------------------


def _kind_of(model):
    from ..estimators import RNNClassifier, RNNLanguageModel, RNNRegressor, RNNTagger
    from ..nn import SequenceNetwork
    from ..nn.recurrent import _Recurrent

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
        neither numbers nor strings, a language model with an n-gram part (``ngram_order``).

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
    from .._version import __version__
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, os.fspath(path))
    return proto
