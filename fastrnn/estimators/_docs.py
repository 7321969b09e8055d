"""The parameters the estimators share, documented once.

An estimator's docstring names its shared parameters on one line,
``[shared parameters: cell hidden_size ...]``; :func:`document_parameters` replaces that line by
their entries, each with the default of the estimator's own signature (of the method, for a
method's docstring). ``[shared attributes: n_iter_ t_ ...]`` does the same for fitted attributes.
An estimator that means a parameter differently documents it in its docstring as usual, or gives
the text in its ``_param_docs`` (name -> (type, description)).
"""

import inspect
import json
import re

__all__ = ["document_parameters", "PARAMS", "ATTRIBUTES"]

#: name -> (type, description); the description is written indented by 8 spaces
PARAMS = {
    "cell": ('{"lstm", "gru", "rnn", "mingru", "minlstm", "indrnn"}', """
        Recurrent cell: LSTM, GRU, simple (Elman, tanh) RNN, or one with an element-wise
        recurrence: minGRU, minLSTM (Feng et al. 2024; no ``recurrent_dropout``) or IndRNN (Li et
        al. 2018)."""),
    "hidden_size": ("int", """
        Units of each recurrent layer (per direction)."""),
    "num_layers": ("int", """
        Stacked recurrent layers."""),
    "bidirectional": ("bool", """
        Also run each layer from the end of each sequence back to its start (the two directions'
        states are concatenated). A bidirectional model cannot read a stream step by step."""),
    "skip": ('{None, "residual", "dense", "highway"}', """
        Connections between the stacked recurrent layers (``num_layers > 1``): ``"residual"``
        adds each layer's input to its output (layers above the first); ``"dense"`` feeds each
        layer the input and the outputs of all layers below it; ``"highway"`` mixes each layer's
        output with its input through a learned gate (Srivastava et al. 2015). See
        :class:`fastrnn.nn.LSTM`. ``None``: plain stacking."""),
    "dropout": ("float", """
        Dropout rate on the inputs of each layer and on the recurrent outputs (training only)."""),
    "recurrent_dropout": ("float", """
        Dropout rate on the recurrent connections (one mask per sequence, Gal & Ghahramani
        2016)."""),
    "embedding_dim": ('int, "auto" or None', """
        How a step is read. ``"auto"``: integer input (e.g. the output of
        :class:`fastrnn.text.SequenceVectorizer`) is token ids, embedded in vectors of a size that
        grows with the vocabulary (``embedding_dim_``); float input is features. An int: the input
        is token ids, embedded in vectors of this size. ``None``: the input is float features per
        step (integers are read as numbers). Token ids may come with ``K`` ids per step (a word
        and its subword features); their vectors are summed."""),
    "vocab_size": ("int or None", """
        Number of token ids; ``None`` uses the vectorizer's count (``SequenceVectorizer`` output)
        or the largest id seen in ``fit`` plus one. Larger ids at predict time are an error."""),
    "standardize": ("bool", """
        Standardise each input channel (float input) with the mean and standard deviation of all
        steps of the training data (kept in ``feature_mean_`` / ``feature_scale_``). Recurrent
        networks train much better on standardised channels."""),
    "optimizer": ("str or Optimizer", """
        ``"adam"``, ``"adamw"``, ``"sgd"``, ``"momentum"``, ``"nesterov"`` or ``"adagrad"`` (see
        :func:`fastrnn.optim.get_optimizer`), or an optimiser instance (copied at fit)."""),
    "learning_rate": ("float", """
        Learning rate of a named optimiser."""),
    "batch_size": ('int or "auto"', """
        Sequences per minibatch. Batches hold sequences of similar length
        (:func:`fastrnn.text.length_buckets`), reshuffled every epoch. ``"auto"``: about 32
        batches per epoch, of 8 to 32 sequences (``min(32, max(8, n_train // 32))``), so a small
        data set gets more optimisation steps."""),
    "max_iter": ('int or "auto"', """
        Maximum number of epochs (passes over the training data). ``"auto"``: enough epochs for
        about 3,000 optimisation steps (at least 10, at most 200), so small data sets get more
        epochs than large ones; but no more epochs than read about 4 million time steps in all
        (at least 3), so long sequences get fewer (1,200 reviews of about 800 tokens: 5
        epochs)."""),
    "clip_norm": ("float or None", """
        Clip the global gradient norm to this value (``None``: no clipping)."""),
    "lr_schedule": ('{"constant", "plateau", "cosine", "linear"}', """
        ``"plateau"``: halve the learning rate when the validation score (``early_stopping``) or
        the training loss did not improve by ``tol`` for 3 epochs; ``"cosine"`` / ``"linear"``:
        anneal it to 0 over the ``max_iter`` epochs (or over ``time_budget``, if it ends first);
        ``partial_fit`` keeps the rate of ``"cosine"`` and ``"linear"`` constant (one call is no
        horizon to anneal over). A :class:`fastrnn.callbacks.LearningRateScheduler` callback
        replaces the schedule."""),
    "weight_decay": ("float", """
        L2 penalty on the parameters (decoupled from the gradient for ``optimizer="adamw"``)."""),
    "time_budget": ("float or None", """
        Stop training after this many seconds (checked after every step; the model of that
        moment is kept, or the best one with ``early_stopping``)."""),
    "early_stopping": ('bool or "auto"', """
        ``True``: hold out ``validation_fraction`` of the training data (or use ``fit``'s
        ``validation_data``) and stop when the validation score (that of :meth:`score`) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; the best parameters are restored
        (Keras' ``restore_best_weights``). ``False``: training stops on the training loss with
        the same rule. ``"auto"``: ``True`` when ``validation_data`` is given or the held-out
        part would hold at least 100 sequences; otherwise no split and no stopping: the fit runs
        all its epochs (on a small data set both a tiny validation split and the training
        loss's plateaus stop too early). ``partial_fit`` reads ``"auto"`` as no stopping."""),
    "validation_fraction": ("float", """
        Share of the training sequences held out for early stopping (stratified for labels)."""),
    "n_iter_no_change": ("int", """
        Epochs without improvement tolerated before stopping."""),
    "tol": ("float", """
        Minimum improvement of the loss (or validation score)."""),
    "random_state": ("int, RandomState instance or None", """
        Seeds the weight initialisation, the minibatch order, dropout and the validation split;
        an int makes ``fit`` reproducible."""),
    "verbose": ("int", """
        ``1``: one progress bar (tqdm) for the fit, with the loss, the validation score and the
        sequences per second; ``2``: also one line per epoch."""),
    "backend": ('{"auto", "numba", "cython", "cuda", "numpy"}', """
        Kernel backend of the recurrent layers (see :func:`fastrnn.show_backends`)."""),
    "warm_start": ("bool", """
        ``fit`` continues from the previous solution instead of starting afresh."""),
    "dtype": ('{"float32", "float64"}', """
        Precision of the network."""),
    "precision": ('{"float32", "bf16"}', """
        Arithmetic of training. ``"bf16"``: mixed precision, the large matrix products of the
        recurrent layer (input projection, weight and input gradients) round their operands to
        bfloat16 and sum in float32, everything else stays float32 (see
        :class:`fastrnn.nn.LSTM`); fast on CPUs with AVX-512 BF16, exact but slow elsewhere.
        Needs ``dtype="float32"``, ``cell`` ``"lstm"``, ``"gru"`` or ``"rnn"`` and ``backend``
        ``"auto"`` or ``"numba"``. Prediction computes in float32."""),
    "callbacks": ("list of fastrnn.callbacks.Callback or None", """
        Called at the start of ``fit``, around every epoch (with its history entry) and at the
        end; a callback can stop training (see :mod:`fastrnn.callbacks`)."""),
    "checkpoint_path": ("str, path-like or None", """
        Where ``fit`` writes a training checkpoint: at the end of every epoch, and when it stops
        early (``time_budget``, a callback, Ctrl-C). The write is atomic: a crash, even
        ``kill -9``, leaves the previous checkpoint or the new one, never half of one.
        ``fit(..., resume=True)`` continues the run from it exactly: the parameters, the
        optimiser's state, the learning-rate schedule, the random generators (minibatch order,
        dropout), the early-stopping state and best parameters, the validation split and the
        position in the epoch are restored, so the resumed fit ends with the model of an
        uninterrupted one. The file also loads with :func:`fastrnn.load` as the model so far
        (with early stopping, the best one). An existing file that is not a checkpoint of this
        estimator's class is never overwritten (an error says so). ``partial_fit`` writes no
        checkpoint (save the model between calls with ``save``)."""),
    # ---- parameters of the methods
    "X": ("array-like of shape (n_samples, T) or (n_samples, T, n_features), or list of arrays", """
        The sequences; a list may hold arrays of different lengths ``(T_i,)`` or
        ``(T_i, n_features)`` (see the user guide, "Input formats")."""),
    "sample_weight": ("array-like of shape (n_samples,)", """
        Weight of each sequence in the loss."""),
    "resume": ("bool", """
        Continue the fit saved in the checkpoint at ``checkpoint_path`` instead of starting
        afresh; with no file there yet, fit as without ``resume`` (and write it). The estimator is
        restored from the checkpoint, whatever it held before (``warm_start`` does not matter).
        ``X``, ``y``, ``sample_weight`` and ``validation_data`` must be those of the checkpointed
        fit, and so must the parameters that make the model, read its input and define its loss
        (``cell``, ``hidden_size``, ``dropout``, ``standardize``, ``class_weight``,
        ``optimizer`` ...): a ``ValueError`` names what differs. Others, such as ``max_iter``,
        ``time_budget``, ``callbacks`` or ``verbose``, may change."""),
    "validation_data": ("tuple (X_val, y_val) or (X_val, y_val, sample_weight_val)", """
        Held-out data scored after every epoch (``history_``, ``validation_scores_``); with
        ``early_stopping=True`` or ``"auto"`` it is the data early stopping watches, instead of a
        split of the training data."""),
}

