#!/usr/bin/env python
"""How the LSTM forward and training step of fastrnn scale with T, H, batch size and threads.

Around config B of ``compare.py`` (B 32, T 100, I 128, H 256, float32) one size varies at a time:

* sequence length T (the time should be linear in T: the recurrence is a loop over steps),
* hidden size H (the gate products cost ``2 B 4H (I + H)`` per step: quadratic for large H),
* batch size B (linear once the per-step products are large enough to run at full speed),
* ragged batches (``ragged``): 32 sequences of lengths drawn from 100 to ``L`` for ``L`` up to
  1,400, the cost against the real steps of the batch (it should be linear in them: no work on
  padding), beside PyTorch with ``pack_padded_sequence`` and PyTorch on the padded array,

each at every thread count (``--threads``, default 1 and 2), every thread count in its own fresh
process with the same thread settings as ``compare.py``. PyTorch runs the same shapes with the
same weights, interleaved, as a reference (``--no-torch`` leaves it out). The results go to JSON
(``--json``), the tables to the terminal (``--rst`` for reStructuredText) and, where matplotlib is
installed, a figure to ``--png``.

Run: ``python benchmarks/scaling.py --png docs/_static/scaling.png --update-doc docs/scaling.rst``
(``--quick`` for fewer points).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import compare  # noqa: E402 - the same measuring machinery as the comparison

BASE = dict(B=32, T=100, I=128, H=256)
SWEEPS = {
    "T": [25, 50, 100, 200, 400],
    "H": [64, 128, 256, 512],
    "B": [1, 4, 16, 32, 64, 128],
    "ragged": [200, 400, 800, 1400],
}
QUICK_SWEEPS = {
    "T": [25, 50, 100, 200],
    "H": [64, 128, 256, 512],
    "B": [1, 8, 32, 128],
    "ragged": [200, 800, 1400],
}
#: the ragged sweep: lengths drawn from RAGGED_LOW to the point's value, BASE's B, I and H
RAGGED_LOW = 100
#: the longest ``L`` at which PyTorch's packed training step is timed (see _compare.ragged)
RAGGED_PACKED_TRAIN_MAX = 200
#: the timed implementations of the T, H and B sweeps, in table order (bf16: the same layer
#: with ``precision="bf16"``, numba backend)
SWEEP_KEYS = ("fastrnn forward", "fastrnn bf16 forward", "torch forward", "fastrnn train",
              "fastrnn bf16 train", "torch train")
#: the timed implementations of the ragged sweep, in table order
RAGGED_KEYS = ("fastrnn forward", "torch packed forward", "torch padded forward", "fastrnn train",
               "torch packed train", "torch padded train")
DEFAULT_JSON = HERE / ".asv" / "scaling.json"


def build_parser():
    p = argparse.ArgumentParser(prog="scaling.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer points and repeats")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--backend", default="auto", help="fastrnn backend (default: auto)")
    p.add_argument("--sweeps", nargs="+", default=["T", "H", "B"], choices=sorted(SWEEPS))
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--json", default=str(DEFAULT_JSON), metavar="OUT")
    p.add_argument("--png", default=None, metavar="PATH", help="save a figure (needs matplotlib)")
    p.add_argument("--rst", action="store_true", help="print the tables as reStructuredText")
    p.add_argument("--update-doc", default=None, metavar="RST",
                   help="also write the tables into this page (see compare.py --update-doc)")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="print the tables of a saved run (and --png its figure); no measuring")
    p.add_argument("--settle", type=float, default=None, metavar="S",
                   help="see compare.py --settle (default: 0.12 at more than one thread, else 0)")
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.points = {k: (QUICK_SWEEPS if args.quick else SWEEPS)[k] for k in args.sweeps}
    return args


def shapes(sweep, values):
    for v in values:
        d = dict(BASE, **{sweep: v})
        yield v, compare.Shape(d["B"], d["T"], d["I"], d["H"])


def measure_ragged(values, backend, use_torch, repeats, settle, log=None):
    """The ragged sweep (see :mod:`_compare.ragged`): every point checked against PyTorch, then all
    points and implementations timed in one interleaved run."""
    from _compare.ragged import RaggedRun, ragged_lengths

    runs, keyed = [], {}
    for v in values:
        run = RaggedRun("LSTM", ragged_lengths(BASE["B"], RAGGED_LOW, v), BASE["I"], BASE["H"],
                        backend, use_torch)
        runs.append((v, run, run.check()))
        fns = run.fns(packed_train=v <= RAGGED_PACKED_TRAIN_MAX)
        keyed.update({f"{v}|{k}": fn for k, fn in fns.items()})
    res = compare.interleaved(keyed, repeats, warmup=1, min_time=0.02, settle=settle)
    rows = []
    for v, run, errors in runs:
        row = dict(value=v, tokens=run.tokens, padded=run.shape.B * run.shape.T, errors=errors,
                   skipped=run.skipped, samples={})
        for k in RAGGED_KEYS:
            if f"{v}|{k}" in res:
                row[k] = res[f"{v}|{k}"]["median"]
                row["samples"][k] = res[f"{v}|{k}"]["times"]
        rows.append(row)
        if log:
            log(f"ragged L={v} ({run.tokens} tokens): " + ", ".join(
                f"{k} {row[k] * 1e3:.1f} ms" for k in RAGGED_KEYS if k in row))
    return rows


def measure_sweep(sweep, values, backend, use_torch, repeats, settle, log=None):
    """All points of one sweep, fastrnn and PyTorch, forward and training step: each point checked
    (same outputs and gradients), then every (point, implementation) timed in one interleaved run,
    so that a busy spell of the machine falls on all points alike, not on one."""
    if sweep == "ragged":
        return measure_ragged(values, backend, use_torch, repeats, settle, log)
    points, fns = [], {}
    for v, shape in shapes(sweep, values):
        sw = compare.SameWeights("LSTM", shape, [backend], use_torch=use_torch, use_ort=False)
        if backend not in sw.fr:
            raise RuntimeError(f"fastrnn backend {backend!r} unavailable: {sw.skipped}")
        errors = sw.check(grads=True)
        points.append((v, shape, sw, errors))
        fns[(v, "fastrnn forward")] = sw.fr_forward(backend)
        fns[(v, "fastrnn train")] = sw.fr_train(backend)
        step, bf16_errors = sw.bf16_train()  # the same layer with precision="bf16"
        if step is not None:
            errors["bf16"] = bf16_errors
            fns[(v, "fastrnn bf16 forward")] = (lambda lay, X: lambda: lay.forward(X))(
                sw.bf16_layer, sw.X)
            fns[(v, "fastrnn bf16 train")] = step
        else:
            sw.skipped["bf16"] = bf16_errors
        if sw.tm is not None:
            fns[(v, "torch forward")] = sw.torch_forward()
            fns[(v, "torch train")] = sw.torch_train()
    keyed = {f"{v}|{k}": fn for (v, k), fn in fns.items()}
    res = compare.interleaved(keyed, repeats, warmup=1, min_time=0.02, settle=settle)
    rows = []
    for v, shape, sw, errors in points:
        row = dict(value=v, shape=shape.as_dict(), errors=errors, skipped=sw.skipped,
                   flops=compare.forward_flops("LSTM", shape), samples={})
        for (v2, k) in fns:
            if v2 == v:
                r = res[f"{v}|{k}"]
                row[k] = r["median"]
                row["samples"][k] = r["times"]
        rows.append(row)
        if log:
            keys = [k for k in SWEEP_KEYS if k in row]
            log(f"{sweep}={v}: " + ", ".join(f"{k} {row[k] * 1e3:.1f} ms" for k in keys))
    return rows


def worker(spec, out):
    args = argparse.Namespace(**spec)
    threads = args.threads
    settle = args.settle if args.settle is not None else compare.default_settle(threads)
    import fastrnn  # noqa: F401
    info = compare.set_threads(threads)
    info["settle_s"] = settle
    backend = args.backend
    if backend == "auto":
        from fastrnn._backend import resolve_name
        backend = resolve_name("auto")
    result = dict(threads=threads, thread_info=info, backend=backend, sweeps={})
    import os
    result["loadavg_start"] = os.getloadavg()
    for sweep, values in args.points.items():
        result["sweeps"][sweep] = measure_sweep(
            sweep, values, backend, not args.no_torch, args.repeats, settle,
            log=lambda m: print(f"[{threads} thr] {m}", file=sys.stderr, flush=True))
    result["loadavg_end"] = os.getloadavg()
    Path(out).write_text(json.dumps(result, default=compare.json_default))


def fit(sweep, rows, key):
    """Linear fit ``t = a + b T`` for T and ``t = a + b tokens`` for the ragged sweep (with R^2);
    log-log slope for H and B."""
    x = np.array([r["tokens" if sweep == "ragged" else "value"] for r in rows], float)
    y = np.array([r[key] for r in rows if key in r], float)
    if len(y) != len(x) or len(x) < 2:
        return None
    if sweep in ("T", "ragged"):
        b, a = np.polyfit(x, y, 1)
        pred = a + b * x
        r2 = 1.0 - np.sum((y - pred) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-300)
        return dict(kind="linear", per_step_ms=b * 1e3, intercept_ms=a * 1e3, r2=r2,
                    max_rel_dev=float(np.max(np.abs(y - pred) / y)))
    slope = np.polyfit(np.log(x), np.log(y), 1)[0]
    return dict(kind="loglog", exponent=slope)


def render_ragged(rows, rst):
    """The ragged sweep's table and fits: milliseconds, and microseconds per real step."""
    keys = [k for k in RAGGED_KEYS if any(k in r for r in rows)]
    hdr = ["L", "real steps", "padded steps"] + [k + " ms" for k in keys]
    body = [[str(r["value"]), str(r["tokens"]), str(r["padded"])]
            + [f"{r[k] * 1e3:.1f}" if k in r else "n/t" for k in keys] for r in rows]
    fits = []
    for k in keys:
        f = fit("ragged", rows, k)
        if f is not None:
            fits.append(f"{k}: {f['per_step_ms'] * 1e3:.2f} us/real step + "
                        f"{f['intercept_ms']:.1f} ms, R^2 {f['r2']:.4f}")
    notes = sorted({why for r in rows for why in r["skipped"].values()})
    fits += [f"n/t: {why}" for why in notes]
    title = (f"LSTM, ragged batch (B {BASE['B']}, lengths {RAGGED_LOW} to L, I {BASE['I']}, "
             f"H {BASE['H']})")
    return ["", title, compare.table(hdr, body, rst), "fit against real steps: " + "; ".join(fits)]


