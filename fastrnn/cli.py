"""The ``fastrnn`` command line: train, evaluate and sample recurrent language models.

::

    fastrnn train-lm [CORPUS ...] --level char --hidden-size 256 --epochs 10 --out model.fastrnn
    fastrnn generate MODEL --prompt "ROMEO." --temperature 0.8 --top-k 20
    fastrnn evaluate MODEL [CORPUS ...]
    fastrnn info MODEL
    fastrnn plot MODEL --out curves.png
    fastrnn diagnose MODEL DATA [--out diagnostics.png]
    fastrnn bench

Without a corpus, ``train-lm`` and ``evaluate`` use Shakespeare's complete works
(:func:`fastrnn.datasets.shakespeare_splits`: Hamlet for validation, Macbeth and The Tempest for the
test). Errors a user can fix (a missing file, an empty corpus, a corrupt model file) print one
line on stderr and exit with status 2.
"""

import argparse
import math
import os
import sys
import time

__all__ = ["main"]

PROG = "fastrnn"


class CLIError(Exception):
    """An error the user can fix: printed as one line, exit status 2."""


# ------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

#: control bytes that text does not hold (all of C0 and DEL except tab, line feed, vertical tab,
#: form feed, carriage return and escape)
_BINARY_BYTES = bytes(sorted(set(range(32)) - {9, 10, 11, 12, 13, 27} | {127}))

#: share of such bytes above which a file is binary: random or compressed data has about 10 %
BINARY_SHARE = 0.05


def _refuse_binary(data, path):
    """Raise :class:`CLIError` for a file that is not text: one holding NUL bytes, or more than
    :data:`BINARY_SHARE` of other control bytes. Not being valid UTF-8 is no sign of binary data:
    text in an 8-bit encoding (latin-1, cp1251, ...) is mostly invalid UTF-8, and is read as
    latin-1."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise CLIError(f"corpus file {path!r} is binary, not text: it holds NUL bytes (the first "
                       f"at byte {nul}). Pass a text file (a UTF-16 text holds NUL bytes too: "
                       "convert it to UTF-8).")
    share = (len(data) - len(data.translate(None, _BINARY_BYTES))) / max(len(data), 1)
    if share > BINARY_SHARE:
        raise CLIError(f"corpus file {path!r} is binary, not text: {share:.0%} of its bytes are "
                       "control characters. Pass a text file.")


def _read_text(path):
    from .datasets._text import decode_text

    if not os.path.exists(path):
        raise CLIError(f"corpus file {path!r} does not exist; check the path.")
    if os.path.isdir(path):
        raise CLIError(f"corpus {path!r} is a directory; pass the text files in it.")
    with open(path, "rb") as f:
        data = f.read()
    _refuse_binary(data, path)
    return decode_text(data)


def _read_corpus(paths, what="corpus"):
    docs = [_read_text(p) for p in paths]
    empty = [p for p, d in zip(paths, docs) if not d.strip()]
    if empty:
        raise CLIError(f"{what} file {empty[0]!r} is empty; pass a file with text in it.")
    return docs


def _shakespeare():
    from .datasets import DatasetError, shakespeare_splits

    try:
        return shakespeare_splits()
    except DatasetError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc


def _split_tail(docs, fraction):
    """Hold out the last ``fraction`` of every document (cut at a line break when there is one)."""
    train, val = [], []
    for d in docs:
        cut = int(len(d) * (1.0 - fraction))
        nl = d.rfind("\n", 0, cut)
        if nl > len(d) * (1.0 - 2 * fraction):
            cut = nl + 1
        if 0 < cut < len(d) and d[cut:].strip():
            train.append(d[:cut])
            val.append(d[cut:])
        else:
            train.append(d)
    return train, val


def _load_lm(path):
    """Load a language model file, with one-line errors for the usual problems."""
    from ._persist import read_model

    if not os.path.exists(path):
        raise CLIError(f"model file {path!r} does not exist; check the path or train one with "
                       "'fastrnn train-lm --out PATH'.")
    try:
        meta, arrays = read_model(path)
    except (ValueError, OSError) as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    if meta.get("class") != "RNNLanguageModel":
        raise CLIError(f"{path!r} holds a {meta.get('class')}, not a language model; pass a file "
                       "written by 'fastrnn train-lm' or RNNLanguageModel.save.")
    from ._persist import rebuild
    from .estimators.language_model import RNNLanguageModel

    try:
        return rebuild(RNNLanguageModel, meta, arrays, path)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc


def _level_name(model):
    return model.level if isinstance(model.level, str) else "custom"


def _unit(model):
    return "character" if model.level == "char" and model.input_type_ == "text" else "token"


# ------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------

def _check_outputs(*named_paths):
    """Refuse output paths that cannot be written (a directory, a parent that is a file, ...)
    before any training."""
    from ._persist import check_destination

    for option, path in named_paths:
        try:
            check_destination(path)
        except OSError as exc:
            raise CLIError(f"{option}: {exc}") from exc


def _file_id(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def _ngram_order(text):
    """``--ngram-order``: a positive integer, ``auto`` or ``none``."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, 'auto' or 'none', got {text!r}") from None


