"""Plots of training histories and of the diagnostics, with matplotlib (the ``plot`` extra)."""

import numpy as np

__all__ = ["plot_history", "plot_gradient_flow", "plot_gate_statistics", "history_curves"]


def _pyplot():
    """``matplotlib.pyplot``, or an ImportError that names the ``plot`` extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "fastrnn's plots need matplotlib, which is not installed. Install the 'plot' extra: "
            "pip install 'fastrnn[plot]' (or pip install matplotlib). The diagnostics themselves "
            "(gradient_flow, gate_statistics, memory_length) need no matplotlib."
        ) from exc
    return plt


def _axes(ax, n, width=4.2, height=3.2):
    """``n`` axes: those given (one Axes, or a sequence of at least ``n``), or a new figure's."""
    if ax is None:
        plt = _pyplot()
        fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False,
                                 layout="constrained")
        return list(axes[0])
    axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
    if len(axes) < n:
        raise ValueError(f"ax must hold {n} axes for this plot (one per panel), got {len(axes)}. "
                         "Pass ax=None for a new figure.")
    return axes[:n]


def history_curves(model):
    """The training curves a fitted model recorded, as numpy arrays.

    Parameters
    ----------
    model : fitted estimator or RNNLanguageModel

    Returns
    -------
    curves : dict of str to (x, y, label) with ndarrays x, y of shape (n,)
        ``"loss"``: training loss per epoch (the language model: bits per token per evaluation);
        ``"validation"``: validation score per epoch (the language model: validation bits per
        token); ``"lr"``: learning rate; ``"grad_norm"``: gradient norm per epoch. Only the curves
        the model recorded are present (a model saved by fastrnn before ``lr_curve_`` existed has
        no learning-rate curve).
    """
    if getattr(model, "loss_curve_", None) is None:
        raise ValueError(f"model must be a fitted fastrnn estimator with a training history "
                         f"(loss_curve_), got {type(model).__name__}"
                         + (" that is not fitted: call fit first." if hasattr(model, "fit")
                            else "."))
    curves = {}
    if type(model).__name__ == "RNNLanguageModel":
        history = model.history_
        ep = np.array([h["epoch"] for h in history], float)
        train = np.array([np.nan if h["train_bits"] is None else h["train_bits"]
                          for h in history], float)
        unit = "bits per character" if model.level == "char" else "bits per token"
        curves["loss"] = (ep, train, f"training {unit}")
        val = [h.get("val_bits") for h in history]
        if any(v is not None for v in val):
            curves["validation"] = (ep, np.array([np.nan if v is None else v for v in val]),
                                    f"validation {unit}")
        curves["lr"] = (ep, np.array([h["lr"] for h in history], float), "learning rate")
        return curves
    ep = np.arange(1, len(model.loss_curve_) + 1)
    curves["loss"] = (ep, np.asarray(model.loss_curve_, float), "training loss")
    scores = getattr(model, "validation_scores_", None)
    if scores:
        # the validation scores of a fit are those of its last epochs (one per epoch)
        curves["validation"] = (ep[len(ep) - len(scores):], np.asarray(scores, float),
                                "validation score")
    lr = getattr(model, "lr_curve_", None)
    if lr:  # a model saved by an older version has none; a warm start on it: the last epochs
        curves["lr"] = (ep[len(ep) - len(lr):], np.asarray(lr, float), "learning rate")
    gn = getattr(model, "grad_norm_curve_", None)
    if gn:
        curves["grad_norm"] = (ep[:len(gn)], np.asarray(gn, float), "gradient norm")
    return curves


def plot_history(model, ax=None):
    """Plot the training history of a fitted estimator or language model.

    Panels, for the curves the model recorded (see :func:`history_curves`): the training loss
    with the validation score (estimators: on a second y axis; the language model: bits per
    token of both on one axis), the learning rate, and the gradient norm (estimators).

    Parameters
    ----------
    model : fitted RNNClassifier, RNNRegressor, RNNTagger or RNNLanguageModel
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per panel; a new figure by default.

    Returns
    -------
    axes : list of matplotlib Axes
        The panels, in the order above.
    """
    curves = history_curves(model)
    lm = type(model).__name__ == "RNNLanguageModel"
    panels = ["loss"] + [k for k in ("lr", "grad_norm") if k in curves]
    axes = _axes(ax, len(panels))
    for a, name in zip(axes, panels):
        x, y, label = curves[name]
        a.set_xlabel("epoch")
        if name == "loss":
            a.plot(x, y, marker=".", color="C0", label=label)
            a.set_ylabel(label.replace("training ", "") if lm else "training loss")
            a.set_title("loss")
            if "validation" in curves:
                vx, vy, vlabel = curves["validation"]
                target = a if lm else a.twinx()
                target.plot(vx, vy, marker=".", color="C1", label=vlabel)
                if not lm:
                    target.set_ylabel(vlabel)
                handles, labels = a.get_legend_handles_labels()
                if target is not a:
                    more = target.get_legend_handles_labels()
                    handles, labels = handles + more[0], labels + more[1]
                a.legend(handles, labels, fontsize="small")
        else:
            a.plot(x, y, marker=".", color="C2" if name == "lr" else "C3")
            a.set_ylabel(label)
            a.set_title(label)
    return axes


