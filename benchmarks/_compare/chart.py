"""The bar chart of a run: fastrnn, PyTorch and ONNX Runtime side by side, workload by workload.

Every bar is a median time divided by PyTorch's median on the same workload and thread count, so
PyTorch's bars are 1 and a bar below 1 is faster than PyTorch. fastrnn's bar is its fastest
backend (the ``best`` column of the tables). The language model's bar is a time too: the inverse
of its tokens per second, which is proportional to the median time of a training chunk.

:func:`chart_panels` reads the bars out of the results of ``compare.py`` (its JSON),
:func:`plot` draws them into a PNG with matplotlib (imported only there: the ``plot`` extra) and
:func:`figure_rst` is the reStructuredText that shows the PNG on a documentation page.
"""

import os
from pathlib import Path

#: the sections of a worker's results that are drawn, in order: (key, panel title, row timings)
SECTIONS = (
    ("latency", "latency, batch 1", lambda row: row["times"]),
    ("stream", "streaming, per step", lambda row: row["times"]),
    ("forward", "forward", lambda row: row["forward"]),
    ("train", "training step", lambda row: row["train"]),
    ("lm", "char LM", lambda row: row["times"]),
)
#: the implementations drawn: (key, legend label, colour)
IMPLS = (
    ("fastrnn", "fastrnn (fastest backend)", "C0"),
    ("torch", "PyTorch", "C7"),
    ("ort", "ONNX Runtime", "C2"),
)
#: the comment lines of a page between which ``--update-doc`` writes the figure
CHART_START, CHART_END = ".. chart-start", ".. chart-end"
#: bars above this (time relative to PyTorch) are cut at the top of the axis and labelled
RATIO_CAP = 3.0


def _rows(run, key):
    """The rows of section ``key`` of a worker run (forward and train share the config rows)."""
    return run.get("configs", []) if key in ("forward", "train") else run.get(key, [])


def _label(key, row):
    if key in ("forward", "train"):
        return f"{row['group']} {row['cell']}"
    return "LSTM" if key == "lm" else row["cell"]


