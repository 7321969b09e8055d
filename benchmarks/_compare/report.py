"""The tables of a run (plain text or reStructuredText) and the rewriting of a documentation page
between its ``.. results-start`` and ``.. results-end`` comments."""

import sys
from pathlib import Path

from .impls import BF16
from .workloads import LATENCY, LM


def table(headers, rows, rst=False, left=None):
    """A plain-text (or reStructuredText simple) table.

    The columns whose indices are in ``left`` are aligned left, the others (figures) right;
    ``None``: those headed "config", "cell" or "backend".
    """
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join("=" * w for w in widths)
    if left is None:
        left = {i for i, h in enumerate(headers) if h in ("config", "cell", "backend")}

    def fmt(r):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [fmt(headers), "  ".join("-" * w for w in widths)]
    if rst:
        out = [line, fmt(headers), line]
    out += [fmt(r) for r in cells]
    if rst:
        out.append(line)
    return "\n".join(out)


def _f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def _ratio(a, b):
    return None if a is None or b is None else a / b


def _get(res, impl, key, scale=1.0):
    """``res[impl][key] * scale`` or ``None`` where absent."""
    if impl is None or impl not in res or key not in res[impl]:
        return None
    return res[impl][key] * scale


def _ms_of(res, impl, scale=1e3):
    return _get(res, impl, "median", scale)


def _med(res, key):
    v = res.get(key)
    return None if v is None else v["median"]


def fr_columns(results):
    """fastrnn implementation names present anywhere, e.g. ``["fastrnn[numba]"]``."""
    names = []
    for run in results["runs"]:
        for sec in ("latency", "configs", "lm"):
            for row in run[sec]:
                for k in row.get("times", row.get("forward", {})):
                    if k.startswith("fastrnn[") and k.endswith("]") and k not in names:
                        names.append(k)
    return names


def headline(meta, libraries=("numpy", "numba", "torch", "onnxruntime")):
    """The first line of a report: the fastrnn version and the commit measured (its short hash,
    ``+dirty`` when the working tree had uncommitted changes), the versions of ``libraries``, the
    machine and the date, from :func:`harness.machine_info`'s ``meta``."""
    v = meta["versions"]
    versions = ", ".join(f"{lib} {v.get(lib)}" for lib in libraries)
    return (f"fastrnn {v.get('fastrnn')} (commit {meta.get('git') or 'unknown'}), {versions}; "
            f"{meta.get('cpu')}, {meta.get('cpu_count')} cores; {meta['date']}")


def _config_row(r, phase, frs):
    """The start of a row of the forward (``phase="forward"``) or training table: config, cell and
    the milliseconds of every fastrnn implementation ``frs`` and of PyTorch. Returns it with the
    timings, the best fastrnn median and the implementation that gave it."""
    t = r[phase]
    best = r.get(f"{phase}_best", {})
    row = [r["group"], r["cell"]] + [_f(_ms_of(t, k), "{:.1f}") for k in [*frs, "torch"]]
    return row, t, best.get("median"), best.get("impl")


