"""Peak memory of one training step, each (implementation, configuration) in a fresh process.

The child builds the model and the inputs, runs a tiny step so that code and allocators are
initialised, then measures the rise of its resident set during one real training step (see
:func:`measure_step_memory`); for fastrnn ``tracemalloc`` also gives the peak of numpy's
allocations in the step.
"""

import gc
import json

from .harness import run_script
from .impls import SameWeights, backend_status
from .workloads import SHAPES, Shape, split_config


def _proc_status_kib(*keys):
    """``{key: KiB}`` from ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0])
    return out


def _release_free_memory():
    """Collect garbage and hand the allocator's free pages back to the system (glibc
    ``malloc_trim``), so that the step's allocations show as a rise of the resident set."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss():
    """Reset the kernel's high-water mark of the resident set to the current value (Linux >= 4.0);
    ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_step_memory(step):
    """Peak rise of the resident set during ``step()``, in MiB, and the method used.

    With Linux's resettable high-water mark: ``VmHWM`` after the step minus ``VmRSS`` before it
    (after freeing what the allocator holds). Elsewhere: the rise of ``ru_maxrss``, which misses
    any part of the step's peak that stays under an earlier peak of the process.
    """
    _release_free_memory()
    if _reset_peak_rss():
        before = _proc_status_kib("VmRSS")["VmRSS"]
        step()
        after = _proc_status_kib("VmHWM")["VmHWM"]
        return (after - before) / 1024, before / 1024, "VmHWM - VmRSS (clear_refs reset)"
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) / 1024, before / 1024, "ru_maxrss rise"


def memory_child(spec):
    """Body of a fresh process: the peak memory of one training step of one implementation."""
    group, cell, impl = spec["group"], spec["cell"], spec["impl"]
    shape = SHAPES[group]
    tiny = Shape(1, 2, shape.I, shape.H, shape.layers, shape.bidir)
    out = dict(group=group, cell=cell, impl=impl)
    if impl.startswith("fastrnn["):
        bk = impl[len("fastrnn["):-1]
        sw = SameWeights(cell, shape, [bk], use_torch=False, use_ort=False)
        if bk not in sw.fr:
            return dict(out, skipped=sw.skipped)
        small = SameWeights(cell, tiny, [bk], use_torch=False, use_ort=False)
        step, warm = sw.fr_train(bk), small.fr_train(bk)
    else:
        sw = SameWeights(cell, shape, [], use_torch=True, use_ort=False)
        if sw.tm is None:
            return dict(out, skipped=sw.skipped)
        small = SameWeights(cell, tiny, [], use_torch=True, use_ort=False)
        step, warm = sw.torch_train(), small.torch_train()
    warm()
    delta, before, method = measure_step_memory(step)
    out.update(peak_delta_MiB=delta, rss_before_MiB=before, method=method)
    if impl.startswith("fastrnn["):
        import tracemalloc
        gc.collect()
        tracemalloc.start()
        step()
        out["tracemalloc_peak_MiB"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    out["params_MiB"] = sum(v.nbytes for v in sw.state.values()) / 2 ** 20
    out["input_MiB"] = (sw.X.nbytes + sw.G.nbytes) / 2 ** 20
    return out


def run_memory(args, threads, log, script):
    """The memory rows of ``args.config_ids`` (``mem-*``), each implementation measured by
    ``script --_memory SPEC`` in a fresh process with ``threads`` threads (see
    :func:`.harness.run_script`), which answers with :func:`memory_child`'s result."""
    rows = []
    impls = [f"fastrnn[{bk}]" for bk in args.backends]
    if not args.no_torch:
        impls.append("torch")
    for cid in args.config_ids:
        group, cell = split_config(cid)
        if not group.startswith("mem-"):
            continue
        for impl in impls:
            if impl.startswith("fastrnn["):
                ok, why = backend_status(impl[len("fastrnn["):-1])
                if not ok:
                    rows.append(dict(group=group, cell=cell, impl=impl, skipped={impl: why}))
                    continue
            spec = dict(group=group, cell=cell, impl=impl)
            r = run_script(script, ["--_memory", json.dumps(spec)], threads)
            rows.append(r)
            if "peak_delta_MiB" in r:
                log(f"  memory {group[4:]} {cell} {impl}: +{r['peak_delta_MiB']:.1f} MiB")
    return rows
