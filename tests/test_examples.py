"""The runnable examples reach what their issue promises on real data."""

import importlib.util
from pathlib import Path

import pytest

from fastrnn.datasets import DatasetUnavailableError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_bilstm_engine_example_reaches_095_on_japanese_vowels():
    mod = load_example("train_bilstm_japanese_vowels")
    try:
        acc, _ = mod.main()
    except DatasetUnavailableError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert acc >= 0.95
