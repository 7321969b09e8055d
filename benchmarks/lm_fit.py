#!/usr/bin/env python
"""``RNNLanguageModel.fit`` against a plain PyTorch training loop of the same model and data.

The character language model of ``benchmarks/compare.py`` (embedding 64, one LSTM layer of 256
units, 32 streams, truncated back-propagation over 64 steps, Adam at 2e-3, clipping at 5, no
dropout), trained for one epoch over the first ``--chars`` characters of the Shakespeare training
texts (:func:`fastrnn.datasets.shakespeare_splits`):

* ``fastrnn``: ``RNNLanguageModel(...).fit(texts)`` through the public estimator, float32, and
  ``precision="bf16"`` (``fastrnn-bf16``);
* ``torch``: the loop a PyTorch user writes: the characters as ids, cut into 32 streams,
  ``nn.Embedding`` -> ``nn.LSTM`` -> ``nn.Linear``, cross-entropy, ``clip_grad_norm_``,
  ``optim.Adam``, the state carried from chunk to chunk.

Each figure is characters per second of the whole call: the estimator's ``fit`` (vocabulary,
encoding, batching, training) over the characters it trained on (``n_tokens_seen_``); the loop
(ids, tensors, training) over the characters it trained on. Before anything is timed, each runs
once on a small slice (compilation, allocators); then the three run in turn, ``--repeats``
times, and the median counts. Each thread count runs in a fresh process whose environment sets
the thread count of every library (``_compare.harness.run_script``; and
``torch.set_num_threads``) before anything is imported. Usage::

    python benchmarks/lm_fit.py [--threads 1 2] [--chars 1000000] [--repeats 3] [--json OUT]
"""

import argparse
import functools
import json
import math
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the package _compare next to this script

from _compare.harness import run_script  # noqa: E402

MODEL = dict(embedding_dim=64, hidden_size=256, batch_size=32, bptt=64, learning_rate=2e-3,
             clip_norm=5.0)


def corpus(n_chars):
    """The Shakespeare training texts in order, the last one cut so that they hold ``n_chars``."""
    from fastrnn.datasets import shakespeare_splits

    texts, total = [], 0
    for text in shakespeare_splits()["train"]:
        texts.append(text[:n_chars - total])
        total += len(texts[-1])
        if total >= n_chars:
            break
    return texts


def fastrnn_fit(texts, precision="float32", seed=0):
    """One epoch of the estimator; ``(characters per second, training bits per character)``."""
    from fastrnn import RNNLanguageModel

    # the network alone (no n-gram part), as in the PyTorch loop
    lm = RNNLanguageModel(level="char", dropout=0.0, max_iter=1, precision=precision,
                          random_state=seed, ngram_order=None, **MODEL)
    t0 = time.perf_counter()
    lm.fit(texts)
    seconds = time.perf_counter() - t0
    return lm.n_tokens_seen_ / seconds, float(lm.history_[-1]["train_bits"])


def torch_fit(texts, seed=0):
    """One epoch of a plain PyTorch loop; ``(characters per second, training bits per character)``
    (the mean over the epoch, as the estimator reports it)."""
    import numpy as np
    import torch

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    text = "\n".join(texts)
    chars, ids = np.unique(np.frombuffer(text.encode("utf-32-le"), np.uint32), return_inverse=True)
    B, T, E, H, V = MODEL["batch_size"], MODEL["bptt"], MODEL["embedding_dim"], \
        MODEL["hidden_size"], len(chars)
    n = (len(ids) - 1) // B
    x_all = torch.from_numpy(ids[:n * B].reshape(B, n).astype(np.int64))
    y_all = torch.from_numpy(ids[1:n * B + 1].reshape(B, n).astype(np.int64))
    emb, lstm, head = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, batch_first=True), \
        torch.nn.Linear(H, V)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=MODEL["learning_rate"])
    state, total, seen = None, 0.0, 0
    for i in range(0, n, T):
        x, y = x_all[:, i:i + T], y_all[:, i:i + T]
        opt.zero_grad(set_to_none=True)
        out, (h, c) = lstm(emb(x), state)
        loss = torch.nn.functional.cross_entropy(head(out).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MODEL["clip_norm"])
        opt.step()
        state = (h.detach(), c.detach())
        seen += x.numel()
        total += float(loss.detach()) * x.numel()
    return seen / (time.perf_counter() - t0), total / seen / math.log(2)


def worker(threads, n_chars, repeats):
    """Runs in a process of its own (``threads`` set before the imports)."""
    import torch

    torch.set_num_threads(threads)
    texts, small = corpus(n_chars), corpus(20_000)
    runs = {"fastrnn": fastrnn_fit,
            "fastrnn-bf16": functools.partial(fastrnn_fit, precision="bf16"), "torch": torch_fit}
    for fn in runs.values():  # warm-up: compilation, allocators
        fn(small)
    rates = {name: [] for name in runs}
    bits = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            rate, bits[name] = fn(texts)
            rates[name].append(rate)
    med = {name: statistics.median(r) for name, r in rates.items()}
    return dict(threads=threads, chars=sum(map(len, texts)), chars_per_s=med, runs=rates,
                train_bits=bits,
                ratio_to_torch={name: med[name] / med["torch"] for name in med if name != "torch"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chars", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, metavar="OUT")
    ap.add_argument("--_worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker is not None:  # run_script names the file of the result with --json
        with open(args.json, "w") as f:
            json.dump(worker(args._worker, args.chars, args.repeats), f)
        return None
    rows = []
    for n in args.threads:
        r = run_script(Path(__file__).resolve(), ["--_worker", str(n), "--chars", str(args.chars),
                                                  "--repeats", str(args.repeats)], n)
        rows.append(r)
        print(f"{n} thread(s), {r['chars']:,} characters: " + ", ".join(
            f"{k} {v:,.0f} chars/s" for k, v in r["chars_per_s"].items())
            + " | ratio to torch: " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["ratio_to_torch"].items())
            + " | training bits/char: " + ", ".join(
            f"{k} {v:.3f}" for k, v in r["train_bits"].items()),
            flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
