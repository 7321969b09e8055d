"""The binary wheel: built from a copy of the source tree, installed into a fresh virtual
environment with numpy and scipy only (no compiler on the path, no scikit-learn, no Numba), where a
model saved by the source tree predicts exactly as it does here."""

import os
import shutil
import subprocess
import sys
import venv
import warnings

import numpy as np
import pytest
import scipy

import fastrnn
from fastrnn import RNNClassifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "_build", "__pycache__", ".asv",
                              "*.so", "*.egg-info", ".pytest_cache", ".hypothesis")

SERVE = """
import sys
import numpy as np
import fastrnn
X = list(np.load(sys.argv[1]))
for i, path in enumerate(sys.argv[2:]):
    np.save(f"p{i}.npy", fastrnn.load_predictor(path).predict_proba(X))
print(fastrnn.__file__)
print(fastrnn.available_backends()["cython"][0])
print(*(m in sys.modules for m in ("sklearn", "numba")))
"""


def _run(cmd, env, cwd, timeout=900):
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd[:4]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.slow
def test_the_wheel_serves_a_model_with_numpy_and_scipy_only(tmp_path):
    pytest.importorskip("Cython")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SKIP)
    env = dict(os.environ, FASTRNN_REQUIRE_CYTHON="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp_path / "dist"), str(src)], env, tmp_path)
    (wheel,) = (tmp_path / "dist").glob("fastrnn-*.whl")
    assert "-linux_" in wheel.name or "-manylinux" in wheel.name  # a binary wheel

    target = tmp_path / "serve"
    venv.EnvBuilder(with_pip=True).create(target)
    python = str(target / "bin" / "python")
    # no compiler reachable: only the new environment's own programs
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    bare.update(PATH=str(target / "bin"), CC="false", CXX="false")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel),
          f"numpy=={np.__version__}", f"scipy=={scipy.__version__}"], bare, tmp_path)

    rng = np.random.RandomState(0)
    X = rng.normal(size=(12, 9, 3))
    y = rng.randint(0, 3, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the Cython kernels here too (without Numba, "auto" runs every call on them there)
        clf = RNNClassifier(hidden_size=6, max_iter=2, random_state=0, backend="cython").fit(X, y)
        auto = RNNClassifier(hidden_size=6, max_iter=2, random_state=0).fit(X, y)
    clf.save(tmp_path / "clf.fastrnn")
    auto.save(tmp_path / "auto.fastrnn")
    np.save(tmp_path / "x.npy", X)
    lines = _run([python, "-I", "-c", SERVE, str(tmp_path / "x.npy"), str(tmp_path / "clf.fastrnn"),
                  str(tmp_path / "auto.fastrnn")], bare, tmp_path).split()
    assert lines[0].startswith(str(target))  # the installed package, not the source tree
    assert lines[1:] == ["True", "False", "False"]  # the wheel's Cython kernels; no sklearn/numba
    np.testing.assert_array_equal(np.load(tmp_path / "p0.npy"), clf.predict_proba(X))
    # a model of backend="auto": Numba's kernels here, the Cython kernels there
    np.testing.assert_allclose(np.load(tmp_path / "p1.npy"), auto.predict_proba(X), atol=1e-6)
