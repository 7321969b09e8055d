"""The on-disk cache of compiled kernels is stamped with every kernel source: a kernel whose
callee (in another file) changed compiles again instead of loading the old machine code."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")

RUN = textwrap.dedent("""
    import os, sys
    import fastrnn.kernels._jitcache as jc
    jc.PACKAGE_DIR = sys.argv[1]  # the package below gets the stamp (it is not fastrnn)
    sys.path.insert(0, os.path.dirname(sys.argv[1]))
    from pkg.caller import f
    print(f(1.0), sum(f.stats.cache_hits.values()))
""")

CALLER = textwrap.dedent("""
    import numba
    from .callee import g

    @numba.njit(cache=True)
    def f(x):
        return g(x) * 10.0
""")

CALLEE = textwrap.dedent("""
    import numba

    @numba.njit
    def g(x):
        return x + {}
""")


def _run(pkg):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", RUN, str(pkg)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    value, hits = out.stdout.split()
    return float(value), int(hits)


def test_a_kernel_compiles_again_when_a_function_it_calls_from_another_file_changes(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "caller.py").write_text(CALLER)
    (pkg / "callee.py").write_text(CALLEE.format("1.0"))
    assert _run(pkg) == (20.0, 0)  # compiled and written to the cache
    assert _run(pkg) == (20.0, 1)  # read back from the cache
    (pkg / "callee.py").write_text(CALLEE.format("2.0"))
    # the caller's file is unchanged, so Numba's own stamp would load the old machine code (20)
    assert _run(pkg) == (30.0, 0)


def test_the_digest_covers_the_kernels_and_every_file_that_names_numba(tmp_path):
    from fastrnn.kernels import _jitcache as jc

    names = [rel for rel, _ in jc._compiled_sources(jc.PACKAGE_DIR)]
    for rel in (os.path.join("kernels", "_gemm.py"), os.path.join("kernels", "_cellmath.py"),
                os.path.join("nn", "_dropout.py"), os.path.join("optim", "_fused.py")):
        assert rel in names
    assert os.path.join("estimators", "classifier.py") not in names
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("import numba\n")
    (tmp_path / "c.py").write_text("y = 2\n")
    first = jc.sources_digest(str(tmp_path))
    (tmp_path / "c.py").write_text("y = 3\n")  # not compiled from: the same digest
    jc.sources_digest.cache_clear()
    assert jc.sources_digest(str(tmp_path)) == first
    (tmp_path / "kernels" / "a.py").write_text("x = 2\n")
    jc.sources_digest.cache_clear()
    assert jc.sources_digest(str(tmp_path)) != first
