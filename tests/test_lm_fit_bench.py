"""``benchmarks/lm_fit.py``: the estimator's fit and the PyTorch loop it is timed against train a
model on the same characters (PyTorch where installed), and both learn in their epoch.
Nothing here asserts a timing."""

import math
from pathlib import Path

import numpy as np
import pytest

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "lm_fit.py"


bench = load_script(SCRIPT, "fastrnn_lm_fit_bench")


def _texts():
    rng = np.random.RandomState(0)
    # a language with structure: "ab" is always followed by "c", so a model learns below uniform
    return ["".join(rng.choice(["abc", "d", "e"], size=600)) for _ in range(4)]


def test_the_estimator_learns_in_its_one_epoch(monkeypatch):
    monkeypatch.setitem(bench.MODEL, "hidden_size", 16)
    monkeypatch.setitem(bench.MODEL, "bptt", 16)
    monkeypatch.setitem(bench.MODEL, "batch_size", 4)
    rate, bits = bench.fastrnn_fit(_texts())
    assert rate > 0
    # 5 symbols and the end of a text: uniform is log2(6) = 2.58 bits
    assert math.isfinite(bits) and bits < math.log2(6)


def test_the_pytorch_loop_learns_too(monkeypatch):
    pytest.importorskip("torch")
    for key, value in (("hidden_size", 16), ("bptt", 16), ("batch_size", 4)):
        monkeypatch.setitem(bench.MODEL, key, value)
    rate, bits = bench.torch_fit(_texts())
    # 5 symbols and the newline between texts: uniform is log2(6) = 2.58 bits
    assert rate > 0 and math.isfinite(bits) and bits < math.log2(6)
