"""The ``fastrnn`` command line: train-lm, generate, evaluate, info, bench, errors."""

import subprocess
import sys

import pytest

import fastrnn
from fastrnn._persist import save_model
from fastrnn.cli import main

TEXT = ("the cat sat on the mat.\nthe dog sat on the log.\na cat saw a dog.\n" * 12)
TINY = ["--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "4", "--bptt", "16",
        "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    corpus = folder / "corpus.txt"
    corpus.write_text(TEXT)
    out = folder / "m.fastrnn"
    rc = main(["train-lm", str(corpus), *TINY, "--epochs", "2", "--out", str(out)])
    assert rc == 0
    return folder, corpus, out


def one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastrnn: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


def test_train_lm_writes_model_and_checkpoint(trained, capsys):
    folder, corpus, out = trained
    assert out.exists() and (folder / "m.fastrnn.ckpt").exists()
    model = fastrnn.load(out)
    assert model.n_iter_ == 2 and model.level == "char"
    assert model.best_validation_bits_per_token_ is not None  # 5 % of the corpus held out


def test_train_lm_resume_continues_the_run(trained, capsys):
    folder, corpus, out = trained
    rc = main(["train-lm", str(corpus), *TINY, "--epochs", "3", "--out", str(out), "--resume"])
    assert rc == 0
    assert "max_iter after" in capsys.readouterr().out
    assert fastrnn.load(out).n_iter_ == 3


def test_generate_evaluate_info(trained, capsys):
    folder, corpus, out = trained
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "the ", "--max-length", "20", "--seed", "1",
                 "--temperature", "0.8", "--top-k", "5"]) == 0
    a = capsys.readouterr().out
    assert a.startswith("the ")
    assert main(["generate", str(out), "--prompt", "the ", "--max-length", "20", "--seed",
                 "1", "--temperature", "0.8", "--top-k", "5"]) == 0
    assert capsys.readouterr().out == a  # reproducible with --seed
    assert main(["generate", str(out), "--greedy", "--num-samples", "2", "--max-length", "5"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 2

    assert main(["evaluate", str(out), str(corpus)]) == 0
    text = capsys.readouterr().out
    assert "perplexity:" in text and "bits per character:" in text
    ppl = float(text.split("perplexity:")[1].split()[0])
    assert ppl == pytest.approx(fastrnn.load(out).perplexity([TEXT]), rel=1e-4)

    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "RNNLanguageModel" in text and "LSTM 1 x 16" in text and "learning curve" in text
    assert main(["info", str(folder / "m.fastrnn.ckpt")]) == 0
    assert "training checkpoint" in capsys.readouterr().out


def test_word_level_cli(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = tmp_path / "w.fastrnn"
    assert main(["train-lm", str(corpus), "--level", "word", *TINY, "--epochs", "1",
                 "--validation-fraction", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["generate", str(out), "--prompt", "the cat", "--max-length", "4",
                 "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("the cat ")
    assert main(["evaluate", str(out), str(corpus)]) == 0
    assert "bits per token:" in capsys.readouterr().out


def test_missing_corpus(tmp_path, capsys):
    rc = main(["train-lm", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "m")])
    one_line_error(capsys, rc, "does not exist", "nope.txt")


def test_empty_corpus(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    rc = main(["train-lm", str(empty), "--out", str(tmp_path / "m")])
    one_line_error(capsys, rc, "is empty", "empty.txt")
    assert not (tmp_path / "m").exists()


def test_corrupt_and_missing_model_files(trained, tmp_path, capsys):
    folder, corpus, out = trained
    bad = tmp_path / "bad.fastrnn"
    bad.write_bytes(out.read_bytes()[:200])
    for cmd in (["generate", str(bad)], ["evaluate", str(bad), str(corpus)], ["info", str(bad)]):
        one_line_error(capsys, main(cmd), "bad.fastrnn", "corrupt")
    one_line_error(capsys, main(["generate", str(tmp_path / "none.fastrnn")]), "does not exist")
    one_line_error(capsys, main(["evaluate", str(out), str(tmp_path / "none.txt")]),
                   "does not exist")


def test_a_model_of_another_class_is_refused(tmp_path, capsys):
    path = tmp_path / "clf.fastrnn"
    save_model(path, "RNNClassifier", {"params": {}}, {})
    one_line_error(capsys, main(["generate", str(path)]), "RNNClassifier", "not a language model")


def test_existing_output_is_not_overwritten(trained, capsys):
    folder, corpus, out = trained
    before = out.read_bytes()
    one_line_error(capsys, main(["train-lm", str(corpus), *TINY, "--out", str(out)]),
                   "exists", "--force")
    assert out.read_bytes() == before


def test_usage_errors(capsys):
    assert main(["train-lm", "--hidden-size", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["bench", "--repeats", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert main(["--version"]) == 0


def test_python_dash_m_runs_the_cli(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fastrnn", "info", str(tmp_path / "x.fastrnn")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("fastrnn: error:") and "Traceback" not in proc.stderr


def _edit_model(src, dest, edit_meta=None, arrays=None):
    """Copy a model file with its meta.json edited and some arrays replaced."""
    import io
    import json
    import zipfile

    import numpy as np

    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members.pop("meta.json"))
    if edit_meta is not None:
        edit_meta(meta)
    for name, a in (arrays or {}).items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
        members[f"arrays/{name}.npy"] = buf.getvalue()
    with zipfile.ZipFile(dest, "w") as z:
        z.writestr("meta.json", json.dumps(meta))
        for n, data in members.items():
            z.writestr(n, data)
    return dest


def test_inconsistent_model_files_are_one_line_errors(trained, tmp_path, capsys):
    import numpy as np

    folder, corpus, out = trained
    bad = _edit_model(out, tmp_path / "nulls.fastrnn",
                      lambda m: m["fitted"].update(n_tokens_seen_=None))
    for cmd in (["info", str(bad)], ["generate", str(bad)], ["evaluate", str(bad), str(corpus)]):
        one_line_error(capsys, main(cmd), "nulls.fastrnn", "n_tokens_seen_")
    weights = fastrnn.load(out).network_.params["head.bias"]
    bad = _edit_model(out, tmp_path / "nan.fastrnn",
                      arrays={"head.bias": np.full_like(weights, np.nan)})
    for cmd in (["info", str(bad)], ["generate", str(bad)]):
        one_line_error(capsys, main(cmd), "nan.fastrnn", "head.bias", "non-finite")


def _train_with_ctrl_c(trained, tmp_path, capsys, ctrl_c_at_step, inside):
    """``train-lm`` with a Ctrl-C at the second step (see ``ctrl_c_at_step``), which must exit with
    status 130; returns the model path and the captured output."""
    corpus = trained[1]
    ctrl_c_at_step(2, inside=inside)
    model = tmp_path / "m.fastrnn"
    rc = main(["train-lm", str(corpus), *TINY, "--epochs", "3", "--out", str(model)])
    assert rc == 130
    return model, capsys.readouterr()


def test_an_interrupted_training_exits_130(trained, tmp_path, capsys, ctrl_c_at_step):
    model, captured = _train_with_ctrl_c(trained, tmp_path, capsys, ctrl_c_at_step, inside=False)
    assert "interrupted" in captured.err and "--resume" in captured.err
    assert fastrnn.load(model).stop_reason_ == "interrupted"  # what was trained is kept
    assert fastrnn.load(str(model) + ".ckpt").n_steps_ == 2


def test_a_second_ctrl_c_inside_a_step_claims_no_checkpoint(trained, tmp_path, capsys,
                                                            ctrl_c_at_step):
    _, captured = _train_with_ctrl_c(trained, tmp_path, capsys, ctrl_c_at_step, inside=True)
    assert not (tmp_path / "m.fastrnn.ckpt").exists()
    text = captured.out + captured.err
    assert "resume" not in text.replace("cannot be resumed", "") and "checkpoint:" not in text
    assert "no checkpoint was written" in captured.err


@pytest.mark.parametrize("make, needle", [
    (lambda d: (str(d), None), "is a directory"),
    (lambda d: (str(d / "file.txt" / "m.fastrnn"), None), "is a file, not a folder"),
    (lambda d: (str(d / "m.fastrnn"), str(d)), "is a directory"),
])
def test_output_paths_are_checked_before_training(trained, tmp_path, capsys, monkeypatch, make,
                                                  needle):
    from fastrnn.estimators.language_model import RNNLanguageModel

    folder, corpus, out = trained
    (tmp_path / "file.txt").write_text("x")
    target, checkpoint = make(tmp_path)

    def no_training(*a, **k):
        raise AssertionError("trained before checking the output paths")

    monkeypatch.setattr(RNNLanguageModel, "fit", no_training)
    args = ["train-lm", str(corpus), *TINY, "--out", target]
    if checkpoint:
        args += ["--checkpoint", checkpoint]
    one_line_error(capsys, main(args), needle)


def test_evaluate_prints_inf_for_a_diverged_model(trained, tmp_path, capsys):
    folder, corpus, out = trained
    model = fastrnn.load(out)
    model.network_.params["head.bias"][...] = 0.0
    model.network_.params["head.bias"][4] = 1e4  # all the probability on one token
    model.ngram_weight_ = 0.0  # and the n-gram part gives none
    model.save(tmp_path / "diverged.fastrnn")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "diverged.fastrnn"), str(corpus)]) == 0
    text = capsys.readouterr().out
    assert "perplexity: inf" in text
    bits = float(text.split("bits per character:")[1].split()[0])
    assert bits > 1000


def test_a_binary_corpus_is_refused(tmp_path, capsys):
    import numpy as np

    from fastrnn.cli import CLIError, _read_text

    blob = tmp_path / "model.bin"
    blob.write_bytes(np.random.RandomState(0).bytes(4096))
    rc = main(["train-lm", str(blob), "--out", str(tmp_path / "m")])
    one_line_error(capsys, rc, "model.bin", "binary")
    no_nul = tmp_path / "noise.bin"
    no_nul.write_bytes(bytes(b for b in np.random.RandomState(1).bytes(4096) if b))
    with pytest.raises(CLIError, match=r"noise\.bin.*binary"):
        _read_text(str(no_nul))
    # text in a legacy 8-bit encoding is still text
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Ça a été un café très agréable, naïf et sûr.\n".encode("latin-1") * 20)
    assert _read_text(str(latin)).startswith("Ça a été un café")
    cyrillic = tmp_path / "cp1251.txt"
    cyrillic.write_bytes("Съешь же ещё этих мягких французских булок.\n".encode("cp1251") * 20)
    assert len(_read_text(str(cyrillic))) == 44 * 20


def test_info_without_a_model_describes_the_installation(capsys):
    from fastrnn.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for needle in ("fastrnn 0.", "numpy", "numba", "backends:", "auto: ", "threads:",
                   "OMP_NUM_THREADS", "cpu: ", "data cache: "):
        assert needle in out, needle


def test_every_option_has_help_and_shows_its_default():
    import argparse

    from fastrnn.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subs.choices) == {"train-lm", "generate", "evaluate", "info", "plot", "diagnose",
                                 "bench"}
    for name, sub in subs.choices.items():
        assert sub.formatter_class is argparse.ArgumentDefaultsHelpFormatter, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
        text = sub.format_help()
        for action in sub._actions:
            if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
                assert f"(default: {action.default})" in " ".join(text.split()), \
                    (name, action.dest)


def test_bench_runs_from_the_installed_package(capsys):
    from fastrnn import num_threads
    from fastrnn.cli import main

    before = num_threads()
    assert main(["bench", "--quick", "--repeats", "2", "--threads", "1"]) == 0
    assert num_threads() == before  # the caller's setting is restored
    out = capsys.readouterr().out
    assert "LSTM latency" in out and "GRU latency" in out and "RNN latency" in out
    assert "B1 T100 I64 H128" in out