#: fitted attribute -> (type, description)
ATTRIBUTES = {
    "n_features_in_": ("int", """
        Values per step: features of float input, token ids per step of token input."""),
    "vocab_size_": ("int or None", """
        Number of token ids the embedding accepts (token input)."""),
    "embedding_dim_": ("int or None", """
        Size of the token vectors (token input), else ``None``."""),
    "feature_mean_,feature_scale_": ("ndarray of shape (n_features,) or None", """
        Standardisation of the input channels (``standardize=True``, float input)."""),
    "network_": ("fastrnn.nn.SequenceNetwork", """
        The trained network."""),
    "loss_curve_": ("list of float", """
        Mean training loss of each epoch."""),
    "grad_norm_curve_": ("list of float", """
        Mean global gradient norm (before clipping) of each epoch."""),
    "lr_curve_": ("list of float", """
        Learning rate at the end of each epoch (after the epoch's schedule step)."""),
    "validation_scores_": ("list of float or None", """
        Validation score (that of :meth:`score`) of each epoch, with validation data; else
        ``None``."""),
    "best_validation_score_": ("float or None", """
        Best validation score (when the fit watched validation data), else ``None``."""),
    "best_loss_": ("float or None", """
        Lowest training loss (when it did not), else ``None``."""),
    "n_iter_": ("int", """
        Epochs run (cumulative over ``warm_start`` fits and ``partial_fit`` calls)."""),
    "t_": ("int", """
        Training sequences seen."""),
    "history_": ("list of dict", """
        One entry per epoch: ``epoch``, ``loss``, ``val_score`` (with validation data), ``lr``,
        ``grad_norm`` (mean before clipping), ``seconds`` (since the start of training),
        ``step`` and ``sequences`` (seen so far)."""),
    "stop_reason_": ("str", """
        Why the last ``fit`` ended: ``"max_iter"``, ``"early_stopping"``, ``"time_budget"``,
        ``"callback"`` or ``"interrupted"`` (Ctrl-C)."""),
}

