"""The documentation: docstring examples run and pass, and the Sphinx build has no warning.

The fast tests run the ``>>>`` examples of the docstrings (the recurrent layers on every CPU
backend) and of the user-facing pages with the standard :mod:`doctest` module. The slow tests
build the HTML documentation exactly as ``make docs`` does (``-W``: warnings are errors) into a
temporary folder, and run Sphinx's doctest builder over every page and docstring it renders.
"""

import doctest
import importlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# modules whose docstring examples are rendered in the API reference
DOCSTRING_MODULES = [
    "fastrnn.datasets._synthetic",
    "fastrnn.text._padding",
    "fastrnn.text._tokenize",
    "fastrnn.text._vocab",
    "fastrnn.text._vectorizer",
    "fastrnn.train._loop",
    "fastrnn.optim._schedules",
    "fastrnn.losses",
    "fastrnn.preprocessing",
    "fastrnn.callbacks",
]

# pages whose ``>>>`` examples are all meant to run (console and code blocks have no prompts)
DOCTEST_PAGES = ["quickstart.rst", "backends.rst", "datasets.rst", "api.rst"]


def _run_docstring_examples(module_name):
    """Run the examples of every docstring defined in ``module_name``; return how many ran."""
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    out = io.StringIO()
    for test in sorted(finder.find(module), key=lambda t: t.name):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed:\n{out.getvalue()}"
    return result.attempted


def test_recurrent_docstring_examples(backend, monkeypatch):
    # the examples build layers with backend="auto", which reads FASTRNN_BACKEND
    monkeypatch.setenv("FASTRNN_BACKEND", backend)
    attempted = _run_docstring_examples("fastrnn.nn.recurrent")
    assert attempted >= 10, "the RNN, LSTM and GRU docstrings should carry runnable examples"


@pytest.mark.parametrize("module_name", DOCSTRING_MODULES)
def test_docstring_examples(module_name):
    assert _run_docstring_examples(module_name) > 0, f"{module_name} has no docstring examples"


@pytest.mark.parametrize("page", DOCTEST_PAGES)
def test_page_examples(page):
    path = DOCS / page
    assert path.is_file(), f"documentation page {path} is missing"
    out = io.StringIO()
    parser = doctest.DocTestParser()
    test = parser.get_doctest(path.read_text(encoding="utf-8"), {}, page, str(path), 0)
    assert test.examples, f"{page} has no >>> examples"
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} example(s) of {page} failed:\n{out.getvalue()}"


def _sphinx(builder, tmp_path):
    pytest.importorskip("sphinx")
    out_dir = tmp_path / builder
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", builder,
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out_dir)]
    # docs/conf.py puts this checkout first on sys.path, so no installation is needed
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = (proc.stdout + "\n" + proc.stderr)[-8000:]
    assert proc.returncode == 0, f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{log}"
    return out_dir


@pytest.mark.slow
def test_sphinx_html_build(tmp_path):
    out_dir = _sphinx("html", tmp_path)
    for page in ("index", "install", "quickstart", "math", "backends", "datasets", "api",
                 "userguide/index"):
        assert (out_dir / f"{page}.html").is_file(), f"{page}.html was not built"
    api = (out_dir / "api.html").read_text(encoding="utf-8")
    for name in ("fastrnn.nn.RNN", "fastrnn.nn.LSTM", "fastrnn.nn.GRU", "show_backends",
                 "load_japanese_vowels", "SequenceVectorizer", "pad_sequences"):
        assert name in api, f"{name} is missing from the API reference"


@pytest.mark.slow
def test_sphinx_doctest_build(tmp_path):
    out_dir = _sphinx("doctest", tmp_path)
    report = (out_dir / "output.txt").read_text(encoding="utf-8")
    assert "0 failures in tests" in report, report[-4000:]
