"""The ``fastrnn`` command line (issue 6): train-lm, generate, evaluate, info, bench, errors."""

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


def test_usage_errors_and_bench(capsys):
    assert main(["train-lm", "--hidden-size", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert main([]) == 2
    assert main(["bench"]) == 0
    assert "benchmarks/compare.py" in capsys.readouterr().out
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
