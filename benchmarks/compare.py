#!/usr/bin/env python
"""fastrnn side by side with PyTorch and ONNX Runtime: same weights, same threads, same inputs.

Workloads (``--configs``; a group name selects all its cells, ``B-LSTM`` one cell):

``latency``  forward of one sequence: batch 1, T 100, I 64, H 128 (LSTM, GRU, RNN);
``stream``   per-step cost of a streaming step on the same layer (fastrnn's ``init_state``/``step``
             where the layers have them, fastrnn ``forward`` of one step, PyTorch, ONNX Runtime);
``B``        B 32, T 100, I 128, H 256 (LSTM, GRU, RNN): forward and training step;
``C``        B 64, T 50, I 256, H 512 (LSTM, GRU): forward and training step;
``D``        B 32, T 100, I 128, H 256, 2 layers, bidirectional (LSTM, GRU);
``lm``       char LSTM language model training (V 96, E 64, H 256, 32 streams, bptt 64, Adam,
             clip 5);
``mem-B``, ``mem-C``, ``mem-D`` (``memory``)  peak memory of one training step.

How it measures: every thread count runs in its own fresh worker process whose environment sets
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``NUMBA_NUM_THREADS``
before anything is imported; inside it ``torch.set_num_threads``, ``threadpoolctl`` and ONNX
Runtime's ``intra_op_num_threads`` are set to the same count. Within a worker the implementations
share one set of weights and inputs, are checked to give the same outputs (and gradients) before
any timing, then are timed interleaved (the order rotates every repeat) after
warm-up; the figure is the median. A training step is forward + backward of ``L = sum(Y * G)`` for a
fixed random ``G`` (a loss on all outputs), with the gradient of the input computed by both
libraries (fastrnn always computes it; PyTorch is asked to, so both do the same work).

Peak memory runs each (implementation, configuration) in a fresh process: build the model and the
inputs, run a tiny step so code and allocators are initialised, then measure the rise of the
resident set during one real training step (on Linux the high-water mark ``VmHWM``, reset just
before, minus ``VmRSS`` before the step; elsewhere the rise of ``ru_maxrss``); that is the step's
own peak (activations, caches, gradients, workspaces). For fastrnn ``tracemalloc`` also gives the
peak of numpy's allocations in the step.

Run ``python benchmarks/compare.py --quick`` (under about two minutes) or without ``--quick`` for
more repeats; ``--json OUT`` chooses where the JSON goes (default ``benchmarks/.asv/compare.json``,
which git ignores). ``--update-doc docs/benchmarks.rst --plot docs/_static/benchmarks.png``
rewrites the tables of the documentation and draws its bar chart (matplotlib) in the same command,
after a run or from a saved one (``--render JSON``). PyTorch and ONNX Runtime are optional: rows
that need a missing one are skipped and listed with the reason.

This script holds the command line and the main loops of the processes; the machinery lives in
``benchmarks/_compare/``: ``harness`` (threads, interleaved timing, medians, matrix-product rate,
worker processes), ``workloads`` (shapes and configuration names), ``impls`` and ``lm`` (the
implementations under test and their checks), ``runs`` (one workload measured), ``memory`` (peak
memory probes), ``report`` (tables, documentation page) and ``chart`` (the bar chart). Its names
are importable from here too, as the other benchmark scripts and the asv suite do.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the package _compare next to this script

from _compare.chart import (CHART_END, CHART_START, chart_panels, figure_rst,  # noqa: E402
                            plot)
from _compare.chart import pyplot as chart_pyplot  # noqa: E402
from _compare.harness import (THREAD_ENV, default_settle, interleaved,  # noqa: E402
                              json_default, machine_info, matmul_peak, run_script, set_threads,
                              thread_env, try_ort, try_torch)
from _compare.impls import (GRAD_TOL, ONNX_OPSET, OUT_TOL, MismatchError,  # noqa: E402
                            SameWeights, backend_status, check_same_outputs, fastrnn_layer,
                            max_err, ort_session, torch_module)
from _compare.lm import LMRun  # noqa: E402
from _compare.memory import measure_step_memory, memory_child, run_memory  # noqa: E402
from _compare.report import collect_skips, headline, render, table, update_doc  # noqa: E402
from _compare.runs import run_config, run_latency, run_lm, run_stream  # noqa: E402
from _compare.workloads import (ALIASES, ALL_CONFIGS, DEFAULT_CONFIGS,  # noqa: E402
                                GATES, GROUP_CELLS, LATENCY, LM, QUICK_CONFIGS, SHAPES, Shape,
                                forward_flops, parse_configs, split_config)

__all__ = [
    # harness
    "THREAD_ENV", "default_settle", "interleaved", "json_default", "machine_info", "matmul_peak",
    "run_script", "set_threads", "thread_env", "try_ort", "try_torch",
    # implementations
    "GRAD_TOL", "ONNX_OPSET", "OUT_TOL", "MismatchError", "SameWeights", "backend_status",
    "check_same_outputs", "fastrnn_layer", "max_err", "ort_session", "torch_module", "LMRun",
    # memory, report, runs
    "measure_step_memory", "memory_child", "run_memory", "collect_skips", "headline", "render",
    "table", "update_doc", "run_config", "run_latency", "run_lm", "run_stream",
    # chart
    "CHART_END", "CHART_START", "chart_panels", "figure_rst", "plot",
    # workloads
    "ALIASES", "ALL_CONFIGS", "DEFAULT_CONFIGS", "GATES", "GROUP_CELLS", "LATENCY", "LM",
    "QUICK_CONFIGS", "SHAPES", "Shape", "forward_flops", "parse_configs", "split_config",
    # this script
    "DEFAULT_JSON", "RUN_SETTINGS", "SCRIPT", "build_parser", "parse_args", "worker", "report",
    "main",
]

DEFAULT_JSON = HERE / ".asv" / "compare.json"
SCRIPT = Path(__file__).resolve()


# ====================================================================================== arguments
def build_parser():
    p = argparse.ArgumentParser(
        prog="compare.py",
        description="fastrnn vs PyTorch vs ONNX Runtime: same weights, same threads, interleaved "
                    "medians (see the module docstring for the method).")
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and cells (LSTM only for C, D and memory): under ~2 minutes")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts, each run in its own fresh process (default: 1 2)")
    p.add_argument("--configs", nargs="+", default=None,
                   help="workloads: latency stream B C D lm mem-B mem-C mem-D, aliases train "
                        "memory all, or single cells like B-LSTM (default: all; --quick: a subset)")
    p.add_argument("--backends", nargs="+", default=["numba", "cython"],
                   help="fastrnn backends to time; unavailable ones are skipped with the reason "
                        "(default: numba cython)")
    p.add_argument("--json", default=str(DEFAULT_JSON), metavar="OUT",
                   help=f"where to save the results as JSON (default: {DEFAULT_JSON})")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    p.add_argument("--warmup", type=int, default=None, help="warm-up calls per implementation")
    p.add_argument("--settle", type=float, default=None, metavar="S",
                   help="pause S seconds before each sample so the previous library's idle "
                        "threads stop spinning, then wake this one's with 20 ms of untimed calls "
                        "(default: 0.12 at more than one thread, else 0)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch (and so ONNX Runtime)")
    p.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    p.add_argument("--rst", action="store_true", help="print the tables as reStructuredText")
    p.add_argument("--render", default=None, metavar="JSON",
                   help="print the tables of a saved run (no measuring)")
    p.add_argument("--update-doc", default=None, metavar="RST",
                   help="also write the tables (reStructuredText) into this page, between its "
                        "'.. results-start' and '.. results-end' comments (and, with --plot, "
                        "the chart between '.. chart-start' and '.. chart-end')")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="draw the bar chart of the run (time relative to PyTorch) into this PNG; "
                        "needs matplotlib")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    return p


#: the settings of a ``--quick`` and of a full run: ``repeats`` and ``warmup`` are the defaults of
#: those options, ``latency_repeats`` the fewest repeats of a latency measurement, ``min_time`` the
#: shortest sample (s), ``lm_steps`` the language model's timed chunks, ``max_time`` the most
#: seconds one measurement may take
RUN_SETTINGS = {
    "quick": dict(repeats=3, latency_repeats=5, warmup=1, min_time=0.01, lm_steps=6, max_time=4.0),
    "full": dict(repeats=7, latency_repeats=21, warmup=2, min_time=0.05, lm_steps=20,
                 max_time=60.0),
}


def parse_args(argv=None):
    """Parse the command line and fill in the settings that depend on ``--quick``."""
    args = build_parser().parse_args(argv)
    for n in args.threads:
        if n < 1:
            raise SystemExit(f"--threads must be positive integers, got {args.threads}")
    tokens = args.configs or (QUICK_CONFIGS if args.quick else DEFAULT_CONFIGS)
    try:
        args.config_ids = parse_configs(tokens)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    run = RUN_SETTINGS["quick" if args.quick else "full"]
    args.repeats = args.repeats or run["repeats"]
    args.latency_repeats = max(args.repeats, run["latency_repeats"])
    args.warmup = run["warmup"] if args.warmup is None else args.warmup
    args.min_time, args.lm_steps, args.max_time = run["min_time"], run["lm_steps"], run["max_time"]
    if args.plot is not None and args._worker is None and args._memory is None:
        try:  # before a run of many minutes, not after it
            chart_pyplot()
        except ImportError as exc:
            raise SystemExit(f"--plot {args.plot}: {exc}") from None
    return args


# ====================================================================================== workers
def _subprocess(extra, threads, log=None):
    """This script in a fresh process (see :func:`_compare.harness.run_script`)."""
    return run_script(SCRIPT, extra, threads)


def worker(spec, json_out):
    """Body of a worker process (``--_worker SPEC``): apply the thread count of ``spec``, measure
    the matrix-product rate, run every timing workload of ``spec["config_ids"]`` and write the
    results to ``json_out``."""
    args = argparse.Namespace(**spec)
    threads = args.threads
    if args.settle is None:
        args.settle = default_settle(threads)

    def log(msg):
        print(f"[{threads} thread{'s' if threads > 1 else ''}] {msg}", file=sys.stderr, flush=True)

    import fastrnn  # noqa: F401 - load the backends under the thread settings
    info = set_threads(threads)
    info["settle_s"] = args.settle
    load_start = os.getloadavg()
    torch = None if args.no_torch else try_torch()[0]
    peak = matmul_peak(5 if args.quick else 9, torch=torch, settle=args.settle)
    log("matmul peak: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()))
    t_worker = time.perf_counter()
    result = dict(threads=threads, thread_info=info, peak_flops=peak, latency=[], stream=[],
                  configs=[], lm=[])
    for cid in args.config_ids:
        group, cell = split_config(cid)
        if group == "latency":
            result["latency"].append(run_latency(cell, args, threads, log))
        elif group == "stream":
            result["stream"].append(run_stream(cell, args, threads, log))
        elif group in ("B", "C", "D"):
            result["configs"].append(run_config(group, cell, args, threads, peak, log))
        elif group == "lm":
            result["lm"].extend(run_lm(args, threads, log))
    # the peak again at the end: on a busy machine one measurement can come out low
    peak_end = matmul_peak(5 if args.quick else 9, torch=torch, settle=args.settle)
    result["peak_flops_end"] = peak_end
    best = max(peak["numpy"], peak_end["numpy"])
    for row in result["configs"]:
        for sec in ("forward", "train"):
            for v in row[sec].values():
                v["peak_share"] *= peak["numpy"] / best
    result["peak_numpy_used"] = best
    result["loadavg"] = dict(start=load_start, end=os.getloadavg())
    result["wall_s"] = time.perf_counter() - t_worker
    Path(json_out).write_text(json.dumps(result, default=json_default))


# ====================================================================================== main
def report(results, args):
    """Print the tables of ``results``; with ``--update-doc`` write them into the page, with
    ``--plot`` draw the chart (and, with both, put the chart on the page too)."""
    print(render(results, rst=args.rst))
    if args.update_doc:
        update_doc(args.update_doc, render(results, rst=True))
    if args.plot:
        try:
            plot(results, args.plot)
        except (ImportError, ValueError) as exc:
            raise SystemExit(f"--plot {args.plot}: {exc}") from None
        print(f"saved {args.plot}", file=sys.stderr)
        if args.update_doc:
            update_doc(args.update_doc, figure_rst(args.plot, args.update_doc, results),
                       start=CHART_START, end=CHART_END)
    elif args.update_doc:
        # the page's chart, if it has one, shows another run than its new tables: take it off
        lines = Path(args.update_doc).read_text().split("\n")
        if CHART_START in lines and CHART_END in lines and any(
                line.strip()
                for line in lines[lines.index(CHART_START) + 1:lines.index(CHART_END)]):
            update_doc(args.update_doc, "", start=CHART_START, end=CHART_END)
            print(f"took the chart of an earlier run off {args.update_doc}; --plot PNG draws "
                  "this run's", file=sys.stderr)


def main(argv=None):
    """The command line: measure (or, with ``--render``, print a saved run); return 0."""
    args = parse_args(argv)
    if args._worker is not None:
        spec = json.loads(args._worker)
        worker(spec, args.json)
        return 0
    if args._memory is not None:
        spec = json.loads(args._memory)
        Path(args.json).write_text(json.dumps(memory_child(spec), default=json_default))
        return 0
    if args.render is not None:
        results = json.loads(Path(args.render).read_text())
        report(results, args)
        return 0

    t_start = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    meta = machine_info()
    log(f"compare.py: configs {' '.join(args.config_ids)}; threads {args.threads}; backends "
        f"{args.backends}; repeats {args.repeats} (latency {args.latency_repeats}), warm-up "
        f"{args.warmup}")
    for mod, name in (("torch", "PyTorch"), ("onnxruntime", "ONNX Runtime")):
        if meta["versions"].get(mod) is None:
            log(f"note: {name} is not installed: its rows are skipped")
    results = dict(meta=meta, settings=dict(
        configs=args.config_ids, threads=args.threads, backends=args.backends, repeats=args.repeats,
        latency_repeats=args.latency_repeats, warmup=args.warmup, min_time=args.min_time,
        max_time=args.max_time, settle=args.settle,
        lm_steps=args.lm_steps, quick=args.quick, onnx_opset=ONNX_OPSET,
        tolerances=dict(outputs=OUT_TOL, gradients=GRAD_TOL)), runs=[], memory=[])
    timing_ids = [c for c in args.config_ids if not c.startswith("mem-")]
    for n in args.threads:
        if not timing_ids:
            break
        spec = dict(vars(args), threads=n, config_ids=timing_ids, _worker=None, _memory=None)
        results["runs"].append(_subprocess(["--_worker", json.dumps(spec)], n, log))
    results["memory_threads"] = args.threads[0]
    results["memory"] = run_memory(args, args.threads[0], log, SCRIPT)
    results["wall_s"] = time.perf_counter() - t_start
    if args.json:  # first: a report that fails must not lose the run
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1, default=json_default))
        log(f"\nsaved {path} ({results['wall_s']:.0f} s in all)")
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
