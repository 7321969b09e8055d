"""Sphinx configuration of the fastrnn documentation.

Build with ``make docs`` (nitpicky: every cross-reference must resolve; warnings are errors).
The build needs no network: intersphinx is loaded but has no remote inventories, and every page is
rendered from the sources in this folder and the docstrings of the installed (or checked-out)
package. Neither do the pages it writes: the theme's assets and MathJax are copied into the build
(the ``docs`` extra installs ``pydata-sphinx-theme`` and ``sphinx-mathjax-offline``), so no page
loads a script from another site.
"""

import os
import sys

# Document the checked-out package even when it is not installed in the running environment.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import fastrnn  # noqa: E402

# -- project -----------------------------------------------------------------------------------
project = "fastrnn"
author = "the fastrnn developers"
copyright = "the fastrnn developers"  # noqa: A001 - Sphinx's name
release = fastrnn.__version__
version = ".".join(release.split(".")[:2])

# -- extensions --------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax itself, copied into _static/mathjax of the build: math renders without network
    # access (no CDN) and without LaTeX. The package's import name has hyphens.
    "sphinx-mathjax-offline",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "numpydoc",
]

# Pages listed here are read only through an ``.. include::`` of another page, never on their
# own (otherwise Sphinx would also build them as orphan documents and warn).
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = []
root_doc = "index"
language = "en"

# -- autodoc / autosummary ---------------------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections already give the types
autodoc_class_signature = "mixed"
autosummary_generate = False  # the API page lists its entries by hand

# -- numpydoc ----------------------------------------------------------------------------------
# Members are documented explicitly with ``:members:`` in api.rst; numpydoc's own member tables
# would list them a second time (and the sklearn-inherited ones of SequenceVectorizer).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- intersphinx (offline) ---------------------------------------------------------------------
# No remote inventories: the build must work without network access. References to numpy or
# scikit-learn objects therefore render as plain literals. To link them on a connected machine,
# add e.g. {"numpy": ("https://numpy.org/doc/stable/", None)} here.
intersphinx_mapping = {}
intersphinx_timeout = 1

# -- nitpicky references -----------------------------------------------------------------------
# ``make docs`` builds with -n: every cross-reference must resolve. Objects of other projects
# (PyTorch's optimisers the update rules follow, numpy, scikit-learn, the standard library) can
# only resolve through remote inventories, which this offline build does not load; they stay
# marked up as objects (and link once an inventory is added above) but are not reported.
# References to fastrnn itself are always checked.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|sklearn|scipy|collections|copy)(\..*)?"),
]
# A label of scikit-learn's user guide, in the docstring of the ``score`` that RNNRegressor
# inherits from ``sklearn.base.RegressorMixin``.
nitpick_ignore = [("std:ref", "r2_score")]

# -- doctest -----------------------------------------------------------------------------------
doctest_global_setup = """
import numpy as np
"""
doctest_test_doctest_blocks = "default"

# -- math --------------------------------------------------------------------------------------
# The reader's browser typesets the math with the MathJax copied into the build (see the
# extensions above); tests/test_docs.py checks that no page loads a script from another site.
math_number_all = False

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_static_path = []
html_title = f"fastrnn {release}"
html_theme_options = {
    # what the offline build needs: no version switcher, no links to external sites
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "header_links_before_dropdown": 5,
    # the left sidebar only where a page has pages below it (the user guide); elsewhere the
    # text gets the width
    "sidebar_includehidden": False,
    "primary_sidebar_end": [],
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