def render(results, rst=False):
    out = [compare.headline(results["meta"], ("numpy", "numba", "torch"))]
    for run in results["runs"]:
        n = run["threads"]
        out.append("")
        if rst:
            title = f"{n} thread{'s' if n > 1 else ''}"
            out.append(f"{title}\n{'~' * len(title)}")
        out.append(("" if rst else f"### {n} thread(s), ") + f"backend {run['backend']} "
                   f"(OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS={n}, torch.set_num_threads({n}); "
                   f"settling {run['thread_info'].get('settle_s')} s; load average "
                   f"{run['loadavg_start'][0]:.1f} -> {run['loadavg_end'][0]:.1f})")
        for sweep, rows in run["sweeps"].items():
            if sweep == "ragged":
                out += render_ragged(rows, rst)
                continue
            keys = [k for k in SWEEP_KEYS if k in rows[0]]
            hdr = [sweep] + [k + " ms" for k in keys] + ["fastrnn fwd GFLOP/s"]
            body = [[str(r["value"])] + [f"{r[k] * 1e3:.1f}" for k in keys]
                    + [f"{r['flops'] / r['fastrnn forward'] / 1e9:.1f}"] for r in rows]
            fits = []
            for k in keys:
                f = fit(sweep, rows, k)
                if f is None:
                    continue
                if f["kind"] == "linear":
                    fits.append(f"{k}: {f['per_step_ms']:.3f} ms/step + "
                                f"{f['intercept_ms']:.1f} ms, R^2 {f['r2']:.4f}")
                else:
                    fits.append(f"{k}: time ~ {sweep}^{f['exponent']:.2f}")
            other = ", ".join(f"{k} {v}" for k, v in BASE.items() if k != sweep)
            out += ["", f"LSTM, {sweep} varies ({other})", compare.table(hdr, body, rst)]
            out += ["fit: " + "; ".join(fits)]
    if rst:
        return "\n\n".join(el for el in out if el)
    return "\n".join(out)


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)", file=sys.stderr)
        return False
    sweeps = list(results["runs"][0]["sweeps"])
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 4.2), squeeze=False)
    colors = {"fastrnn forward": "C0", "fastrnn train": "C1", "fastrnn bf16 forward": "C2",
              "fastrnn bf16 train": "C3", "torch forward": "C0",
              "torch train": "C1", "torch packed forward": "C0", "torch packed train": "C1",
              "torch padded forward": "C0", "torch padded train": "C1"}
    xlabels = {"T": "sequence length T", "H": "hidden size H", "B": "batch size B",
              "ragged": "real steps in the ragged batch"}
    for ax, sweep in zip(axes[0], sweeps):
        for run in results["runs"]:
            rows = run["sweeps"][sweep]
            xkey = "tokens" if sweep == "ragged" else "value"
            for k, c in colors.items():
                have = [r for r in rows if k in r]
                if not have:
                    continue
                x = [r[xkey] for r in have]
                style = "-" if k.startswith("fastrnn") else (":" if "padded" in k else "--")
                marker = "o" if run["threads"] == 1 else "s"
                alpha = 1.0 if run["threads"] == 1 else 0.55
                ax.plot(x, [r[k] * 1e3 for r in have], style, color=c, marker=marker, alpha=alpha,
                        markersize=4, label=f"{k}, {run['threads']} thr")
        ax.set_xlabel(xlabels[sweep])
        ax.set_ylabel("time (ms)")
        if sweep not in ("T", "ragged"):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(x)
            ax.set_xticklabels([str(v) for v in x])
            ax.minorticks_off()
        if sweep == "ragged":
            title = f"LSTM, B {BASE['B']}, lengths {RAGGED_LOW}-L, I {BASE['I']}, H {BASE['H']}"
        else:
            title = "LSTM, " + ", ".join(f"{k} {v}" for k, v in BASE.items() if k != sweep)
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    meta = results["meta"]
    fig.suptitle("fastrnn (solid; float32 and bf16) vs PyTorch float32 (dashed; dotted: padded, "
                 f"not packed), median; {meta['date'][:10]}", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return True


def main(argv=None):
    args = parse_args(argv)
    if args._worker is not None:
        worker(json.loads(args._worker), args.json)
        return 0
    if args.render is not None:
        results = json.loads(Path(args.render).read_text())
        print(render(results, args.rst))
        if args.update_doc:
            compare.update_doc(args.update_doc, render(results, rst=True))
        if args.png and plot(results, args.png):
            print(f"saved {args.png}", file=sys.stderr)
        return 0
    results = dict(meta=compare.machine_info(), settings=dict(
        base=BASE, points=args.points, repeats=args.repeats, backend=args.backend,
        threads=args.threads, torch=not args.no_torch), runs=[])
    for n in args.threads:
        spec = dict(vars(args), threads=n, _worker=None)
        results["runs"].append(compare.run_script(Path(__file__).resolve(),
                                                  ["--_worker", json.dumps(spec)], n))
    for run in results["runs"]:
        keys = ("fastrnn forward", "fastrnn train", "torch forward", "torch train")
        run["fits"] = {s: {k: fit(s, rows, k) for k in keys if k in rows[0]}
                       for s, rows in run["sweeps"].items()}
    print(render(results, args.rst))
    if args.update_doc:
        compare.update_doc(args.update_doc, render(results, rst=True))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=compare.json_default))
        print(f"\nsaved {path}", file=sys.stderr)
    if args.png and plot(results, args.png):
        print(f"saved {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
