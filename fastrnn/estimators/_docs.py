"""The parameters the estimators share, documented once.

An estimator's docstring names its shared parameters on one line,
``[shared parameters: cell hidden_size ...]``; :func:`document_parameters` replaces that line by
their entries, each with the default of the estimator's own signature. An estimator that means a
parameter differently documents it in its docstring as usual, or gives the text in its
``_param_docs`` (name -> (type, description)).
"""

import inspect
import json
import re

__all__ = ["document_parameters", "PARAMS"]

#: name -> (type, description); the description is written indented by 8 spaces
PARAMS = {
    "cell": ('{"lstm", "gru", "rnn"}', """
        Recurrent cell: LSTM, GRU or simple (Elman, tanh) RNN."""),
    "hidden_size": ("int", """
        Units of each recurrent layer (per direction)."""),
    "num_layers": ("int", """
        Stacked recurrent layers."""),
    "bidirectional": ("bool", """
        Also run each layer from the end of each sequence back to its start (the two directions'
        states are concatenated). A bidirectional model cannot read a stream step by step."""),
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
    "batch_size": ("int", """
        Sequences per minibatch. Batches hold sequences of similar length
        (:func:`fastrnn.text.length_buckets`), reshuffled every epoch."""),
    "max_iter": ('int or "auto"', """
        Maximum number of epochs (passes over the training data). ``"auto"``: enough epochs for
        about 3,000 optimisation steps (at least 10, at most 200), so small data sets get more
        epochs than large ones."""),
    "clip_norm": ("float or None", """
        Clip the global gradient norm to this value (``None``: no clipping)."""),
    "lr_schedule": ('{"constant", "plateau", "cosine", "linear"}', """
        ``"plateau"``: halve the learning rate when the validation score (``early_stopping``) or
        the training loss did not improve by ``tol`` for 3 epochs; ``"cosine"`` / ``"linear"``:
        anneal it to 0 over the ``max_iter`` epochs (or over ``time_budget``, if it ends first)."""),
    "weight_decay": ("float", """
        L2 penalty on the parameters (decoupled from the gradient for ``optimizer="adamw"``)."""),
    "time_budget": ("float or None", """
        Stop training after this many seconds (checked after every step; the model of that
        moment is kept, or the best one with ``early_stopping``)."""),
    "early_stopping": ("bool", """
        Hold out ``validation_fraction`` of the training data (or use ``fit``'s
        ``validation_data``) and stop when the validation score (that of :meth:`score`) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; the best parameters are restored.
        Otherwise training stops on the training loss with the same rule."""),
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
    "callbacks": ("list of fastrnn.callbacks.Callback or None", """
        Called at the start of ``fit``, around every epoch (with its history entry) and at the
        end; a callback can stop training (see :mod:`fastrnn.callbacks`)."""),
}

_LINE = re.compile(r"^(?P<indent> *)\[shared parameters: (?P<names>[\w ]+)\]$", re.M)


def _default(value):
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def document_parameters(cls):
    """Class decorator: fill the ``[shared parameters: ...]`` line of ``cls.__doc__``."""
    sig = inspect.signature(cls.__init__).parameters
    own = getattr(cls, "_param_docs", {})

    def entries(match):
        lines = []
        for name in match.group("names").split():
            typ, text = own.get(name, PARAMS.get(name, (None, None)))
            if typ is None:
                raise KeyError(f"{cls.__name__}: no shared documentation of {name!r}")
            if name not in sig:
                raise KeyError(f"{cls.__name__} documents {name!r}, which it does not take")
            lines.append(f"    {name} : {typ}, default={_default(sig[name].default)}")
            lines.append(text.strip("\n"))
        return "\n".join(lines)

    cls.__doc__ = _LINE.sub(entries, cls.__doc__)
    return cls
