"""``benchmarks/cells_study.py``: its options, what "learns" means on the lag tasks, and a
``--quick`` run of the whole study (real data: marked ``slow``). Nothing here asserts a timing or
a score."""

import json
from pathlib import Path

import numpy as np
import pytest

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cells_study.py"


study = load_script(SCRIPT, "fastrnn_cells_study")


def test_quick_shrinks_every_budget():
    full, quick = study.parse_args([]), study.parse_args(["--quick"])
    assert full.lm_budget == 600 and full.lags == [100, 1000, 5000]
    assert full.lengths == [100, 1000, 10000] and full.depths == [2, 4, 8]
    for key in ("lm_budget", "task_budget", "skip_budget", "seeds", "task_samples"):
        assert getattr(quick, key) < getattr(full, key), key
    assert quick.vowels_budget is not None and quick.lm_chars is not None


def test_lag_tasks_and_throughput_run_and_report(tmp_path):
    """The parts without real data, quick: the JSON holds what the tables read, and "learned"
    follows its definition from the numbers next to it."""
    out = tmp_path / "r.json"
    res = study.main(["--quick", "--parts", "lag", "throughput", "--cells", "gru", "mingru",
                      "--out", str(out)])
    assert json.loads(out.read_text())["lag"] == res["lag"]
    for cell in ("gru", "mingru"):
        add = res["lag"]["adding"][cell]["lags"]["8"]
        assert add["learned"] == (add["mse"] < study.ADDING_THRESHOLD * add["variance"])
        cp = res["lag"]["copy"][cell]["lags"]["8"]
        assert 0 <= cp["accuracy"] <= 1
        assert cp["learned"] == (cp["accuracy"] > study.COPY_THRESHOLD)
        for T in ("20", "50"):
            r = res["throughput"][T][cell]
            assert r["tokens_per_s"] > 0
            assert r["ratio_to_lstm"] == pytest.approx(
                r["tokens_per_s"] / res["throughput"][T]["lstm_tokens_per_s"])
    assert "vowels" not in res and "skip" not in res


def test_tasks_picks_the_lag_tasks_and_every_lag_fit_runs_its_whole_budget(tmp_path,
                                                                          monkeypatch):
    """``--tasks copy`` runs and reports the copy task alone, and a lag fit is never stopped
    before its budget: no early stopping, no plateau stop, no annealing over ``max_iter``."""
    from fastrnn import RNNTagger

    seen = []
    fit = RNNTagger.fit

    def recording_fit(self, X, y):
        seen.append(self.get_params())
        return fit(self, X, y)

    monkeypatch.setattr(RNNTagger, "fit", recording_fit)
    res = study.main(["--quick", "--parts", "lag", "--tasks", "copy", "--cells", "gru",
                      "--out", str(tmp_path / "r.json")])
    assert list(res["lag"]) == ["copy"]
    text = study.markdown(res)
    assert "copy:" in text and "adding:" not in text
    (params,) = seen
    args = study.parse_args(["--quick"])
    assert params["time_budget"] == args.task_budget and params["early_stopping"] is False
    assert params["lr_schedule"] == "constant" and params["n_iter_no_change"] >= 10_000
    with pytest.raises(SystemExit):
        study.parse_args(["--tasks", "sorting"])


def test_a_part_that_fails_keeps_the_parts_done_and_divergence_is_a_result(tmp_path,
                                                                            monkeypatch):
    from fastrnn.train import TrainingDivergedError

    def diverges(*args, **kwargs):
        raise TrainingDivergedError("training diverged: test")

    def fails(args, log):
        raise RuntimeError("the machine went away")

    monkeypatch.setattr(study, "RUNNERS", dict(study.RUNNERS, lag=fails))
    monkeypatch.setattr("fastrnn.RNNLanguageModel.fit", diverges)
    monkeypatch.setattr(study, "_shakespeare", lambda args: ("abc " * 50, "abc " * 10))
    out = tmp_path / "r.json"
    with pytest.raises(RuntimeError, match="went away"):
        study.main(["--quick", "--parts", "lm", "lag", "--cells", "indrnn", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert "lag" not in saved and saved["lm"]["indrnn"]["diverged"] == "training diverged: test"
    assert saved["lm"]["indrnn"]["test_bits_per_char"] is None
    assert "| indrnn | diverged |" in study.markdown(saved)


def test_copy_accuracy_reads_the_recalled_symbols(monkeypatch):
    """A tagger that answers with the true tags gets 1.0; one that answers blanks everywhere
    gets 0 (the recalled symbols are never blank), whatever it does on the other steps."""
    from fastrnn import RNNTagger

    args = study.parse_args(["--quick"])

    def fit(self, X, y):
        return self

    def perfect(self, X):
        from fastrnn.datasets import make_copy_task

        n = args.task_samples
        _, Y = make_copy_task(n + n // 4, study.COPY_SYMBOLS, study.COPY_ALPHABET, 8,
                              random_state=0)
        return list(Y[n:])

    monkeypatch.setattr(RNNTagger, "fit", fit)
    monkeypatch.setattr(RNNTagger, "predict", perfect)
    assert study.copy_result("gru", 8, args) == dict(accuracy=1.0, learned=True)
    monkeypatch.setattr(RNNTagger, "predict", lambda self, X: [np.zeros(len(x), int) for x in X])
    assert study.copy_result("gru", 8, args) == dict(accuracy=0.0, learned=False)


@pytest.mark.slow
def test_quick_study_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "study.json"
    res = study.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert set(study.PARTS) <= set(saved)
    assert set(saved["vowels"]) == set(study.CELLS) == set(saved["lm"])
    for r in saved["lm"].values():
        assert np.isfinite(r["test_bits_per_char"]) and r["steps"] > 0
    assert set(saved["skip"]["2"]) == {"None", "residual", "dense", "highway"}
    text = capsys.readouterr().out
    assert "JapaneseVowels" in text and "| 2 |" in text
    assert res["config"]["quick"] is True
