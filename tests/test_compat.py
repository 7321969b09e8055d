"""Results are stable across versions: layers, fitted estimators and a language model reproduce what
``tests/make_compat_fixture.py`` stored in ``tests/data/compat`` (see ``tests/_compat_cases.py``).

On a machine of the kind that wrote the fixture (same vector extensions and BLAS kernels) every
array must be equal bit for bit; elsewhere the float32 products of another BLAS kernel round
differently, and the comparison uses a tolerance per dtype instead. The float32 inference of one
sequence on the Cython backend is the exception: it runs in one C call
(``fastrnn/_cy/_infer.pyx``) whose sums are ordered otherwise than the BLAS products of the
kernels that wrote those results, so they are held to the float32 tolerance everywhere.
"""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastrnn
import _compat_cases as cases
from conftest import CPU_BACKENDS

DATA = Path(__file__).resolve().parent / "data" / "compat"
STORED = np.load(DATA / "results.npz")
SAME_MACHINE = (json.loads((DATA / "machine.json").read_text())["signature"]
                == cases.machine_signature())


#: results computed by the one-sequence float32 kernel: a layer's ``Y_batch1`` on the Cython
#: backend, and what a language model predicts from one text (``backend="auto"`` routes it there)
ONE_SEQUENCE = re.compile(
    r"^(layer/[^/]+/[^/]+/cython/float32/Y_batch1|(est|fit)/lm\.fastrnn/next)$")


def _compare(prefix, results, computed_in=None):
    """Compare ``results`` with the stored arrays under ``prefix``. ``computed_in``: the dtype the
    model computes in, where a result's own dtype does not say it (a float32 model's predictions
    returned as float64, a perplexity): its tolerance elsewhere is that dtype's."""
    keys = sorted(k for k in STORED.files if k.startswith(prefix + "/"))
    assert keys, f"nothing stored under {prefix}"
    got = {f"{prefix}/{k}": v for k, v in results.items()}
    assert sorted(got) == keys, "the results computed differ from those stored"
    for k in keys:
        want, have = STORED[k], np.asarray(got[k])
        assert have.shape == want.shape and have.dtype == want.dtype, k
        if SAME_MACHINE and not ONE_SEQUENCE.match(k):
            np.testing.assert_array_equal(have, want, err_msg=k)
        else:  # the one-sequence results are float32 computations, whatever their dtype
            f32 = np.float32 in (want.dtype, computed_in) or ONE_SEQUENCE.match(k)
            rtol = 1e-4 if f32 else 1e-10
            np.testing.assert_allclose(have, want, rtol=rtol, atol=rtol, err_msg=k)


@pytest.mark.parametrize("cell", [c[0] for c in cases.CELLS])
@pytest.mark.parametrize("shape", [s[0] for s in cases.SHAPES])
@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_layers_reproduce_stored_results(cell, shape, dt, backend):
    res = cases.layer_case(cell, shape, backend, np.dtype(dt))
    prefix = f"layer/{cell}/{shape}/{backend}/{dt}"
    if backend != "numpy":  # parameters are stored once, under the first backend
        res = {k: v for k, v in res.items() if not k.startswith("param/")}
    _compare(prefix, res)


@pytest.mark.parametrize("name", [e[0] for e in cases.ESTIMATORS])
def test_saved_estimators_predict_as_before(name):
    """A model file written by an earlier version predicts exactly as it did then."""
    model = fastrnn.load(DATA / name)
    _compare(f"est/{name}", cases.estimator_outputs(model, name), np.dtype(model.dtype))


@pytest.mark.parametrize("name", [e[0] for e in cases.ESTIMATORS])
def test_estimators_fit_as_before(name):
    """Fitting with the same seed gives the same model (unless training was changed on purpose:
    then the fixture's fit results were rewritten, see tests/make_compat_fixture.py)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cases.fit_estimator(name)
    _compare(f"fit/{name}", cases.estimator_outputs(model, name), np.dtype(model.dtype))


def test_saved_language_model_scores_as_before():
    model = fastrnn.load(DATA / "lm.fastrnn")
    _compare("est/lm.fastrnn", cases.lm_outputs(model), np.dtype(model.dtype))


def test_language_model_fits_as_before():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cases.fit_lm()
    _compare("fit/lm.fastrnn", cases.lm_outputs(model), np.dtype(model.dtype))


def test_fixture_covers_every_backend_of_this_run():
    stored = {k.split("/")[3] for k in STORED.files if k.startswith("layer/")}
    assert set(CPU_BACKENDS) <= stored
