"""Every CUDA kernel compiles to PTX with the real NVVM, for the GPUs the backend targets.

The simulator tests (tests/test_cuda.py) run the kernels as Python: a kernel that the simulator
accepts can still be refused by the CUDA compiler (an unsupported Python construct, a type that
only numpy knows). Here a simulator run records the argument types of every kernel launch of the
backend (tests/_cuda_signatures.py), and each recorded signature is compiled to PTX for compute
capabilities 7.0, 8.0 and 9.0 (tests/_cuda_ptx.py) in processes that use numba-cuda's real
compiler (``NUMBA_ENABLE_CUDASIM=0``, NVVM from the ``cuda`` extra); no GPU is needed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install fastrnn[cuda])")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAPABILITIES = ("7.0", "8.0", "9.0")


def _start(script, simulator, *args):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1" if simulator else "0",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, str(HERE / script), *args], env=env, cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(script, proc, stdin=None):
    out, err = proc.communicate(stdin, timeout=900)
    assert proc.returncode == 0, f"{script} failed:\n{err[-4000:]}"
    return json.loads(out)


def _run(script, simulator, *args, stdin=None):
    return _result(script, _start(script, simulator, *args), stdin)


@pytest.fixture(scope="module")
def launches():
    """The recording's parts, run side by side, merged."""
    parts = [_start("_cuda_signatures.py", True, part) for part in ("layers", "training")]
    records = [_result("_cuda_signatures.py", proc) for proc in parts]
    launched = {}
    for record in records:
        for kernel, sigs in record["launched"].items():
            merged = launched.setdefault(kernel, [])
            merged.extend(sig for sig in sigs if sig not in merged)
    return {"launched": launched, "defined": records[0]["defined"]}


@pytest.fixture(scope="module")
def compiled(launches):
    """The PTX compilation of the recorded launches for every capability, the processes run side
    by side (each takes a core's worth of NVVM time)."""
    pytest.importorskip("cuda.bindings", reason="NVVM comes with numba-cuda[cu12]")
    stdin = json.dumps(launches)
    procs = {cc: _start("_cuda_ptx.py", False, cc) for cc in CAPABILITIES}
    return {cc: _result("_cuda_ptx.py", proc, stdin) for cc, proc in procs.items()}


def test_the_recorded_run_launches_every_kernel_of_the_backend(launches):
    launched = launches["launched"]
    missing = sorted(set(launches["defined"]) - set(launched))
    assert not missing, f"kernels never launched by the recording run: {missing}"
    for dtype in ("float32", "float64"):
        assert any(["array", dtype] == a[:2] for sigs in launched.values() for s in sigs
                   for a in s), dtype


@pytest.mark.parametrize("cc", CAPABILITIES)
def test_every_launched_kernel_compiles_to_ptx(launches, compiled, cc):
    result = compiled[cc]
    assert result["failed"] == [], json.dumps(result["failed"][:3], indent=1)
    # each signature once, and the tiled product also at the GPU's tile side
    n_sigs = sum(len(s) for s in launches["launched"].values())
    n_gemm = sum(len(s) for k, s in launches["launched"].items() if "gemm_kernel" in k)
    assert result["compiled"] == n_sigs + n_gemm


def test_the_ptx_check_reports_a_kernel_the_gpu_compiler_refuses():
    # the harness itself: a kernel that the simulator would run (it calls numpy's inverse) but
    # NVVM cannot compile must come back as a failure, with the compiler's message
    result = _run("_cuda_ptx.py", False, "8.0", "--refused-kernel", stdin="{}")
    assert result["compiled"] == 0
    (failure,) = result["failed"]
    assert failure["kernel"] == "refused_kernel" and failure["error"]