_LINE = re.compile(r"^(?P<indent> *)\[shared (?P<kind>parameters|attributes): "
                   r"(?P<names>[\w, ]+)\]$", re.M)


def _default(value):
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def document_parameters(obj):
    """Class or method decorator: fill the ``[shared parameters: ...]`` and
    ``[shared attributes: ...]`` lines of ``obj.__doc__`` (see the module docstring)."""
    is_class = isinstance(obj, type)
    sig = inspect.signature(obj.__init__ if is_class else obj).parameters
    own = getattr(obj, "_param_docs", {})

    def entries(match):
        lines = []
        indent = match.group("indent")
        table = ATTRIBUTES if match.group("kind") == "attributes" else PARAMS
        names = match.group("names").replace(", ", ",").split()
        for name in names:
            typ, text = own.get(name, table.get(name, (None, None)))
            if typ is None:
                raise KeyError(f"{obj.__qualname__}: no shared documentation of {name!r}")
            head = f"{name} : {typ}"
            if table is PARAMS:
                if name not in sig:
                    raise KeyError(f"{obj.__qualname__} documents {name!r}, which it does not "
                                   "take")
                if sig[name].default is not inspect.Parameter.empty:
                    head += f", default={_default(sig[name].default)}"
            lines.append(indent + head.replace(",feature", ", feature"))
            body = text.strip("\n").replace("\n        ", "\n" + indent + "    ")
            lines.append(indent + "    " + body.lstrip())
        return "\n".join(lines)

    obj.__doc__ = _LINE.sub(entries, obj.__doc__)
    return obj