def cmd_train_lm(args):
    from .estimators.language_model import RNNLanguageModel, perplexity_of

    checkpoint = args.checkpoint or args.out + ".ckpt"
    _check_outputs(("--out", args.out), ("--checkpoint", checkpoint))
    test_docs = None
    if args.corpus:
        docs = _read_corpus(args.corpus)
        if args.validation:
            val_docs = _read_corpus(args.validation, "validation")
        elif args.validation_fraction > 0:
            docs, val_docs = _split_tail(docs, args.validation_fraction)
        else:
            val_docs = None
        source = ", ".join(args.corpus)
    else:
        splits = _shakespeare()
        docs, val_docs, test_docs = splits["train"], splits["validation"], splits["test"]
        if args.validation:
            val_docs = _read_corpus(args.validation, "validation")
        source = "Shakespeare (39 texts; validation: hamlet; test: macbeth, tempest)"
    if not val_docs:
        val_docs = None
    if os.path.exists(args.out) and not (args.force or args.resume):
        raise CLIError(f"{args.out!r} exists; pass --force to overwrite it, --resume to continue "
                       "its run, or another --out.")
    model = RNNLanguageModel(
        level=args.level, max_vocab=args.max_vocab, min_count=args.min_count, cell=args.cell,
        embedding_dim=args.embedding_dim, hidden_size=args.hidden_size, num_layers=args.num_layers,
        dropout=args.dropout, recurrent_dropout=args.recurrent_dropout,
        tie_weights=args.tie_weights, bptt=args.bptt, batch_size=args.batch_size,
        optimizer=args.optimizer, learning_rate=args.learning_rate,
        clip_norm=None if args.clip_norm <= 0 else args.clip_norm, lr_decay=args.lr_decay,
        lr_patience=args.lr_patience, lr_schedule=args.lr_schedule,
        min_learning_rate=args.min_learning_rate, anneal_fraction=args.anneal_fraction,
        early_stopping=args.early_stopping,
        n_iter_no_change=args.patience, max_iter=args.epochs, eval_interval=args.eval_interval,
        time_budget=args.time_budget, checkpoint_path=checkpoint, random_state=args.seed,
        verbose=0 if args.quiet else 1, skip=None if args.skip == "none" else args.skip,
        # the n-gram part is weighed on the validation text: without one, the network alone
        ngram_order=None if val_docs is None else args.ngram_order)
    n_chars = sum(len(d) for d in docs)
    if not args.quiet:
        print(f"training a {args.level}-level {args.cell.upper()} language model on {source}: "
              f"{len(docs)} documents, {n_chars:,} characters", flush=True)
    t0 = time.perf_counter()
    checkpoint_before = _file_id(checkpoint)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=_interrupted_warning())
            model.fit(docs, validation_texts=val_docs, resume=args.resume)
    except (ValueError, FloatingPointError) as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    seconds = time.perf_counter() - t0
    model.save(args.out)
    if model.stop_reason_ == "interrupted":
        # a checkpoint of this run: written during it, or the one it resumed from
        after = _file_id(checkpoint)
        resumable = after is not None and (after != checkpoint_before or args.resume)
        print(f"{PROG}: training interrupted after {model.n_steps_} steps; the model trained so "
              f"far is saved to {args.out}", file=sys.stderr)
        print(f"{PROG}: " + (f"resume the run with the same command and --resume (checkpoint "
                             f"{checkpoint})" if resumable else
                             "no checkpoint was written, so the run cannot be resumed"),
              file=sys.stderr)
        return 130
    rate = model.n_tokens_seen_ / max(model.training_time_, 1e-9)
    unit = _unit(model)
    print(f"stopped: {model.stop_reason_} after {model.n_steps_} steps, {model.n_tokens_seen_:,} "
          f"tokens, {seconds:.0f} s ({rate:,.0f} tokens/s)")
    if model.best_validation_bits_per_token_ is not None:
        print(f"best validation: {model.best_validation_bits_per_token_:.4f} bits per {unit}"
              + (f" (the network); with the {model.ngram_.order}-gram part (weight "
                 f"{model.ngram_weight_:.3f}): {model.bits_per_token(val_docs):.4f}"
                 if model.ngram_ is not None else ""))
    if test_docs is not None and not args.no_test:
        bits = model.bits_per_token(test_docs)
        print(f"test (macbeth + tempest): {bits:.4f} bits per {unit}, perplexity "
              f"{perplexity_of(bits * math.log(2)):.3f}")
    print(f"saved the model to {args.out} (checkpoint: {checkpoint})")
    return 0


