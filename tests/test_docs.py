"""The documentation: docstring examples run and pass, and the Sphinx build has no warning.

The fast tests run the ``>>>`` examples of the docstrings (the recurrent layers on every CPU
backend) and of the user-facing pages with the standard :mod:`doctest` module. The slow tests
build the HTML documentation exactly as ``make docs`` does (``-n -W``: every cross-reference must
resolve and warnings are errors) once into a temporary folder, check the pages it rendered, that
every public name has an entry in the API reference, that no page points at a file outside the
repository and that no page loads a script or a stylesheet from another site (MathJax included: the
pages must render offline), and run Sphinx's doctest builder over every page and docstring it
renders.
"""

import doctest
import html
import importlib
import io
import re
import subprocess
import sys
import zlib
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
    "fastrnn.diagnostics._flow",
    "fastrnn.diagnostics._gates",
    "fastrnn.diagnostics._memory",
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
    cmd = [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-b", builder,
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out_dir)]
    # docs/conf.py puts this checkout first on sys.path, so no installation is needed
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = (proc.stdout + "\n" + proc.stderr)[-8000:]
    assert proc.returncode == 0, f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{log}"
    return out_dir


# Text that names something outside the repository: working notes, specification or design files
# of the development process, a folder next to the checkout, or an issue tracker's numbers. The
# published documentation must stand on its own.
# The case matters only for SPEC (a file name; "spec" is an ordinary word).
OUTSIDE_REFERENCES = re.compile(
    r"\bSPEC\b|(?i:shared/|PERF_NOTES|DESIGN\.md|DATA\.md|\bissue #)")


def _outside_references(out_dir):
    """``(page, excerpt)`` for every match of :data:`OUTSIDE_REFERENCES` in the built pages."""
    found = []
    for page in sorted(out_dir.rglob("*.html")):
        # the words as a reader sees them: without markup (code blocks split words into spans)
        text = html.unescape(re.sub(r"<[^>]*>", "", page.read_text(encoding="utf-8")))
        for m in OUTSIDE_REFERENCES.finditer(text):
            excerpt = " ".join(text[max(0, m.start() - 60):m.end() + 60].split())
            found.append((str(page.relative_to(out_dir)), excerpt))
    return found


def test_outside_reference_check_finds_planted_text(tmp_path):
    # the check of the built pages must be able to fail: plant every kind of text it looks for
    planted = ["see ../shared/notes", "as the SPEC says", "from PERF_NOTES", "in DESIGN.md",
               "per DATA.md", "fixes Issue #12", "<span>SPEC</span> file"]
    for i, text in enumerate(planted):
        (tmp_path / f"p{i}.html").write_text(f"<p>{text}</p>", encoding="utf-8")
    # and text that must pass: an identifier containing SPEC, the lower-case word, a shared task
    (tmp_path / "ok.html").write_text(
        "<p>SPECIAL_TOKENS, a spec string, the CoNLL-2010 shared task, issues of a journal</p>",
        encoding="utf-8")
    pages = sorted(page for page, _ in _outside_references(tmp_path))
    assert pages == sorted(f"p{i}.html" for i in range(len(planted)))


