"""Which recurrent cell, and which connection between stacked layers: a study on real and
synthetic tasks.

Cells: LSTM, GRU, MinGRU, MinLSTM and IndRNN (``--cells``). Parts (``--parts``, all by default):

``vowels``
    JapaneseVowels (:func:`fastrnn.datasets.load_japanese_vowels`) test accuracy of an
    ``RNNClassifier`` with its defaults and ``cell=...``, one fit per seed (``--seeds``, 3).
``lm``
    The Shakespeare character language model (:func:`fastrnn.datasets.shakespeare_splits`):
    an ``RNNLanguageModel(cell=..., hidden_size=--lm-hidden)`` trained for ``--lm-budget``
    seconds of wall-clock time (600; the same hidden size and budget for every cell), then its
    bits per character on the test texts.
``lag``
    The longest lag each cell learns within ``--task-budget`` seconds of training per fit (300;
    every fit trains for the whole budget: no early stopping, a constant learning rate),
    on two synthetic tasks (``--tasks``, both by default) at the lengths ``--lags`` (100, 1,000
    and 5,000 steps),
    unidirectional models of ``--task-hidden`` units (64), ``--task-samples`` training sequences:

    * the adding problem (:func:`fastrnn.datasets.make_adding_task`, ``T = lag``): an
      ``RNNRegressor`` (``pooling="last"``) *learns* when its test mean squared error is below
      0.1 of the variance of the test targets (the error of always predicting their mean);
    * the copy task (:func:`fastrnn.datasets.make_copy_task`, 10 symbols of 8 to remember,
      recalled ``lag`` steps after the last of them): an ``RNNTagger`` *learns* when more than
      0.9 of the recalled symbols of the test sequences are right.

``throughput``
    Training tokens per second of one layer (a forward and a backward, nothing else) at
    ``T`` in ``--lengths`` (100, 1,000 and 10,000), ``--batch`` sequences of ``--input``
    features, ``--hidden`` units (float32, the default backend), as a ratio to fastrnn's LSTM
    and, when PyTorch is importable, to ``torch.nn.LSTM`` of the same sizes (PyTorch's default
    threads). The median of ``--repeat`` steps after a warm-up step.
``skip``
    LSTM stacks of 2, 4 and 8 layers (``--depths``) without connections and with each of
    ``"residual"``, ``"dense"`` and ``"highway"``, on the character language model at a fixed
    budget (``--skip-budget`` seconds, ``--skip-hidden`` units per layer): test bits per
    character.

With the defaults the whole study takes about six hours of training (budgets add up: 5 cells
x 600 s of language model, 5 x 2 x 3 x 300 s of lag tasks, 12 x 300 s of stacks, plus the
JapaneseVowels fits and the throughput steps); run it on an otherwise idle machine.
``--quick`` shrinks every budget, corpus and size so that the whole study runs in well under a
minute (a check that it works, no result to read).

Usage::

    python benchmarks/cells_study.py [--quick] [--parts vowels lm lag throughput skip]
        [--cells lstm gru mingru minlstm indrnn] [--out results.json] [...]

Writes the results as JSON (``--out``, default ``benchmarks/.asv/cells_study.json``, which git
ignores) and prints them as markdown tables.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("lstm", "gru", "mingru", "minlstm", "indrnn")
PARTS = ("vowels", "lm", "lag", "throughput", "skip")
SKIPS = (None, "residual", "dense", "highway")

#: what "learns" means on the lag tasks (see the module docstring)
ADDING_THRESHOLD = 0.1  # test MSE below this fraction of the targets' variance
COPY_THRESHOLD = 0.9  # fraction of recalled symbols right
COPY_SYMBOLS = 10  # symbols to remember
COPY_ALPHABET = 8

#: ``--quick``: every budget and size, small
QUICK = dict(seeds=1, vowels_budget=1.0, lm_budget=1.0, lm_hidden=16, lm_chars=8000,
             lags=[8], task_budget=0.5, task_hidden=8, task_samples=48, lengths=[20, 50],
             batch=2, hidden=16, input=8, repeat=1, depths=[2], skip_budget=0.5, skip_hidden=8)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny budgets, corpora and sizes: checks that the study runs")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    ap.add_argument("--seeds", type=int, default=3, help="JapaneseVowels fits per cell")
    ap.add_argument("--vowels-budget", type=float, default=None,
                    help="seconds per JapaneseVowels fit (default: none, the classifier's own "
                         "stopping)")
    ap.add_argument("--lm-budget", type=float, default=600.0,
                    help="seconds of language-model training per cell")
    ap.add_argument("--lm-hidden", type=int, default=256)
    ap.add_argument("--lm-chars", type=int, default=None,
                    help="read only this many characters of each text (default: all)")
    ap.add_argument("--lags", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS),
                    help="the lag tasks to run")
    ap.add_argument("--task-budget", type=float, default=300.0,
                    help="seconds of training per lag-task fit")
    ap.add_argument("--task-hidden", type=int, default=64)
    ap.add_argument("--task-samples", type=int, default=1000,
                    help="training sequences of a lag task (a quarter as many test sequences)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[100, 1000, 10000],
                    help="sequence lengths of the throughput part")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--skip-budget", type=float, default=300.0,
                    help="seconds of language-model training per stack")
    ap.add_argument("--skip-hidden", type=int, default=128)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / ".asv" / "cells_study.json"))
    args = ap.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    return args


# ------------------------------------------------------------------ the parts
def run_vowels(args, log):
    from fastrnn import RNNClassifier
    from fastrnn.datasets import load_japanese_vowels

    Xtr, ytr = load_japanese_vowels("train")
    Xte, yte = load_japanese_vowels("test")
    if args.quick:
        Xtr, ytr = Xtr[::5], ytr[::5]
    out = {}
    for cell in args.cells:
        scores = []
        for seed in range(args.seeds):
            clf = RNNClassifier(cell=cell, random_state=seed, time_budget=args.vowels_budget)
            scores.append(float(clf.fit(Xtr, ytr).score(Xte, yte)))
        out[cell] = dict(accuracy=scores, mean=float(np.mean(scores)))
        log(f"vowels {cell}: {scores}")
    return out


def _shakespeare(args):
    from fastrnn.datasets import shakespeare_splits

    splits = shakespeare_splits()
    train, test = splits["train"], splits["test"]
    if args.lm_chars:
        train = [t[:args.lm_chars] for t in train[:3 if args.quick else None]]
        test = [t[:args.lm_chars // 4] for t in test]
    return train, test


def _lm_bits(texts, budget, hidden, log, **kwargs):
    """Train a character language model for ``budget`` seconds; its test bits per character
    and how far it got."""
    from fastrnn import RNNLanguageModel
    from fastrnn.train import TrainingDivergedError

    train, test = texts
    lm = RNNLanguageModel(hidden_size=hidden, time_budget=budget, max_iter=10_000,
                          random_state=0, ngram_order=None, **kwargs)  # the cells alone
    t0 = time.perf_counter()
    try:
        lm.fit(train)
    except TrainingDivergedError as exc:  # a result of the study, not a failure of the script
        log(f"lm {kwargs}: diverged: {exc}")
        return dict(test_bits_per_char=None, diverged=str(exc),
                    fit_seconds=time.perf_counter() - t0)
    res = dict(test_bits_per_char=float(lm.bits_per_token(test)), steps=int(lm.n_steps_),
               tokens_seen=int(lm.n_tokens_seen_), fit_seconds=time.perf_counter() - t0)
    log(f"lm {kwargs}: {res}")
    return res


def run_lm(args, log):
    texts = _shakespeare(args)
    return {cell: _lm_bits(texts, args.lm_budget, args.lm_hidden, log, cell=cell)
            for cell in args.cells}


def _whole_budget(args):
    """Fit options that train for the whole ``--task-budget``: both tasks sit on a plateau (the
    mean, the blank) for many epochs before they learn, and stopping on a plateau (or a schedule
    that anneals the learning rate over ``max_iter`` epochs) would end the fit there."""
    return dict(time_budget=args.task_budget, max_iter=100_000, early_stopping=False,
                n_iter_no_change=100_000, lr_schedule="constant")


def adding_result(cell, lag, args, seed=0):
    """Fit the adding problem at length ``lag``; the test MSE against the targets' variance."""
    from fastrnn import RNNRegressor
    from fastrnn.datasets import make_adding_task

    n = args.task_samples
    X, y = make_adding_task(n + n // 4, lag, random_state=seed)
    reg = RNNRegressor(cell=cell, hidden_size=args.task_hidden, pooling="last",
                       **_whole_budget(args), random_state=seed)
    reg.fit(X[:n], y[:n])
    yt = y[n:]
    mse = float(np.mean((reg.predict(X[n:]) - yt) ** 2))
    var = float(np.var(yt))
    return dict(mse=mse, variance=var, learned=bool(mse < ADDING_THRESHOLD * var))


def copy_result(cell, lag, args, seed=0):
    """Fit the copy task with the recall ``lag`` steps after the symbols; the fraction of the
    recalled symbols that the test sequences get right."""
    from fastrnn import RNNTagger
    from fastrnn.datasets import make_copy_task

    n = args.task_samples
    X, Y = make_copy_task(n + n // 4, COPY_SYMBOLS, COPY_ALPHABET, lag, random_state=seed)
    X = X + 1  # id 0 is padding to the estimators: the blanks become id 1
    tagger = RNNTagger(cell=cell, hidden_size=args.task_hidden, bidirectional=False,
                       **_whole_budget(args), random_state=seed)
    tagger.fit(X[:n], list(Y[:n]))
    pred = np.array(tagger.predict(X[n:]))
    recall = slice(-COPY_SYMBOLS, None)
    acc = float(np.mean(pred[:, recall] == Y[n:, recall]))
    return dict(accuracy=acc, learned=bool(acc > COPY_THRESHOLD))


def run_lag(args, log):
    out = {}
    for task in args.tasks:
        fn = TASKS[task]
        out[task] = {}
        for cell in args.cells:
            per_lag = {}
            for lag in args.lags:
                per_lag[str(lag)] = fn(cell, lag, args)
                log(f"{task} {cell} lag {lag}: {per_lag[str(lag)]}")
            learned = [int(k) for k, v in per_lag.items() if v["learned"]]
            out[task][cell] = dict(lags=per_lag, longest_learned=max(learned, default=None))
    return out


def _median_seconds(fn, repeat):
    times = []
    for i in range(repeat + 1):  # the first call warms up (compilation, allocation)
        t0 = time.perf_counter()
        fn()
        if i:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _torch_step(B, T, n_in, H, rng):
    """One training step of ``torch.nn.LSTM`` of the same sizes, or None without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    lstm = torch.nn.LSTM(n_in, H, batch_first=True)
    X = torch.from_numpy(rng.randn(B, T, n_in).astype(np.float32))
    dY = torch.from_numpy(rng.randn(B, T, H).astype(np.float32))

    def step():
        lstm.zero_grad()
        Y, _ = lstm(X)
        Y.backward(dY)

    return step


def run_throughput(args, log):
    from fastrnn.nn import GRU, LSTM, IndRNN, MinGRU, MinLSTM

    classes = dict(lstm=LSTM, gru=GRU, mingru=MinGRU, minlstm=MinLSTM, indrnn=IndRNN)
    rng = np.random.RandomState(0)
    B, n_in, H = args.batch, args.input, args.hidden
    out = {}
    for T in args.lengths:
        X = rng.randn(B, T, n_in).astype(np.float32)
        dY = rng.randn(B, T, H).astype(np.float32)
        rates = {}
        for cell in sorted(set(args.cells) | {"lstm"}):
            layer = classes[cell](n_in, H, random_state=0)

            def step(layer=layer):
                layer.forward(X)
                layer.backward(dY)

            rates[cell] = B * T / _median_seconds(step, args.repeat)
        torch_step = _torch_step(B, T, n_in, H, rng)
        torch_rate = (None if torch_step is None
                      else B * T / _median_seconds(torch_step, args.repeat))
        out[str(T)] = {cell: dict(tokens_per_s=rates[cell],
                                  ratio_to_lstm=rates[cell] / rates["lstm"],
                                  ratio_to_torch_lstm=(None if torch_rate is None
                                                       else rates[cell] / torch_rate))
                       for cell in args.cells}
        out[str(T)]["lstm_tokens_per_s"] = rates["lstm"]
        out[str(T)]["torch_lstm_tokens_per_s"] = torch_rate
        log(f"throughput T={T}: {out[str(T)]}")
    return out


def run_skip(args, log):
    texts = _shakespeare(args)
    out = {}
    for depth in args.depths:
        out[str(depth)] = {str(skip): _lm_bits(texts, args.skip_budget, args.skip_hidden, log,
                                               cell="lstm", num_layers=depth, skip=skip)
                           for skip in SKIPS}
    return out


TASKS = dict(adding=adding_result, copy=copy_result)
RUNNERS = dict(vowels=run_vowels, lm=run_lm, lag=run_lag, throughput=run_throughput,
               skip=run_skip)


# ------------------------------------------------------------------ report
def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def markdown(results):
    """The results as markdown tables (one per part that ran)."""
    lines = []
    cells = results["config"]["cells"]
    if "vowels" in results:
        lines += ["JapaneseVowels test accuracy (RNNClassifier defaults, one fit per seed)", "",
                  "| cell | mean | per seed |", "|---|---|---|"]
        for cell, r in results["vowels"].items():
            lines.append(f"| {cell} | {r['mean']:.3f} | "
                         + ", ".join(f"{a:.3f}" for a in r["accuracy"]) + " |")
        lines.append("")
    if "lm" in results:
        lines += ["Shakespeare characters: test bits per character after the budget", "",
                  "| cell | bits/char | steps | tokens seen |", "|---|---|---|---|"]
        for cell, r in results["lm"].items():
            if r.get("diverged"):
                lines.append(f"| {cell} | diverged | - | - |")
                continue
            lines.append(f"| {cell} | {r['test_bits_per_char']:.3f} | {r['steps']} | "
                         f"{r['tokens_seen']:,} |")
        lines.append("")
    if "lag" in results:
        lags = results["config"]["lags"]
        for task, what, key in (("adding", "MSE / variance", "mse"),
                                ("copy", "recall accuracy", "accuracy")):
            if task not in results["lag"]:
                continue
            lines += [f"{task}: {what} at each lag (* learned); longest lag learned", "",
                      "| cell | " + " | ".join(str(x) for x in lags) + " | longest |",
                      "|---|" + "---|" * (len(lags) + 1)]
            for cell, r in results["lag"][task].items():
                vals = []
                for x in lags:
                    v = r["lags"][str(x)]
                    num = v["mse"] / v["variance"] if key == "mse" else v["accuracy"]
                    vals.append(f"{num:.3f}{'*' if v['learned'] else ''}")
                lines.append(f"| {cell} | " + " | ".join(vals)
                             + f" | {_fmt(r['longest_learned'], 'd')} |")
            lines.append("")
    if "throughput" in results:
        lens = list(results["throughput"])
        lines += ["Training tokens/s (ratio to fastrnn's LSTM; to torch.nn.LSTM)", "",
                  "| cell | " + " | ".join(f"T={T}" for T in lens) + " |",
                  "|---|" + "---|" * len(lens)]
        for cell in cells:
            vals = []
            for T in lens:
                r = results["throughput"][T][cell]
                vals.append(f"{r['tokens_per_s']:,.0f} ({r['ratio_to_lstm']:.2f}; "
                            f"{_fmt(r['ratio_to_torch_lstm'], '.2f')})")
            lines.append(f"| {cell} | " + " | ".join(vals) + " |")
        lines.append("")
    if "skip" in results:
        lines += ["LSTM stacks on Shakespeare characters: test bits per character", "",
                  "| layers | " + " | ".join(str(s) for s in SKIPS) + " |",
                  "|---|" + "---|" * len(SKIPS)]
        for depth, r in results["skip"].items():
            lines.append(f"| {depth} | " + " | ".join(
                _fmt(r[str(s)]['test_bits_per_char'], ".3f") for s in SKIPS) + " |")
        lines.append("")
    return "\n".join(lines)


def _commit():
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001 - no git
        return None


def main(argv=None):
    import fastrnn

    args = parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    results = dict(config=dict(vars(args)), machine=dict(
        python=platform.python_version(), platform=platform.platform(),
        cpus=os.cpu_count(), threads=fastrnn.num_threads(), fastrnn=fastrnn.__version__,
        commit=_commit()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        if part in args.parts:
            t0 = time.perf_counter()
            results[part] = RUNNERS[part](args, log)
            log(f"{part}: {time.perf_counter() - t0:.1f} s")
            # after each part (the study takes hours): a later failure keeps what is done
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            os.replace(tmp, out)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