def plot_gradient_flow(flow, ax=None, quantities=("loss_grad", "jacobian")):
    """Plot gradient-flow curves against the distance, on a log scale.

    Parameters
    ----------
    flow : GradientFlow or dict of str to GradientFlow
        One result of :func:`gradient_flow`, or several by label (e.g. ``{"RNN": ..., "LSTM":
        ...}`` to compare models).
    ax : matplotlib Axes or sequence of Axes, optional
        One per quantity; a new figure by default.
    quantities : sequence of {"loss_grad", "jacobian"}
        The panels: ``||dL/dh_t||`` and ``||dh_T/dh_t||`` (``loss_grad`` is left out for results
        without a loss).

    Returns
    -------
    axes : list of matplotlib Axes
    """
    flows = flow if isinstance(flow, dict) else {"": flow}
    for q in quantities:
        if q not in ("loss_grad", "jacobian"):
            raise ValueError(f"quantities must be 'loss_grad' and/or 'jacobian', got {q!r}.")
    quantities = [q for q in quantities
                  if any(getattr(f, q) is not None for f in flows.values())]
    axes = _axes(ax, len(quantities))
    titles = {"loss_grad": "|dL/dh_t|", "jacobian": "|dh_T/dh_t|"}
    for a, q in zip(axes, quantities):
        for i, (name, f) in enumerate(flows.items()):
            arr = getattr(f, q)
            if arr is None:
                continue
            for layer in range(f.num_layers):
                for d in range(f.num_directions):
                    parts = [name] if name else []
                    if f.num_layers > 1:
                        parts.append(f"layer {layer}")
                    if f.num_directions > 1:
                        parts.append("reverse" if d else "forward")
                    y = np.where(arr[layer, d] > 0, arr[layer, d], np.nan)
                    a.plot(f.distance, y, label=" ".join(parts) or f.cell,
                           color=f"C{i}", linestyle=["-", "--", ":", "-."][(layer * 2 + d) % 4])
        a.set_yscale("log")
        a.set_xlabel("distance T - t (steps)")
        a.set_ylabel(titles[q])
        a.set_title(("gradient of the loss " if q == "loss_grad" else "Jacobian ") + titles[q])
        a.legend(fontsize="small")
    return axes


def plot_gate_statistics(stats, ax=None):
    """Bar chart of the share of saturated activations of every gate, per layer-direction; the
    title gives the time constant of the forget gate (LSTM; the update gate of a GRU): of its
    mean over the units, and the longest of a unit.

    Parameters
    ----------
    stats : GateStatistics
        From :func:`gate_statistics`.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    (a,) = _axes(ax, 1, width=5.0)
    L, D = next(iter(stats.saturation.values())).shape
    n = L * D
    width = 0.8 / n
    x = np.arange(len(stats.gates))
    for k in range(n):
        layer, d = divmod(k, D)
        vals = [stats.saturation[g][layer, d] for g in stats.gates]
        label = f"layer {layer}" + ((" reverse" if d else " forward") if D > 1 else "")
        a.bar(x + (k - (n - 1) / 2) * width, vals, width, label=label)
    a.set_xticks(x)
    a.set_xticklabels([f"{g}\n({stats.activations[g]})" for g in stats.gates])
    a.set_ylabel("share saturated")
    a.set_ylim(0, 1)
    title = f"{stats.cell.upper()} gate saturation"
    if stats.time_constant is not None:
        means = ", ".join(f"{v:.3g}" for v in stats.time_constant.ravel())
        title += (f"\ntime constant: mean {means}; longest unit "
                  f"{stats.unit_time_constant.max():.3g} steps")
    a.set_title(title, fontsize="medium")
    a.legend(fontsize="small")
    return a
