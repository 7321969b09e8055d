"""A script of the repository (a benchmark, an example) imported as a module, by its path."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(path, name=None):
    """Import the script at ``path`` (relative to the repository's root, or absolute) as the
    module ``name`` (default ``fastrnn_script_<stem>``),
    registered in ``sys.modules`` so that what it defines (dataclasses, pickled functions) can be
    found by name."""
    path = ROOT / path
    name = name or f"fastrnn_script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