def _interrupted_warning():
    from .estimators.language_model import TrainingInterrupted

    return TrainingInterrupted


def cmd_generate(args):
    model = _load_lm(args.model)
    prompt = args.prompt
    if prompt is None:
        prompt = ""
    if model.input_type_ == "tokens":
        prompt = prompt.split()
    try:
        for i in range(args.num_samples):
            seed = None if args.seed is None else args.seed + i
            text = model.generate(prompt, max_length=args.max_length, temperature=args.temperature,
                                  top_k=args.top_k, top_p=args.top_p, greedy=args.greedy,
                                  random_state=seed)
            if isinstance(text, list):
                text = " ".join(text)
            sep = "" if model._separator == "" or not args.prompt else " "
            if args.num_samples > 1:
                print(f"--- sample {i + 1}")
            print((args.prompt or "") + (sep if text else "") + text)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    return 0


def cmd_evaluate(args):
    from .estimators.language_model import perplexity_of

    model = _load_lm(args.model)
    if args.corpus:
        docs = _read_corpus(args.corpus)
        name = ", ".join(args.corpus)
    else:
        docs = _shakespeare()["test"]
        name = "Shakespeare test (macbeth + tempest)"
    if model.input_type_ == "tokens":
        docs = [d.split() for d in docs]
    try:
        t0 = time.perf_counter()
        nll = model._mean_nll(docs)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    unit = _unit(model)
    print(f"corpus: {name}")
    print(f"perplexity: {perplexity_of(nll):.4f}")
    print(f"bits per {unit}: {nll / math.log(2):.4f}")
    print(f"mean log-likelihood per {unit}: {-nll:.4f} nats ({time.perf_counter() - t0:.1f} s)")
    return 0