# A script or stylesheet a page would fetch from another site (a CDN's MathJax, web fonts): the
# documentation must render without network access. A link a reader follows is fine.
EXTERNAL_URL = re.compile(r"""^\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)
SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.I | re.S)
LINK = re.compile(r"<link\b([^>]*)>", re.I)
ATTR = re.compile(r"""\b(src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def _attr(tag_attrs, name):
    for m in ATTR.finditer(tag_attrs):
        if m.group(1).lower() == name:
            return html.unescape(next(g for g in m.groups()[1:] if g is not None))
    return None


def _external_assets(out_dir):
    """``(page, what)`` for every script or stylesheet of the built pages that comes from another
    site: a ``<script src>`` or ``<link href>`` with a scheme or a ``//`` host, or an inline script
    that names an ``http(s)://`` address (a MathJax configuration pointing at a CDN)."""
    found = []
    for page in sorted(out_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        name = str(page.relative_to(out_dir))
        for m in SCRIPT.finditer(text):
            src = _attr(m.group(1), "src")
            if src is not None and EXTERNAL_URL.match(src):
                found.append((name, f"script {src}"))
            elif src is None and re.search(r"https?://", m.group(2)):
                found.append((name, "inline script: " + " ".join(m.group(2).split())[:120]))
        for m in LINK.finditer(text):
            href = _attr(m.group(1), "href")
            if href is not None and EXTERNAL_URL.match(href):
                found.append((name, f"link {href}"))
    return found


def test_external_asset_check_finds_planted_scripts(tmp_path):
    # the check of the built pages must be able to fail: plant every kind of asset it looks for
    planted = [
        '<script defer="defer" src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js">'
        '</script>',
        "<script src='http://example.org/x.js'></script>",
        "<script async src=//cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js></script>",
        '<link rel="stylesheet" href="https://fonts.example.org/css?family=Lato">',
        '<script>window.MathJax = {"loader": {"paths": {"mathjax": "https://cdn.example.org/mj"}}}'
        '</script>',
    ]
    for i, text in enumerate(planted):
        (tmp_path / f"p{i}.html").write_text(f"<html><head>{text}</head></html>", encoding="utf-8")
    # and what must pass: local scripts and styles, a link a reader follows, an inline script
    (tmp_path / "ok.html").write_text(
        '<script defer src="_static/mathjax/tex-chtml.js"></script>'
        '<script src="../_static/doctools.js?v=1"></script>'
        '<link rel="stylesheet" href="_static/styles/theme.css?digest=1">'
        '<script>DOCUMENTATION_OPTIONS.pagename = "index";</script>'
        '<a href="https://numba.pydata.org">Numba</a>', encoding="utf-8")
    pages = sorted(page for page, _ in _external_assets(tmp_path))
    assert pages == sorted(f"p{i}.html" for i in range(len(planted)))


@pytest.fixture(scope="module")
def html_build(tmp_path_factory):
    """The HTML documentation, built once for the tests of this module."""
    return _sphinx("html", tmp_path_factory.mktemp("docs"))


@pytest.mark.slow
def test_sphinx_html_build(html_build):
    out_dir = html_build
    for page in ("index", "install", "quickstart", "math", "backends", "datasets", "api",
                 "userguide/index"):
        assert (out_dir / f"{page}.html").is_file(), f"{page}.html was not built"
    api = (out_dir / "api.html").read_text(encoding="utf-8")
    for name in ("fastrnn.nn.RNN", "fastrnn.nn.LSTM", "fastrnn.nn.GRU", "show_backends",
                 "load_japanese_vowels", "SequenceVectorizer", "pad_sequences"):
        assert name in api, f"{name} is missing from the API reference"


# the public modules; every name in their ``__all__`` has an entry in the API reference
PUBLIC_MODULES = ["fastrnn", "fastrnn.nn", "fastrnn.estimators", "fastrnn.train", "fastrnn.losses",
                  "fastrnn.optim", "fastrnn.text", "fastrnn.datasets", "fastrnn.preprocessing",
                  "fastrnn.callbacks", "fastrnn.inference", "fastrnn.onnx", "fastrnn.dask",
                  "fastrnn.ray"]


def _documented_python_names(out_dir):
    """The Python object names of the inventory Sphinx wrote (``objects.inv``, format 2)."""
    raw = (out_dir / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four text lines, then the zlib-compressed entries
        header_end = raw.index(b"\n", header_end) + 1
    names = set()
    for line in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
        # "name domain:role priority uri display-name"
        name, role = line.split(" ", 2)[:2]
        if role.startswith("py:"):
            names.add(name)
    return names


@pytest.mark.slow
def test_every_public_name_has_an_api_entry(html_build):
    documented = _documented_python_names(html_build)
    modules = {m: importlib.import_module(m) for m in PUBLIC_MODULES}
    missing = []
    for m, module in modules.items():
        for name in module.__all__:
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            # a re-export (fastrnn.RNNClassifier) counts where the same object is documented
            places = [f"{m2}.{name}" for m2, mod2 in modules.items()
                      if getattr(mod2, name, None) is obj]
            if not any(place in documented for place in places):
                missing.append(f"{m}.{name}")
    assert not missing, f"public names without an entry in docs/api.rst: {missing}"


@pytest.mark.slow
def test_built_docs_name_nothing_outside_the_repository(html_build):
    found = _outside_references(html_build)
    assert not found, "the documentation refers to files outside the repository:\n" + "\n".join(
        f"{page}: ...{excerpt}..." for page, excerpt in found)


@pytest.mark.slow
def test_built_pages_load_nothing_from_other_sites(html_build):
    found = _external_assets(html_build)
    assert not found, "pages load scripts or styles from other sites (they must work " \
        "offline):\n" + "\n".join(f"{page}: {what}" for page, what in found)
    # the math page loads MathJax, and from a file of the build
    math = (html_build / "math.html").read_text(encoding="utf-8")
    srcs = [_attr(m.group(1), "src") for m in SCRIPT.finditer(math)]
    mathjax = [src for src in srcs if src and "mathjax" in src.lower()]
    assert mathjax, f"math.html loads no MathJax script; its scripts: {srcs}"
    for src in mathjax:
        path = html_build / src.split("?")[0]
        assert path.is_file() and path.stat().st_size > 10_000, f"{src} is not in the build"


@pytest.mark.slow
def test_sphinx_doctest_build(tmp_path):
    out_dir = _sphinx("doctest", tmp_path)
    report = (out_dir / "output.txt").read_text(encoding="utf-8")
    assert "0 failures in tests" in report, report[-4000:]
