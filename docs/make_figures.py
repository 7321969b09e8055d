"""Make the figures and the table of the gallery (docs/gallery.rst) with fastrnn.diagnostics.

Run with ``make docs-figures`` (or ``python docs/make_figures.py`` with matplotlib installed, the
``plot`` extra). It writes small PNGs into docs/_static/ and the memory-length table into
docs/gallery.rst, between its ``.. memory-table-start`` and ``.. memory-table-end`` comments. Every
number comes from this run (seeds fixed); it takes a few minutes on two cores:

* ``gallery_gradient_flow.png``: an RNN and an LSTM regressor, trained alike on the adding
  problem over 40 steps, and their gradient flow on held-out sequences;
* ``gallery_gates.png``: the gate statistics of that LSTM;
* the memory length of each cell (:func:`fastrnn.diagnostics.memory_length` with its defaults);
* ``gallery_demo_history.png``: the training curves of the demo (``examples/demo.py``: an
  RNNClassifier with its defaults on JapaneseVowels), when its data can be fetched.

Options: ``--skip-memory`` leaves the table as it is; ``--skip-demo`` the demo's figure.
"""

import argparse
import os
import re
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's fastrnn, installed or not

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fastrnn.datasets import make_adding_task  # noqa: E402
from fastrnn.diagnostics import (gate_statistics, gradient_flow, memory_length,  # noqa: E402
                                 plot_gate_statistics, plot_gradient_flow, plot_history)
from fastrnn.estimators import RNNRegressor  # noqa: E402

STATIC = os.path.join(HERE, "_static")
GALLERY = os.path.join(HERE, "gallery.rst")
DPI = 80
LAG = 40


def _save(fig, name):
    path = os.path.join(STATIC, name)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path) // 1024} KiB)")


def gradient_flow_figure():
    """RNN against LSTM on the adding problem: the same data, budget and settings."""
    X, y = make_adding_task(512 + 64, LAG, random_state=0)
    flows, models = {}, {}
    for cell in ("rnn", "lstm"):
        model = RNNRegressor(cell=cell, hidden_size=32, pooling="last", learning_rate=1e-2,
                             max_iter=30, n_iter_no_change=30, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X[:512], y[:512])
        r2 = model.score(X[512:], y[512:])
        print(f"{cell}: held-out R^2 on the adding problem over {LAG} steps: {r2:.3f}")
        flows[f"{cell.upper()} (R² {r2:.2f})"] = gradient_flow(model, X[512:], y[512:])
        models[cell] = model
    axes = plot_gradient_flow(flows)
    fig = axes[0].figure
    fig.set_size_inches(9, 3.4)
    fig.suptitle(f"adding problem over {LAG} steps, 32 units, 30 epochs", fontsize="medium")
    _save(fig, "gallery_gradient_flow.png")
    stats = gate_statistics(models["lstm"], X[512:])
    print(stats.to_text())
    print("time constants of the LSTM's units:", np.sort(stats.unit_time_constant.ravel()))
    ax = plot_gate_statistics(stats)
    ax.figure.set_size_inches(5, 3.2)
    _save(ax.figure, "gallery_gates.png")


#: the cells of the memory-length table, and their names there
CELL_ORDER = ("rnn", "lstm", "gru", "mingru", "minlstm", "indrnn")
CELL_NAMES = dict(rnn="RNN", lstm="LSTM", gru="GRU", mingru="minGRU", minlstm="minLSTM",
                  indrnn="IndRNN")


def memory_table():
    """Run memory_length with its defaults for every cell; the rst table of the results."""
    results = {}
    for cell in CELL_ORDER:
        res = memory_length(cell, stop_at_failure=False)
        print(res.to_text())
        results[cell] = res
    lags = results["rnn"].lags
    rows = [["cell"] + [f"lag {v}" for v in lags] + ["memory length"]]
    for cell, res in results.items():
        rows.append([CELL_NAMES[cell]] + [f"{s:.3f}" + ("" if ok else " ✗")
                                      for s, ok in zip(res.scores, res.solved)]
                    + [str(res.memory_length)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule = "  ".join("=" * w for w in widths)
    lines = [rule, "  ".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip(), rule]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows[1:]]
    lines.append(rule)
    return "\n".join(lines)


def write_table(table):
    with open(GALLERY, encoding="utf-8") as f:
        text = f.read()
    pattern = re.compile(r"(\.\. memory-table-start\n\n).*?(\n\n\.\. memory-table-end)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{GALLERY} has no '.. memory-table-start' / '.. memory-table-end' pair")
    text = pattern.sub(lambda m: m.group(1) + table + m.group(2), text)
    with open(GALLERY, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote the memory-length table into {os.path.relpath(GALLERY)}")


def demo_figure():
    from fastrnn import RNNClassifier
    from fastrnn.datasets import DatasetUnavailableError, load_japanese_vowels

    try:
        X, y = load_japanese_vowels("train")
    except DatasetUnavailableError as exc:
        print(f"skipped the demo's figure: {exc}")
        return
    clf = RNNClassifier(random_state=0).fit(X, y)  # examples/demo.py with seed 0
    axes = plot_history(clf)
    fig = axes[0].figure
    fig.set_size_inches(10, 3.0)
    fig.suptitle("examples/demo.py: RNNClassifier() on JapaneseVowels", fontsize="medium")
    _save(fig, "gallery_demo_history.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-memory", action="store_true", help="keep the table as it is")
    parser.add_argument("--skip-demo", action="store_true", help="no demo figure")
    args = parser.parse_args(argv)
    gradient_flow_figure()
    if not args.skip_demo:
        demo_figure()
    if not args.skip_memory:
        write_table(memory_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