def chart_panels(results):
    """The bars of every panel of the chart.

    Parameters
    ----------
    results : dict
        The results of a run, as ``compare.py`` saves them (``runs``: one entry per thread count).

    Returns
    -------
    list of dict
        One panel per (thread count, section) that has at least one workload timed with
        PyTorch, in the order of the runs and of :data:`SECTIONS`: ``threads``, ``section``,
        ``title`` and ``bars``, a list of ``(label, {impl: time relative to PyTorch})`` where an
        implementation that was not timed is absent.

    Raises
    ------
    ValueError
        When no workload of the run was timed with PyTorch: there is nothing to compare with.
    """
    panels = []
    for run in results.get("runs", []):
        for key, title, timings in SECTIONS:
            bars = []
            for row in _rows(run, key):
                t = timings(row)
                if "torch" not in t:
                    continue
                ref = t["torch"]["median"]
                fr = [v["median"] for k, v in t.items() if k.startswith("fastrnn[")]
                ratios = {"torch": 1.0}
                if fr:
                    ratios["fastrnn"] = min(fr) / ref
                if "ort" in t:
                    ratios["ort"] = t["ort"]["median"] / ref
                bars.append((_label(key, row), ratios))
            if bars:
                panels.append(dict(threads=run["threads"], section=key, title=title, bars=bars))
    if not panels:
        raise ValueError("the run has no workload timed with PyTorch, so the chart (times "
                         "relative to PyTorch) has nothing to show; run compare.py with PyTorch "
                         "installed and without --no-torch")
    return panels


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, or an ImportError that says what to
    install."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("drawing the chart needs matplotlib, which is not installed: "
                          "pip install matplotlib (or the plot extra: pip install -e '.[plot]')"
                          ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot(results, path):
    """Draw the chart of ``results`` (see :func:`chart_panels`) into the PNG file ``path``: one
    row of panels per thread count, one panel per section, grouped bars per workload."""
    panels = chart_panels(results)
    plt = pyplot()
    threads = list(dict.fromkeys(p["threads"] for p in panels))
    sections = [key for key, _, _ in SECTIONS if any(p["section"] == key for p in panels)]
    # panel widths in bar groups; a one-group panel still needs room for its title
    widths = [max(1.8, *(len(p["bars"]) for p in panels if p["section"] == key))
              for key in sections]
    fig, axes = plt.subplots(len(threads), len(sections), squeeze=False, sharey=True,
                             figsize=(max(7.0, 1.0 + 0.55 * sum(widths) + 0.4 * len(sections)),
                                      1.2 + 2.6 * len(threads)),
                             gridspec_kw=dict(width_ratios=widths))
    top = min(RATIO_CAP, 1.15 * max(r for p in panels for _, ratios in p["bars"]
                                    for r in ratios.values()))
    width = 0.8 / len(IMPLS)
    for i, n in enumerate(threads):
        for j, key in enumerate(sections):
            ax = axes[i][j]
            panel = next((p for p in panels if p["threads"] == n and p["section"] == key), None)
            if panel is None:
                ax.set_axis_off()
                continue
            for k, (impl, label, color) in enumerate(IMPLS):
                drawn = [(x, ratios[impl]) for x, (_, ratios) in enumerate(panel["bars"])
                         if impl in ratios]
                for x, r in drawn:
                    xpos = x + (k - (len(IMPLS) - 1) / 2) * width
                    ax.bar(xpos, min(r, top), width, color=color,
                           label=label if x == drawn[0][0] else None)
                    if impl != "torch":  # PyTorch's bars are 1 by construction
                        ax.text(xpos, min(r, top), f"{r:.2f}", ha="center", va="bottom",
                                fontsize=6, rotation=90)
            ax.axhline(1.0, color="0.3", linewidth=0.8, linestyle="--")
            ax.set_xticks(range(len(panel["bars"])))
            ax.set_xticklabels([label for label, _ in panel["bars"]], fontsize=7, rotation=30)
            ax.set_xlim(-0.6, len(panel["bars"]) - 0.4)
            ax.set_title(f"{panel['title']}, {n} thread{'s' if n > 1 else ''}", fontsize=8)
            ax.grid(True, axis="y", alpha=0.3)
            if j == 0:
                ax.set_ylabel("time / PyTorch's time", fontsize=8)
    axes[0][0].set_ylim(0, top * 1.12)  # shared by every panel
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    labels = [label for _, label, _ in IMPLS if label in handles]
    fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=len(labels),
               fontsize=8, frameon=False)
    meta = results.get("meta", {})
    fig.suptitle("fastrnn vs PyTorch vs ONNX Runtime: median time relative to PyTorch's "
                 "(below 1: faster than PyTorch)\n"
                 f"commit {meta.get('git') or 'unknown'}, {meta.get('date', '')[:10]}, "
                 f"{meta.get('cpu') or 'unknown CPU'}, {meta.get('cpu_count')} cores", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def figure_rst(png, page, results):
    """The ``figure`` directive that shows the chart ``png`` on the page ``page`` (a path
    relative to the page's folder, as Sphinx reads it)."""
    rel = Path(os.path.relpath(Path(png).resolve(), Path(page).resolve().parent)).as_posix()
    meta = results.get("meta", {})
    return "\n".join([
        f".. figure:: {rel}",
        f"   :target: {rel}",
        "   :alt: Bar chart of the time of fastrnn, PyTorch and ONNX Runtime relative to "
        "PyTorch, for every workload and thread count of the run below",
        "",
        "   Time of fastrnn's fastest backend and of ONNX Runtime relative to PyTorch's on the "
        "same workload and thread count (PyTorch = 1, dashed; lower is faster): medians of the "
        f"run whose tables are below (commit {meta.get('git') or 'unknown'}, "
        f"{meta.get('date', '')[:10]}).",
    ])