def render(results, rst=False):
    """All tables as text."""
    meta = results["meta"]
    out = [headline(meta)]
    env = meta.get("env", {})
    blas_env = [f"{k}={env[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in env]
    out.append("OpenBLAS env: " + (", ".join(blas_env) or "none set"))
    frs = fr_columns(results)
    short = {k: k[len("fastrnn["):-1] for k in frs}
    multi = len(frs) > 1
    for run in results["runs"]:
        n = run["threads"]
        ti = run["thread_info"]
        blas = [f"{d.get('internal_api')} {d.get('architecture') or ''} x{d.get('num_threads')}"
                for d in ti.get("threadpoolctl", []) if isinstance(d, dict)]
        out.append("")
        if rst:
            title = f"{n} thread{'s' if n > 1 else ''}"
            out.append(f"{title}\n{'~' * len(title)}")
        out.append(("" if rst else f"### {n} thread(s): ")
                   + f"OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS={n}, "
                   f"torch.set_num_threads({ti.get('torch_threads')}), numba threads "
                   f"{ti.get('numba_threads')}, ORT intra_op_num_threads="
                   f"{ti.get('ort_intra_op_threads')}"
                   f"; BLAS pools: {'; '.join(blas)}")
        la = run.get("loadavg")
        if la:
            out.append(f"settling before each sample {ti.get('settle_s', 0):g} s; load average "
                       f"(1 min) {la['start'][0]:.1f} at start, {la['end'][0]:.1f} at end"
                       + ("  ** busy machine: figures are noisy **"
                          if max(la['start'][0], la['end'][0]) > (meta.get('cpu_count') or 2)
                          else ""))
        pk, pk_end = run["peak_flops"], run.get("peak_flops_end", {})
        out.append("float32 matmul rate (2048^2, median) at start / end: " + ", ".join(
            f"{k} {val / 1e9:.0f} / {pk_end.get(k, float('nan')) / 1e9:.0f} GFLOP/s"
            for k, val in pk.items())
            + "; %peak below uses the larger numpy figure")
        if run["latency"]:
            hdr = ["cell"] + [short[k] + " ms" for k in frs]
            hdr += (["best ms"] if multi else []) + ["torch ms", "ORT ms", "fastrnn/torch",
                                                     "fastrnn/ORT"]
            rows = []
            for r in run["latency"]:
                t = r["times"]
                best = r.get("best", {}).get("median")
                row = [r["cell"]] + [_f(_ms_of(t, k), "{:.3f}") for k in frs]
                row += ([_f(None if best is None else best * 1e3, "{:.3f}")] if multi else [])
                row += [_f(_ms_of(t, "torch"), "{:.3f}"),
                        _f(_ms_of(t, "ort"), "{:.3f}"),
                        _f(_ratio(best, _med(t, "torch"))), _f(_ratio(best, _med(t, "ort")))]
                rows.append(row)
            out += ["", f"Latency: forward, {LATENCY.label()} (time ratio: < 1 means fastrnn "
                        "is faster)", table(hdr, rows, rst)]
        if run["stream"]:
            names = []
            for r in run["stream"]:
                names += [k for k in r["times"] if k not in names]
            hdr = ["cell"] + [k.replace("fastrnn", "fr") + " us" for k in names]
            rows = []
            for r in run["stream"]:
                rows.append([r["cell"]] + [_f(_ms_of(r["times"], k, 1e6), "{:.1f}") for k in names])
            out += ["", f"Streaming: time per step, batch {LATENCY.B}, I {LATENCY.I}, "
                        f"H {LATENCY.H}", table(hdr, rows, rst)]
        if run["configs"]:
            hdr_ms = ["config", "cell"] + [short[k] + " ms" for k in frs] + ["torch ms"]
            hdr = hdr_ms + ["ORT ms", "fastrnn/torch", "fastrnn/ORT", "fastrnn %peak",
                            "torch %peak", "ORT %peak"]
            rows = []
            for r in run["configs"]:
                row, t, best, bimpl = _config_row(r, "forward", frs)
                row += [_f(_ms_of(t, "ort"), "{:.1f}"),
                        _f(_ratio(best, _med(t, "torch"))), _f(_ratio(best, _med(t, "ort"))),
                        _f(_get(t, bimpl, "peak_share", 100), "{:.0f}"),
                        _f(_get(t, "torch", "peak_share", 100), "{:.0f}"),
                        _f(_get(t, "ort", "peak_share", 100), "{:.0f}")]
                rows.append(row)
            out += ["", "Forward (inference), float32; %peak = gate-product FLOPs / time / numpy "
                        "matmul peak", table(hdr, rows, rst)]
            hdr = hdr_ms + ["fastrnn/torch", "fastrnn tok/s", "torch tok/s", "fastrnn %peak",
                            "torch %peak"]
            rows = []
            for r in run["configs"]:
                row, t, best, bimpl = _config_row(r, "train", frs)
                row += [_f(_ratio(best, _med(t, "torch"))),
                        _f(_get(t, bimpl, "tokens_per_s"), "{:.0f}"),
                        _f(_get(t, "torch", "tokens_per_s"), "{:.0f}"),
                        _f(_get(t, bimpl, "peak_share", 100), "{:.0f}"),
                        _f(_get(t, "torch", "peak_share", 100), "{:.0f}")]
                rows.append(row)
            out += ["", "Training step (forward + backward of sum(Y*G), input gradient included); "
                        "%peak counts 3x the forward FLOPs", table(hdr, rows, rst)]
            bf = [r for r in run["configs"] if BF16 in r["train"]]
            if bf:
                hdr = ["config", "cell", "bf16 ms", "float32 ms", "torch ms", "bf16/torch",
                       "float32/torch", "bf16/float32", "bf16 max error"]
                rows = []
                for r in bf:
                    t = r["train"]
                    f32 = r.get("train_best", {}).get("median")
                    b16, tor = _med(t, BF16), _med(t, "torch")
                    err = max((r.get("bf16_errors") or {}).values(), default=None)
                    rows.append([r["group"], r["cell"], _f(_ms_of(t, BF16), "{:.1f}"),
                                 _f(None if f32 is None else f32 * 1e3, "{:.1f}"),
                                 _f(_ms_of(t, "torch"), "{:.1f}"), _f(_ratio(b16, tor)),
                                 _f(_ratio(f32, tor)), _f(_ratio(b16, f32)),
                                 _f(err, "{:.1e}")])
                out += ["", "Training step in mixed precision (precision='bf16', numba backend: "
                            "bf16 operands, float32 sums) timed with the float32 steps above; "
                            "time ratios, < 1 means faster; the error is the largest against "
                            "the reference (outputs absolute, gradients relative)",
                        table(hdr, rows, rst)]
        if run["lm"]:
            r = run["lm"][0]
            t = r.get("times", {})
            hdr = [short[k] + " tok/s" for k in frs] + ["torch tok/s", "fastrnn/torch"]
            best = _get(t, r.get("best", {}).get("impl"), "tokens_per_s")
            row = [_f(_get(t, k, "tokens_per_s"), "{:.0f}") for k in frs]
            row += [_f(_get(t, "torch", "tokens_per_s"), "{:.0f}"),
                    _f(_ratio(best, _get(t, "torch", "tokens_per_s")))]
            c = LM
            out += ["", f"Char LSTM language model training (V {c['V']}, E {c['E']}, H {c['H']}, "
                        f"{c['B']} streams, bptt {c['bptt']}, Adam, clip {c['clip']:g}): tokens/s "
                        "(throughput ratio: > 1 means fastrnn is faster)", table(hdr, [row], rst)]
    mem = [r for r in results.get("memory", []) if "peak_delta_MiB" in r]
    if mem:
        keys = []
        for r in mem:
            if (r["group"], r["cell"]) not in keys:
                keys.append((r["group"], r["cell"]))
        impls = []
        for r in mem:
            if r["impl"] not in impls:
                impls.append(r["impl"])
        rows = []
        for g, c in keys:
            vals = {r["impl"]: r for r in mem if r["group"] == g and r["cell"] == c}
            row = [g[4:], c] + [_f(vals.get(i, {}).get("peak_delta_MiB"), "{:.1f}") for i in impls]
            fr = [vals[i]["peak_delta_MiB"] for i in impls if i in vals and i != "torch"]
            row.append(_f(min(fr) / vals["torch"]["peak_delta_MiB"]
                          if fr and "torch" in vals and vals["torch"]["peak_delta_MiB"] > 0
                          else None))
            row += [_f(vals.get(i, {}).get("tracemalloc_peak_MiB"), "{:.1f}") for i in impls
                    if i != "torch"]
            rows.append(row)
        hdr = ["config", "cell"] + [i.replace("fastrnn", "fr") + " MiB" for i in impls]
        hdr += ["fastrnn/torch"] + [i.replace("fastrnn", "fr") + " tracemalloc MiB" for i in impls
                                    if i != "torch"]
        out += ["", f"Peak memory of one training step: rise of the resident set in a fresh "
                    f"process ({mem[0]['method']}), {results['memory_threads']} thread(s); "
                    "tracemalloc: peak of numpy's allocations in the step", table(hdr, rows, rst)]
    skipped = collect_skips(results)
    if skipped:
        out += ["", "Skipped:"] + [f"  {k}: {v}" for k, v in skipped.items()]
    if rst:  # every line a paragraph of its own; no double blank lines
        paras = []
        for el in out:
            if el.startswith("  "):
                el = "* " + el.strip()
            if el:
                paras += [el, ""]
        return "\n".join(paras)
    return "\n".join(out)


def update_doc(path, text, start=".. results-start", end=".. results-end"):
    """Replace what lies between the ``start`` and ``end`` comment lines of a page by ``text``."""
    path = Path(path)
    lines = path.read_text().split("\n")
    try:
        i, j = lines.index(start), lines.index(end)
    except ValueError:
        raise SystemExit(f"{path} has no '{start}' / '{end}' lines to write the results between")
    lines[i + 1:j] = ["", *text.rstrip().split("\n"), ""]
    path.write_text("\n".join(lines))
    print(f"updated {path}", file=sys.stderr)


def collect_skips(results):
    """What was skipped and why, one entry per implementation and reason:
    ``{"<implementation> [<configs>]": reason}``."""
    skips = {}
    for run in results["runs"]:
        for sec in ("latency", "stream", "configs", "lm"):
            for row in run[sec]:
                for impl, why in row.get("skipped", {}).items():
                    skips.setdefault(f"{impl} ({row.get('config')})", why)
    for row in results.get("memory", []):
        for impl, why in row.get("skipped", {}).items():
            skips.setdefault(f"{impl} (memory {row.get('group')}-{row.get('cell')})", why)
    # one line per distinct reason and implementation
    merged = {}
    for k, why in skips.items():
        impl, cfg = k.split(" (", 1)
        key = (impl, why)
        merged.setdefault(key, []).append(cfg.rstrip(")"))
    return {f"{impl} [{', '.join(cfgs)}]": why for (impl, why), cfgs in merged.items()}
