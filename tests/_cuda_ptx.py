"""Compile CUDA kernels to PTX with the real NVVM, no GPU needed.

Run as a script with ``NUMBA_ENABLE_CUDASIM=0``, the JSON written by tests/_cuda_signatures.py on
stdin and one compute capability as argument (``8.0``). It imports the kernel modules of
:mod:`fastrnn.kernels.cuda` without the package's ``__init__`` (which refuses to load on a machine
without a CUDA driver), compiles every recorded kernel signature for that capability with
``numba.cuda.compile_ptx``, and prints one JSON object ``{"compiled": n, "failed": [...]}`` where
each failure names the kernel, the signature, the capability and NVVM's message.
"""

import importlib
import json
import sys
import types
from pathlib import Path

import numpy as np
from numba import cuda
from numba.core import types as nbtypes

import fastrnn.kernels

PKG = "fastrnn.kernels.cuda"


def _import_kernel_modules():
    package = types.ModuleType(PKG)
    package.__path__ = [str(Path(fastrnn.kernels.__file__).parent / "cuda")]
    sys.modules[PKG] = package


def _type(desc):
    if desc[0] == "array":
        _, dtype, ndim, layout = desc
        return nbtypes.Array(getattr(nbtypes, dtype), ndim, layout)
    return getattr(nbtypes, desc[1])


def _functions(name):
    """``(label, python function)`` of the kernel ``name``; the tiled product's factory builds it
    at the tile side the simulator ran and at the one a GPU runs (:data:`TILE` off the
    simulator)."""
    module, qualname = name.split(":")
    mod = importlib.import_module(module)
    if "[" not in qualname:
        return [(name, getattr(mod, qualname).py_func)]
    qualname, args = qualname[:-1].split("[")
    scalar, tile = args.split(",")
    assert qualname == "_build.<locals>.gemm_kernel", f"unknown kernel factory: {name}"
    return [(f"{module}:{qualname}[{scalar},{t}]", mod._build(getattr(np, scalar), t).py_func)
            for t in sorted({int(tile), mod.TILE})]


def _compile_device_functions_for(cc):
    """numba-cuda compiles the device functions a kernel calls for the current GPU's capability,
    which it asks the driver for; there is no driver here, so answer with ``cc`` (one capability
    per process: the device functions are compiled once and cached)."""
    from numba.cuda import dispatcher

    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)


def refused_kernel(a):
    """A kernel the simulator runs (it is Python) and NVVM must refuse: ``--refused-kernel``
    compiles only this one, so that the test sees a failure reported."""
    a[0] = np.linalg.inv(a)[0]


def main():
    cc = tuple(int(p) for p in sys.argv[1].split("."))
    _compile_device_functions_for(cc)
    if "--refused-kernel" in sys.argv:
        kernels = [("refused_kernel", [[["array", "float64", 2, "C"]]], refused_kernel)]
    else:
        _import_kernel_modules()
        launched = json.load(sys.stdin)["launched"]
        kernels = [(label, sigs, fn) for name, sigs in sorted(launched.items())
                   for label, fn in _functions(name)]
    compiled, failed = 0, []
    for label, sigs, fn in kernels:
        for sig in sigs:
            try:
                ptx, _ = cuda.compile_ptx(fn, tuple(_type(d) for d in sig), cc=cc)
                assert ".entry" in ptx, "no kernel entry point in the PTX"
                compiled += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported
                failed.append(dict(kernel=label, signature=sig, cc=list(cc),
                                   error=f"{type(exc).__name__}: {exc}"[:2000]))
    json.dump({"compiled": compiled, "failed": failed}, sys.stdout)


if __name__ == "__main__":
    main()
