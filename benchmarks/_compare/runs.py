"""One workload measured inside a worker process: its implementations built with the same weights,
checked against each other, timed interleaved, and turned into a row of the results (JSON).

Every ``run_*`` takes the parsed command line ``args`` (repeats, warm-up, settling, backends,
libraries left out), the thread count of the worker and a ``log`` function for progress lines.
"""

from .harness import interleaved
from .impls import BF16, SameWeights
from .lm import LMRun
from .workloads import LM, SHAPES, forward_flops


def _ms(r):
    """A timing result's median in milliseconds."""
    return r["median"] * 1e3


def run_latency(cell, args, threads, log):
    """Forward of one sequence (``SHAPES["latency"]``): outputs checked, then timed."""
    sw = SameWeights(cell, SHAPES["latency"], args.backends, threads, not args.no_torch,
                     not args.no_ort, args.seed)
    errors = sw.check(grads=False)
    fns = {f"fastrnn[{bk}]": sw.fr_forward(bk) for bk in sw.fr}
    if sw.tm is not None:
        fns["torch"] = sw.torch_forward()
    if sw.sess is not None:
        fns["ort"] = sw.ort_forward()
    res = interleaved(fns, args.latency_repeats, args.warmup, args.min_time, args.settle,
                      args.max_time)
    row = dict(config=f"latency-{cell}", cell=cell, shape=SHAPES["latency"].as_dict(),
               errors=errors, skipped=sw.skipped, times=res)
    _add_best(row, res)
    log(f"  latency {cell}: " + ", ".join(f"{k} {_ms(v):.3f} ms" for k, v in res.items()))
    return row


def _add_best(row, res, key="best"):
    """Record the fastest fastrnn backend of ``res`` (and its median) under ``row[key]``."""
    fr = {k: v["median"] for k, v in res.items() if k.startswith("fastrnn[")}
    if fr:
        best = min(fr, key=fr.get)
        row[key] = dict(impl=best, median=fr[best])


def run_stream(cell, args, threads, log):
    """All steps of ``SHAPES["stream"]`` fed one at a time, carrying the state; time per step."""
    sw = SameWeights(cell, SHAPES["stream"], args.backends, threads, not args.no_torch,
                     not args.no_ort, args.seed, stream=True)
    fns, skipped = sw.stream_fns()
    errors, failures = sw.check_stream(fns)
    skipped.update({k: f"failed its check: {v}" for k, v in failures.items()})
    skipped.update({k: v for k, v in sw.skipped.items() if not k.startswith("fastrnn")})
    T = SHAPES["stream"].T
    res = (interleaved(fns, args.repeats, args.warmup, args.min_time, args.settle,
                       args.max_time) if fns else {})
    for v in res.values():  # per step
        v["median"] /= T
        v["times"] = [t / T for t in v["times"]]
    row = dict(config=f"stream-{cell}", cell=cell, shape=SHAPES["stream"].as_dict(), errors=errors,
               skipped=skipped, times=res)
    log(f"  stream {cell}: " + ", ".join(f"{k} {v['median'] * 1e6:.1f} us/step"
                                         for k, v in res.items()))
    return row


def run_config(group, cell, args, threads, peaks, log):
    """Forward and training step of config ``group`` (B, C or D); outputs and gradients checked.
    ``peaks`` (FLOP/s by library) gives the share of the matrix-product rate."""
    shape = SHAPES[group]
    sw = SameWeights(cell, shape, args.backends, threads, not args.no_torch, not args.no_ort,
                     args.seed)
    errors = sw.check(grads=True)
    fwd = {f"fastrnn[{bk}]": sw.fr_forward(bk) for bk in sw.fr}
    train = {f"fastrnn[{bk}]": sw.fr_train(bk) for bk in sw.fr}
    bf16_errors = None
    if "numba" in sw.fr:  # mixed precision, timed with the others (ratios of one run)
        step, bf16_errors = sw.bf16_train()
        if step is None:
            sw.skipped[BF16], bf16_errors = bf16_errors, None
        else:
            train[BF16] = step
    if sw.tm is not None:
        fwd["torch"] = sw.torch_forward()
        train["torch"] = sw.torch_train()
    if sw.sess is not None:
        fwd["ort"] = sw.ort_forward()
    res_f = interleaved(fwd, args.repeats, args.warmup, args.min_time, args.settle,
                        args.max_time)
    res_t = interleaved(train, args.repeats, args.warmup, args.min_time, args.settle,
                        args.max_time)
    flops = forward_flops(cell, shape)
    peak = peaks["numpy"]
    row = dict(config=f"{group}-{cell}", group=group, cell=cell, shape=shape.as_dict(),
               errors=errors, bf16_errors=bf16_errors, skipped=sw.skipped, forward=res_f,
               train=res_t,
               forward_flops=flops, train_flops=3 * flops, tokens=shape.B * shape.T)
    for v in res_f.values():
        v["peak_share"] = flops / v["median"] / peak
    for v in res_t.values():
        v["peak_share"] = 3 * flops / v["median"] / peak
        v["tokens_per_s"] = shape.B * shape.T / v["median"]
    _add_best(row, res_f, "forward_best")
    _add_best(row, res_t, "train_best")
    log(f"  {group} {cell}: forward " + ", ".join(f"{k} {_ms(v):.1f}" for k, v in res_f.items())
        + " ms; train " + ", ".join(f"{k} {_ms(v):.1f}" for k, v in res_t.items()) + " ms")
    return row


def run_lm(args, threads, log):
    """Training chunks of the char language model; losses checked, then tokens per second."""
    c = LM
    run = LMRun(args.backends, not args.no_torch, args.seed)
    err = run.check()
    res = (interleaved(run.fns(), args.lm_steps, args.warmup, 0.0, args.settle, args.max_time)
           if run.nets else {})
    for v in res.values():
        v["tokens_per_s"] = c["B"] * c["bptt"] / v["median"]
    row = dict(config="lm", lm=dict(c), loss_error=err, times=res, skipped=run.skipped)
    _add_best(row, res)
    log("  lm: " + ", ".join(f"{k} {v['tokens_per_s']:.0f} tokens/s" for k, v in res.items()))
    return [row]
