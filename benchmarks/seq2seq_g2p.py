#!/usr/bin/env python
"""Grapheme-to-phoneme conversion on CMUdict with the default :class:`fastrnn.RNNSeq2Seq`.

The model reads a word's letters and writes its phonemes (39 ARPAbet symbols, stress removed).
It trains on the 90 % training split of :func:`fastrnn.datasets.load_cmudict` under a time
budget (``--time-budget``, default 19 minutes, so that the run fits in 20 on two cores), with
the 5 % validation split as ``validation_data`` (early stopping keeps the best epoch), and is
evaluated on the 5 % test split:

* word error rate (WER): the share of words whose predicted pronunciation is not exactly the
  dictionary's;
* phoneme error rate (PER): the edit distance (insertions, deletions, substitutions) between the
  predicted and the dictionary's phonemes, summed over the words, divided by the total number of
  the dictionary's phonemes;

for greedy decoding and for a beam search (``--beam``, default 5), with the training time, the
epochs run and the decoding times. Published LSTM encoder-decoders on CMUdict reach about 22-25 %
WER and 5.5 % PER (Yao & Zweig 2015, "Sequence-to-sequence neural net models for
grapheme-to-phoneme conversion", Interspeech; Rao et al. 2015, "Grapheme-to-phoneme conversion
using long short-term memory recurrent neural networks", ICASSP), after much longer training.

The model is ``RNNSeq2Seq(max_iter=100, time_budget=..., random_state=0)``, every other setting
its default, which this benchmark's small runs chose: a bidirectional one-layer LSTM encoder of
128 units per direction, an LSTM decoder of 128 units started through the bridge, Luong's
"general" attention, token vectors of the automatic size (11 for the 33 character ids, 13 for
the 41 outputs: 39 phonemes, ``<bos>`` and ``<eos>``), dropout 0.1, Adam at 5e-3 with a cosine decay over the time
budget, and batches of 128 words (``batch_size="auto"`` on large data). On the two shared cores
of the development machine (other jobs running), 30,000 training words, batches of 64 and five
epochs (4 minutes) gave 50 % WER and 13.8 % PER on 1,000 test words; all the training words,
batches of 128 and a 10-minute budget (5 epochs) gave 35.0 % WER and 8.7 % PER: the error keeps
falling with more data and more epochs, so the defaults spend the budget on epochs of the whole
split rather than on a larger network.

The full run with these defaults (19-minute budget, load average 7 to 9 from other jobs on the two
cores) trained 13 epochs and reached 30.3 % WER / 7.18 % PER greedy, 30.0 % / 7.11 % with a beam
of 5, on the 6,302 test words. The same run with ``hidden_size=192`` trained 8 epochs in the
budget and reached 30.2 % / 7.14 % greedy and 30.0 % / 7.08 % with the beam, no better, with
decoding three times slower: the default stays at 128.

The thread counts (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``NUMBA_NUM_THREADS``) are set to ``--threads`` (default 2) before numpy is imported.

Output: a printed summary and a JSON file (``--json``, default
``benchmarks/.asv/seq2seq_g2p.json``, which git ignores). ``--n-train`` trains on the first
words of the training split only (a shortened run), ``--smoke`` on 300 words for a few seconds.

    python benchmarks/seq2seq_g2p.py
    python benchmarks/seq2seq_g2p.py --time-budget 300 --n-train 30000
"""

import argparse
import os
import sys
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
DEFAULT_JSON = Path(__file__).resolve().parent / ".asv" / "seq2seq_g2p.json"


def edit_distance(a, b):
    """Levenshtein distance between the sequences ``a`` and ``b`` (unit costs)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diag, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (x != y))
    return row[-1]


def error_rates(pred, true):
    """``(WER, PER)`` of predicted phoneme sequences against the reference ones."""
    wrong = sum(list(p) != list(t) for p, t in zip(pred, true))
    edits = sum(edit_distance(p, t) for p, t in zip(pred, true))
    return wrong / len(true), edits / sum(len(t) for t in true)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-budget", type=float, default=1140.0, metavar="SECONDS",
                    help="training time budget (default 1140)")
    ap.add_argument("--max-iter", type=int, default=100, help="most epochs (default 100)")
    ap.add_argument("--beam", type=int, default=5, help="beam width (default 5)")
    ap.add_argument("--n-train", type=int, default=None, help="first words of the training split")
    ap.add_argument("--n-test", type=int, default=None, help="first words of the test split")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="300 words, 2 epochs")
    ap.add_argument("--json", default=str(DEFAULT_JSON), help=f"default {DEFAULT_JSON}")
    args = ap.parse_args(argv)
    if args.smoke:
        args.n_train, args.n_test, args.max_iter = 300, 50, 2
    return args


def run(args):
    import json
    import platform
    import time


    from fastrnn import RNNSeq2Seq, SequenceVectorizer
    from fastrnn.datasets import load_cmudict

    (train_w, train_p), (val_w, val_p), (test_w, test_p) = load_cmudict()
    train_w, train_p = train_w[:args.n_train], train_p[:args.n_train]
    test_w, test_p = test_w[:args.n_test], test_p[:args.n_test]
    if args.smoke:
        val_w, val_p = val_w[:50], val_p[:50]
    vectorizer = SequenceVectorizer(analyzer="char", lowercase=False).fit(train_w)
    model = RNNSeq2Seq(max_iter=args.max_iter, time_budget=args.time_budget,
                       random_state=args.seed)
    start = time.perf_counter()
    model.fit(vectorizer.transform(train_w), train_p,
              validation_data=(vectorizer.transform(val_w), val_p))
    train_seconds = time.perf_counter() - start
    X_test = vectorizer.transform(test_w)
    result = dict(
        n_train=len(train_w), n_validation=len(val_w), n_test=len(test_w),
        params={k: v for k, v in model.get_params().items() if k != "callbacks"},
        train_seconds=train_seconds, epochs=model.n_iter_, stop_reason=model.stop_reason_,
        validation_scores=model.validation_scores_, threads=args.threads,
        machine=platform.platform(), python=platform.python_version(), decoding={})
    for width in sorted({1, args.beam}):
        start = time.perf_counter()
        pred = model.predict(X_test, beam_width=width)
        seconds = time.perf_counter() - start
        wer, per = error_rates(pred, test_p)
        result["decoding"][f"beam_{width}"] = dict(beam_width=width, wer=wer, per=per,
                                                   seconds=seconds)
    print(f"RNNSeq2Seq on CMUdict: {len(train_w)} training words, {model.n_iter_} epochs in "
          f"{train_seconds:.0f} s ({model.stop_reason_}); {len(test_w)} test words")
    for name, r in result["decoding"].items():
        print(f"  {'greedy' if r['beam_width'] == 1 else name:>8}: WER {100 * r['wer']:.1f} %  "
              f"PER {100 * r['per']:.2f} %  ({r['seconds']:.1f} s)")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str))
    print(f"written to {path}")
    return result


def main(argv=None):
    args = parse_args(argv)
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    return run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