def _system_info():
    """Versions, backends, threads and CPU of this installation (``fastrnn info`` without a
    model)."""
    import platform

    from ._version import __version__
    from ._backend import show_backends
    from ._config import num_threads

    print(f"fastrnn {__version__} (python {platform.python_version()}, {platform.machine()})")
    for name in ("numpy", "scipy", "numba", "sklearn", "threadpoolctl", "Cython", "torch",
                 "onnxruntime"):
        try:
            from importlib.metadata import version

            dist = {"sklearn": "scikit-learn"}.get(name, name)
            print(f"  {name:14s} {version(dist)}")
        except Exception:  # noqa: BLE001 - absent or broken: say so
            print(f"  {name:14s} not installed")
    print("backends:")
    show_backends()
    print("threads:")
    print(f"  kernel threads (fastrnn.set_num_threads, FASTRNN_NUM_THREADS): {num_threads()}")
    for var in ("FASTRNN_BACKEND", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS", "OPENBLAS_CORETYPE"):
        print(f"  {var}={os.environ.get(var, '(unset)')}")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            print(f"  {pool.get('internal_api')} {pool.get('version')} "
                  f"({pool.get('architecture')}): {pool.get('num_threads')} thread(s)")
    except ImportError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    isa = [x for x in ("avx512f", "avx512_bf16", "avx512_vnni", "avx2", "fma") if f" {x}" in flags]
    print(f"cpu: {os.cpu_count()} logical cores; vector extensions: {', '.join(isa) or 'unknown'}")
    from .datasets import get_data_home

    print(f"data cache: {get_data_home()}")
    return 0


def cmd_info(args):
    from ._persist import model_class, read_model, rebuild

    if args.model is None:
        return _system_info()
    if not os.path.exists(args.model):
        raise CLIError(f"model file {args.model!r} does not exist; check the path.")
    try:
        meta, arrays = read_model(args.model)
        rebuild(model_class(meta, args.model), meta, arrays, args.model)  # check all of it
    except (ValueError, OSError) as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    n_params = sum(int(a.size) for k, a in arrays.items() if not k.startswith("train/"))
    print(f"file: {args.model} ({os.path.getsize(args.model):,} bytes)")
    print(f"class: {meta.get('class')}  (fastrnn {meta.get('fastrnn_version')}, format "
          f"{meta.get('format_version')})" + ("  [training checkpoint]" if "checkpoint" in meta
                                               else ""))
    print(f"parameters: {n_params:,}")
    cfg = meta.get("network_config") or meta.get("network") or {}
    if meta.get("class") == "RNNLanguageModel":
        p = meta.get("params", {})
        vocab = meta.get("vocabulary", {})
        level = p.get("level") or f"custom tokenizer ({meta.get('tokenizer')})"
        if meta.get("input_type") == "tokens":
            level = "pre-tokenised input"
        print(f"level: {level}; vocabulary: {len(vocab.get('tokens', [])) + 4} tokens "
              f"(4 special)")
        if cfg:
            skip = f" ({cfg['skip']} connections)" if cfg.get("skip") else ""
            print(f"network: {cfg.get('cell', '?').upper()} {cfg.get('num_layers')} x "
                  f"{cfg.get('hidden_size')}{skip}, embedding {cfg.get('embedding_dim')}, "
                  f"tied weights: {cfg.get('tie_weights')}, dropout {cfg.get('dropout')}, "
                  f"{cfg.get('dtype')}")
        f = meta.get("fitted", {})
        if f:
            print(f"training: {f.get('n_iter_')} epochs, {f.get('n_steps_')} steps, "
                  f"{f.get('n_tokens_seen_'):,} tokens, {f.get('training_time_', 0):.0f} s, "
                  f"stopped: {f.get('stop_reason_')}")
            if f.get("best_validation_bits_per_token_") is not None:
                print(f"best validation: {f['best_validation_bits_per_token_']:.4f} bits per token")
            hist = f.get("history_") or []
            if hist:
                print("learning curve (epoch, seconds, train bits, validation bits, "
                      "learning rate):")
                for h in hist:
                    tb = "-" if h.get("train_bits") is None else f"{h['train_bits']:.4f}"
                    vb = "-" if h.get("val_bits") is None else f"{h['val_bits']:.4f}"
                    print(f"  {h['epoch']:7.2f} {h['seconds']:8.0f} {tb:>8} {vb:>8} {h['lr']:.3g}")
    elif cfg:
        print("network: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    return 0


def _load_any(path):
    """Load a saved model of any class, with one-line errors."""
    from ._persist import model_class, read_model, rebuild

    if not os.path.exists(path):
        raise CLIError(f"model file {path!r} does not exist; check the path.")
    try:
        meta, arrays = read_model(path)
        return rebuild(model_class(meta, path), meta, arrays, path)
    except (ValueError, OSError) as exc:
        raise CLIError(" ".join(str(exc).split())) from exc


def _pyplot_agg():
    """matplotlib's pyplot drawing into files (no display needed)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise CLIError("plots need matplotlib: install the 'plot' extra, pip install "
                       "'fastrnn[plot]'.") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_data(paths, model):
    """``(X, y)`` of ``diagnose``: text files for a language model; else one ``.npz`` file with
    an array ``X`` (and optionally ``y``, the targets) or one ``.npy`` file with ``X``."""
    if type(model).__name__ == "RNNLanguageModel":
        docs = _read_corpus(paths, "data")
        if model.input_type_ == "tokens":
            docs = [d.split() for d in docs]
        return docs, None
    import numpy as np

    if len(paths) != 1:
        raise CLIError(f"a {type(model).__name__} reads one DATA file (.npz with X and y, or .npy "
                       f"with X), got {len(paths)}.")
    path = paths[0]
    if not os.path.exists(path):
        raise CLIError(f"data file {path!r} does not exist; check the path.")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return data, None
        with data:
            if "X" not in data.files:
                raise CLIError(f"data file {path!r} holds {sorted(data.files)}, not an array "
                               "'X'; save it with numpy.savez(path, X=X, y=y).")
            return data["X"], (data["y"] if "y" in data.files else None)
    except CLIError:
        raise
    except (ValueError, OSError) as exc:
        raise CLIError(f"data file {path!r} is not a numpy .npz or .npy file of numbers; save "
                       "the sequences with numpy.savez(path, X=X, y=y).") from exc


def cmd_plot(args):
    model = _load_any(args.model)
    _check_outputs(("--out", args.out))
    plt = _pyplot_agg()
    from .diagnostics import plot_history

    try:
        axes = plot_history(model)
    except ValueError as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    axes[0].figure.savefig(args.out, dpi=args.dpi)
    plt.close(axes[0].figure)
    print(f"wrote the training curves of {args.model} to {args.out}")
    return 0


def cmd_diagnose(args):
    from .diagnostics import gate_statistics, gradient_flow

    model = _load_any(args.model)
    if args.out:
        _check_outputs(("--out", args.out))
    X, y = _read_data(args.data, model)
    try:
        flow = gradient_flow(model, X, y, max_sequences=args.max_sequences)
        stats = gate_statistics(model, X, max_sequences=args.max_sequences)
    except (ValueError, TypeError) as exc:
        raise CLIError(" ".join(str(exc).split())) from exc
    no_loss = "" if flow.loss_grad is not None else "; no targets y, so no loss"
    print(f"gradient flow over {int(flow.counts[0])} sequences (norms against the distance d "
          f"from each direction's last step{no_loss}):")
    print(flow.to_text())
    print()
    print(f"gate statistics over {stats.n_steps} steps:")
    print(stats.to_text())
    if args.out:
        plt = _pyplot_agg()
        from .diagnostics import plot_gate_statistics, plot_gradient_flow

        n = 2 if flow.loss_grad is not None else 1
        fig, axes = plt.subplots(1, n + 1, figsize=(4.5 * (n + 1), 3.4), layout="constrained")
        plot_gradient_flow(flow, ax=axes[:n])
        plot_gate_statistics(stats, ax=axes[n])
        fig.savefig(args.out, dpi=args.dpi)
        plt.close(fig)
        print(f"\nwrote the plots to {args.out}")
    return 0


def cmd_bench(args):
    from ._bench import run

    run(threads=args.threads, repeats=args.repeats, quick=args.quick)
    return 0


# ------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------

def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _nonneg_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return v


def _fraction(text):
    v = _nonneg_float(text)
    if v >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return v


def _fraction_positive(text):
    v = _nonneg_float(text)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return v


def build_parser():
    """The argument parser of the ``fastrnn`` command (every option says its default)."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG, description="Recurrent language models with compiled CPU kernels.",
        formatter_class=fmt)
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"fastrnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train-lm", help="train a language model", formatter_class=fmt,
                       description="Train a character- or word-level language model. Without "
                                   "CORPUS, Shakespeare's works (hamlet for validation, macbeth + "
                                   "tempest for the test).")
    p.add_argument("corpus", nargs="*", metavar="CORPUS", help="text files, one document each")
    p.add_argument("--validation", nargs="+", metavar="FILE", help="validation text files")
    p.add_argument("--validation-fraction", type=_fraction, default=0.05,
                   help="without --validation, hold out this tail of every CORPUS file "
                        "(0: no validation)")
    p.add_argument("--level", choices=["char", "word"], default="char",
                   help="tokens: characters, or words and punctuation")
    p.add_argument("--max-vocab", type=_positive_int,
                   help="keep at most this many tokens (the most frequent); the others are <unk>")
    p.add_argument("--min-count", type=_positive_int, default=1,
                   help="tokens seen fewer times become <unk>")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn", "mingru", "minlstm", "indrnn"],
                   default="lstm", help="recurrent cell")
    p.add_argument("--embedding-dim", type=_positive_int,
                   help="size of the token vectors (default: hidden size with --tie-weights, "
                        "else 64)")
    p.add_argument("--hidden-size", type=_positive_int, default=512, help="recurrent units")
    p.add_argument("--num-layers", type=_positive_int, default=1, help="stacked layers")
    p.add_argument("--skip", choices=["none", "residual", "dense", "highway"], default="none",
                   help="connections between the stacked layers")
    p.add_argument("--dropout", type=_fraction, default=0.2,
                   help="dropout on embeddings, between layers and before the softmax")
    p.add_argument("--recurrent-dropout", type=_fraction, default=0.0,
                   help="variational dropout on the recurrent connections")
    p.add_argument("--tie-weights", action="store_true",
                   help="share the embedding matrix with the output layer")
    p.add_argument("--bptt", type=_positive_int, default=64, help="truncation length (steps)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="parallel streams")
    p.add_argument("--optimizer", default="adam",
                   choices=["adam", "adamw", "sgd", "momentum", "nesterov", "adagrad"],
                   help="optimiser")
    p.add_argument("--learning-rate", type=float, default=2e-3, help="initial learning rate")
    p.add_argument("--clip-norm", type=_nonneg_float, default=5.0,
                   help="global gradient-norm clipping threshold (0: no clipping)")
    p.add_argument("--lr-decay", type=float, default=0.5,
                   help="learning-rate factor when the validation perplexity stops improving")
    p.add_argument("--lr-patience", type=int, default=0,
                   help="evaluations without improvement before --lr-decay applies")
    p.add_argument("--lr-schedule", choices=["plateau", "cosine", "linear"], default="plateau",
                   help="plateau: decay on a validation plateau; cosine/linear: anneal to "
                        "--min-learning-rate over the epochs or the time budget")
    p.add_argument("--min-learning-rate", type=_nonneg_float, default=0.0,
                   help="final learning rate of the cosine/linear schedules")
    p.add_argument("--anneal-fraction", type=_fraction_positive, default=1.0,
                   help="anneal over this last share of the run only (1: all of it)")
    p.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation perplexity stops improving")
    p.add_argument("--patience", type=_positive_int, default=3,
                   help="evaluations without improvement tolerated by --early-stopping")
    p.add_argument("--epochs", type=_positive_int, default=10, help="maximum number of epochs")
    p.add_argument("--ngram-order", type=_ngram_order, default="auto", metavar="N",
                   help="order of the Kneser-Ney n-gram model mixed with the network, 'auto' "
                        "(7 for characters, 4 for words) or 'none'; weighed on the validation "
                        "text, so off without one")
    p.add_argument("--eval-interval", type=_positive_int,
                   help="also evaluate the validation text every N steps")
    p.add_argument("--time-budget", type=_nonneg_float, metavar="SECONDS",
                   help="stop training after this many seconds, keeping the best model")
    p.add_argument("--seed", type=int, default=0, help="random seed (reproducible runs)")
    p.add_argument("--out", default="lm.fastrnn", metavar="MODEL", help="the model file to write")
    p.add_argument("--checkpoint", metavar="PATH", help="checkpoint file (default: MODEL.ckpt)")
    p.add_argument("--resume", action="store_true", help="continue the run in the checkpoint")
    p.add_argument("--force", action="store_true", help="overwrite MODEL if it exists")
    p.add_argument("--no-test", action="store_true",
                   help="skip the test evaluation (default corpus only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train_lm)

    p = sub.add_parser("generate", help="sample text from a language model", formatter_class=fmt)
    p.add_argument("model", metavar="MODEL", help="a saved language model")
    p.add_argument("--prompt", default="", help="text the sample continues")
    p.add_argument("--max-length", type=_positive_int, default=500,
                   help="most tokens generated per sample")
    p.add_argument("--temperature", type=_nonneg_float, default=1.0,
                   help="below 1: more conservative, above 1: more varied; 0: greedy")
    p.add_argument("--top-k", type=_positive_int, help="sample among the K most probable tokens")
    p.add_argument("--top-p", type=float,
                   help="sample among the most probable tokens whose probability reaches P")
    p.add_argument("--greedy", action="store_true", help="always take the most probable token")
    p.add_argument("--num-samples", type=_positive_int, default=1, help="number of samples")
    p.add_argument("--seed", type=int, help="random seed (reproducible samples)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("evaluate", help="perplexity and bits per token of a text",
                       formatter_class=fmt,
                       description="Without CORPUS: the Shakespeare test texts "
                                   "(macbeth + tempest).")
    p.add_argument("model", metavar="MODEL", help="a saved language model")
    p.add_argument("corpus", nargs="*", metavar="CORPUS", help="text files, one document each")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("info", help="describe a saved model, or this installation",
                       formatter_class=fmt,
                       description="With MODEL: what the file holds. Without: versions, "
                                   "backends, threads, CPU and data cache of this installation.")
    p.add_argument("model", metavar="MODEL", nargs="?", help="a saved model or checkpoint")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plot", help="plot the training curves of a saved model",
                       formatter_class=fmt,
                       description="Training loss, validation score, learning rate and gradient "
                                   "norm per epoch (a language model: bits per token and learning "
                                   "rate per evaluation), as recorded by the fit. Needs "
                                   "matplotlib (the 'plot' extra).")
    p.add_argument("model", metavar="MODEL", help="a saved model")
    p.add_argument("--out", default="curves.png", metavar="PNG", help="the image to write")
    p.add_argument("--dpi", type=_positive_int, default=100, help="resolution of the image")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("diagnose", help="gradient flow and gate statistics of a saved model",
                       formatter_class=fmt,
                       description="Print the gradient flow through time (|dL/dh_t| and "
                                   "|dh_T/dh_t| against the distance) and the gate statistics "
                                   "of MODEL on DATA: text files for a language model, else a "
                                   ".npz file with arrays X and y (y optional: without it, no "
                                   "loss) or a .npy file with X.")
    p.add_argument("model", metavar="MODEL", help="a saved model")
    p.add_argument("data", nargs="+", metavar="DATA", help="the sequences to read")
    p.add_argument("--max-sequences", type=_positive_int, default=64,
                   help="read the first sequences of DATA only")
    p.add_argument("--out", metavar="PNG", help="also write the plots to this image")
    p.add_argument("--dpi", type=_positive_int, default=100, help="resolution of the image")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("bench", help="a short speed check (with PyTorch side by side if "
                                     "installed)", formatter_class=fmt)
    p.add_argument("--threads", type=_positive_int,
                   help="threads of fastrnn, BLAS and PyTorch (default: fastrnn's setting)")
    p.add_argument("--repeats", type=_positive_int, default=15, help="timed calls per figure")
    p.add_argument("--quick", action="store_true", help="only the batch-1 latencies")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None):
    """Run the ``fastrnn`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 2 on a usage error or an error the user can fix (one line on stderr), 130 when
        interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'fastrnn generate ... | head'
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
