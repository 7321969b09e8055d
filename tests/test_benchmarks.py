"""The benchmark tooling: ``benchmarks/compare.py``'s correctness checks and option parsing, and
the asv suite's configuration. Nothing here asserts a timing."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _scripts import load_script
from conftest import COMPILED_BACKENDS

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


compare = load_script("benchmarks/compare.py", "fastrnn_bench_compare")


def _has(mod):
    try:
        importlib.import_module(mod)
        return True
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return False


HAS_TORCH = _has("torch")
HAS_ORT = HAS_TORCH and _has("onnxruntime")
BACKENDS = COMPILED_BACKENDS or ["numpy"]


# ------------------------------------------------------------------ option and config parsing
def test_quick_defaults():
    args = compare.parse_args(["--quick"])
    assert args.threads == [1, 2]
    assert args.repeats == 3 and args.warmup == 1
    assert args.backends == ["numba", "cython"]
    assert args.config_ids == compare.parse_configs(compare.QUICK_CONFIGS)
    # the quick run keeps every latency cell and config B, and one cell of C and D
    assert {"latency-LSTM", "latency-GRU", "latency-RNN", "B-RNN", "C-LSTM", "D-LSTM",
            "lm", "mem-B-LSTM"} <= set(args.config_ids)
    assert "C-GRU" not in args.config_ids
    full = compare.parse_args([])
    assert full.repeats > args.repeats
    assert set(full.config_ids) == set(compare.ALL_CONFIGS)


def test_configs_threads_backends_json(tmp_path):
    out = tmp_path / "r.json"
    args = compare.parse_args(["--quick", "--threads", "1", "2", "--configs", "B", "lm",
                               "c-lstm,mem-D-GRU", "--backends", "numba", "--json", str(out)])
    assert args.config_ids == ["B-LSTM", "B-GRU", "B-RNN", "C-LSTM", "mem-D-GRU", "lm"]
    assert args.threads == [1, 2] and args.backends == ["numba"] and args.json == str(out)
    assert compare.parse_configs(["train"]) == compare.parse_configs(["B", "C", "D"])
    assert compare.parse_configs(["memory"]) == [c for c in compare.ALL_CONFIGS
                                                 if c.startswith("mem-")]
    assert compare.parse_configs(["B-LSTM", "B"]).count("B-LSTM") == 1
    assert compare.split_config("mem-B-LSTM") == ("mem-B", "LSTM")
    assert compare.split_config("lm") == ("lm", "LSTM")


@pytest.mark.parametrize("bad", [["Z"], ["B-LSTMX"], ["C-RNN"]])
def test_unknown_config_is_refused(bad):
    with pytest.raises(ValueError, match="unknown config"):
        compare.parse_configs(bad)
    with pytest.raises(SystemExit):
        compare.parse_args(["--configs", *bad])


def test_bad_threads_refused():
    with pytest.raises(SystemExit):
        compare.parse_args(["--threads", "0"])


def test_shapes_and_flops():
    s = compare.SHAPES
    assert (s["latency"].B, s["latency"].T, s["latency"].I, s["latency"].H) == (1, 100, 64, 128)
    assert (s["C"].B, s["C"].T, s["C"].I, s["C"].H) == (64, 50, 256, 512)
    assert s["D"].layers == 2 and s["D"].bidir
    # one layer: T * 2 B G H (I + H)
    assert compare.forward_flops("LSTM", s["B"]) == 100 * 2 * 32 * 4 * 256 * (128 + 256)
    # two bidirectional layers: the second one reads 2H inputs
    d = s["D"]
    expect = 100 * 2 * (2 * 32 * 3 * 256 * (128 + 256) + 2 * 32 * 3 * 256 * (512 + 256))
    assert compare.forward_flops("GRU", d) == expect


def test_interleaved_calls_everything_and_reports_medians():
    calls = {"a": 0, "b": 0}

    def make(k):
        def f():
            calls[k] += 1
        return f
    res = compare.interleaved({"a": make("a"), "b": make("b")}, repeats=4, warmup=2, min_time=0.0,
                              burst=0.0)
    assert set(res) == {"a", "b"}
    for k, r in res.items():
        assert len(r["times"]) == 4 and r["number"] == 1
        assert r["median"] == pytest.approx(float(np.median(r["times"])))
        assert calls[k] == 2 + 4


# ------------------------------------------------------------------ same weights, same outputs
@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_same_weights_same_outputs(cell, layers, bidir):
    backends = list(dict.fromkeys(["numpy", *BACKENDS]))
    rep = compare.check_same_outputs(cell, B=3, T=5, I=4, H=3, layers=layers, bidir=bidir,
                                     backends=backends, use_torch=HAS_TORCH, use_ort=HAS_ORT)
    errors = rep["errors"]
    others = [f"fastrnn[{b}]" for b in backends]
    if HAS_TORCH:  # torch is the reference: every fastrnn backend is compared with it
        assert all(k in errors and k + " grad" in errors for k in others)
    else:
        assert all(k in errors for k in others[1:])
    if HAS_ORT:
        assert "ort" in errors
    assert all(v <= compare.GRAD_TOL for v in errors.values())


@pytest.mark.skipif(not HAS_ORT, reason="needs PyTorch and onnxruntime")
def test_ort_model_matches_torch_and_fastrnn():
    sw = compare.SameWeights("LSTM", compare.Shape(2, 4, 3, 5, 2, True), BACKENDS[:1])
    assert sw.sess is not None, sw.skipped
    outs = sw.outputs()
    for a, b in zip(outs["ort"], outs["torch"]):
        assert compare.max_err(a, b) <= compare.OUT_TOL
    for a, b in zip(outs["ort"], outs[f"fastrnn[{BACKENDS[0]}]"]):
        assert compare.max_err(a, b) <= compare.OUT_TOL


def _agreeing_implementations(cell):
    """Every fastrnn backend (numpy first) and PyTorch with one set of weights, checked to agree;
    the test then breaks its last fastrnn backend, returned too."""
    backends = list(dict.fromkeys(["numpy", *BACKENDS]))
    if len(backends) < 2 and not HAS_TORCH:
        pytest.skip("needs two implementations")
    sw = compare.SameWeights(cell, compare.Shape(2, 4, 3, 5), backends, use_ort=False)
    sw.check()
    return sw, backends[-1]


def test_check_catches_different_weights():
    sw, bad = _agreeing_implementations("GRU")
    layer = sw.fr[bad]
    layer.params["weight_hh_l0"] += 0.1
    with pytest.raises(compare.MismatchError, match="differs"):
        sw.check(grads=False)


def test_check_catches_different_gradients():
    sw, bad = _agreeing_implementations("RNN")
    real = sw.fr[bad].backward

    def wrong_backward(dY):
        dX = real(dY)
        sw.fr[bad].grads["bias_hh_l0"] += 1.0
        return dX
    sw.fr[bad].backward = wrong_backward
    with pytest.raises(compare.MismatchError, match="gradient"):
        sw.check()


def test_missing_backend_is_skipped_with_reason():
    sw = compare.SameWeights("RNN", compare.Shape(1, 3, 2, 2), ["numpy", "no-such-backend"],
                             use_torch=False, use_ort=False)
    assert "fastrnn[no-such-backend]" in sw.skipped
    assert set(sw.fr) == {"numpy"}


def test_torch_disabled_skips_ort_too():
    sw = compare.SameWeights("RNN", compare.Shape(1, 3, 2, 2), ["numpy"], use_torch=False)
    assert sw.tm is None and sw.sess is None
    assert "torch" in sw.skipped and "ort" in sw.skipped


# ------------------------------------------------------------------ streaming
def test_stream_check_and_step_api_detection():
    sw = compare.SameWeights("LSTM", compare.Shape(2, 6, 3, 4), BACKENDS[:1],
                             use_torch=HAS_TORCH, use_ort=HAS_ORT, stream=True)
    layer = sw.fr[BACKENDS[0]]
    has_step = hasattr(layer, "init_state") and hasattr(layer, "step")
    fns, skipped = sw.stream_fns()
    name = f"fastrnn[{BACKENDS[0]}]"
    assert (name + " step" in fns) == has_step
    assert (name + " step" in skipped) == (not has_step)
    errors, failures = sw.check_stream(fns)
    assert name + " forward T=1" in errors
    assert all(v <= compare.OUT_TOL for v in errors.values())
    if HAS_ORT:
        assert "ort" in errors


def test_broken_step_api_is_reported_not_fatal():
    sw = compare.SameWeights("GRU", compare.Shape(1, 4, 3, 4), BACKENDS[:1], use_torch=False,
                             use_ort=False, stream=True)
    layer = sw.fr[BACKENDS[0]]
    layer.init_state = lambda batch_size: np.zeros((1, batch_size, 4), np.float32)
    layer.step = lambda x, state: (x[:, :4] * 0, state * 0 + 1)  # wrong on purpose
    fns, _ = sw.stream_fns()
    name = f"fastrnn[{BACKENDS[0]}] step"
    assert name in fns
    errors, failures = sw.check_stream(fns)
    assert name in failures and name not in fns


# ------------------------------------------------------------------ language model
def test_lm_same_weights_same_losses(monkeypatch):
    monkeypatch.setitem(compare.LM, "V", 11)
    monkeypatch.setitem(compare.LM, "E", 5)
    monkeypatch.setitem(compare.LM, "H", 7)
    monkeypatch.setitem(compare.LM, "B", 3)
    monkeypatch.setitem(compare.LM, "bptt", 6)
    run = compare.LMRun(BACKENDS, use_torch=HAS_TORCH, n_chunks=3)
    err = run.check(steps=3)
    if HAS_TORCH or len(BACKENDS) > 1:
        assert err is not None and err <= 1e-3
    # the state is carried from chunk to chunk
    assert all(st is not None for st in run.state.values())


# ------------------------------------------------------------------ tables and the whole script
def test_table_and_render_from_a_worker_run(monkeypatch, tmp_path):
    """Run the worker in-process on tiny shapes (thread setting stubbed out) and render it."""
    tiny = compare.Shape(2, 5, 3, 4)
    for g in ("latency", "stream", "B"):
        monkeypatch.setitem(compare.SHAPES, g, tiny)
    for k, v in dict(V=9, E=4, H=5, B=2, bptt=4).items():
        monkeypatch.setitem(compare.LM, k, v)
    monkeypatch.setattr(compare, "set_threads", lambda n: {"threads": n, "threadpoolctl": []})
    monkeypatch.setattr(compare, "matmul_peak", lambda *a, **k: {"numpy": 1e9})
    args = compare.parse_args(["--quick", "--threads", "1", "--configs", "latency-GRU",
                               "stream-RNN", "B-LSTM", "lm", "--backends", *BACKENDS])
    spec = dict(vars(args), threads=1, repeats=1, latency_repeats=1, lm_steps=1, min_time=0.0)
    out = tmp_path / "w.json"
    compare.worker(spec, out)
    run = json.loads(out.read_text())
    assert [r["cell"] for r in run["latency"]] == ["GRU"]
    assert run["configs"][0]["forward_flops"] == compare.forward_flops("LSTM", tiny)
    results = dict(meta=compare.machine_info(), runs=[run], memory=[], memory_threads=1)
    text = compare.render(results)
    assert "Latency" in text and "Training step" in text and "language model" in text
    rst = compare.render(results, rst=True)
    assert "====" in rst
    # a saved run renders again, and its tables go into a page between the marker comments
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(results))
    page = tmp_path / "page.rst"
    page.write_text("Title\n=====\n\n.. results-start\nold\n.. results-end\n\nafter\n")
    assert compare.main(["--render", str(saved), "--update-doc", str(page)]) == 0
    text = page.read_text()
    assert "old" not in text and "Latency" in text and text.endswith("after\n")
    assert text.index(".. results-start") < text.index("Latency") < text.index(".. results-end")


def test_memory_measurement_sees_an_allocation():
    keep = []

    def step():
        keep.append(np.ones(8 * 2 ** 20 // 8))  # 8 MiB, touched
    delta, before, method = compare.measure_step_memory(step)
    assert before > 0 and method
    if method.startswith("VmHWM"):  # the resettable high-water mark sees every step's peak
        assert delta >= 4  # MiB; the allocation is resident during the step


@pytest.mark.slow
def test_script_runs_end_to_end(tmp_path):
    out = tmp_path / "c.json"
    cmd = [sys.executable, str(BENCH / "compare.py"), "--quick", "--threads", "1",
           "--configs", "latency-RNN", "mem-B-RNN", "--repeats", "1", "--no-torch",
           "--backends", BACKENDS[0], "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Latency" in proc.stdout and "Skipped" in proc.stdout
    res = json.loads(out.read_text())
    assert res["runs"][0]["thread_info"]["OMP_NUM_THREADS"] == "1"
    assert res["memory"][0]["peak_delta_MiB"] > 0
    assert res["meta"]["versions"]["numpy"]


# ------------------------------------------------------------------ the chart
def _timing(ms):
    return {"median": ms / 1e3, "times": [ms / 1e3]}


def _chart_results(with_torch=True):
    """The results of a run with chosen medians (ms), in the layout compare.py saves: one worker
    run per thread count; the fastest fastrnn backend differs from row to row."""
    torch = (lambda ms: {"torch": _timing(ms)}) if with_torch else (lambda ms: {})

    def run(threads, k):
        return dict(
            threads=threads, thread_info={}, peak_flops={},
            latency=[dict(config="latency-LSTM", cell="LSTM", times={
                          "fastrnn[numba]": _timing(0.6 * k), "fastrnn[cython]": _timing(0.5 * k),
                          **torch(0.4), "ort": _timing(0.2)}),
                     # no PyTorch timing on this row: nothing to compare it with, left out
                     dict(config="latency-GRU", cell="GRU", times={
                          "fastrnn[numba]": _timing(0.3), "ort": _timing(0.2)})],
            stream=[dict(config="stream-RNN", cell="RNN", times={
                "fastrnn[numba] step": _timing(0.02), "fastrnn[numba] forward T=1": _timing(0.1),
                **torch(0.08), "ort": _timing(0.01)})],
            configs=[dict(config="B-LSTM", group="B", cell="LSTM",
                          forward={"fastrnn[numba]": _timing(13), "fastrnn[cython]": _timing(26),
                                   **torch(10), "ort": _timing(20)},
                          train={"fastrnn[numba]": _timing(40 * k), **torch(50)})],
            lm=[dict(config="lm", times={"fastrnn[numba]": _timing(30), **torch(20)})])
    meta = dict(git="abc1234+dirty", date="2026-01-02T03:04:05+00:00", cpu="a CPU", cpu_count=2,
                versions=dict(fastrnn="0.0", numpy="2", numba="0.6"), env={})
    return dict(meta=meta, runs=[run(1, 1.0), run(2, 2.0)], memory=[], memory_threads=1)


def test_chart_bars_are_times_relative_to_torch():
    panels = compare.chart_panels(_chart_results())
    got = {(p["threads"], p["section"]): p["bars"] for p in panels}
    assert list(got) == [(n, s) for n in (1, 2)
                         for s in ("latency", "stream", "forward", "train", "lm")]
    # the fastest fastrnn backend over PyTorch's median; ONNX Runtime where it ran
    approx = pytest.approx
    assert got[1, "latency"] == [("LSTM", {"fastrnn": approx(0.5 / 0.4), "torch": 1.0,
                                           "ort": approx(0.2 / 0.4)})]
    assert got[2, "latency"] == [("LSTM", {"fastrnn": approx(1.0 / 0.4), "torch": 1.0,
                                           "ort": approx(0.2 / 0.4)})]
    assert got[1, "stream"] == [("RNN", {"fastrnn": approx(0.02 / 0.08), "torch": 1.0,
                                         "ort": approx(0.01 / 0.08)})]
    assert got[1, "forward"] == [("B LSTM", {"fastrnn": approx(1.3), "torch": 1.0,
                                             "ort": approx(2.0)})]
    assert got[2, "train"] == [("B LSTM", {"fastrnn": approx(80 / 50), "torch": 1.0})]
    # the language model: time per chunk relative to PyTorch's = PyTorch's tokens/s over fastrnn's
    assert got[1, "lm"] == [("LSTM", {"fastrnn": approx(1.5), "torch": 1.0})]


def test_chart_without_torch_is_refused():
    with pytest.raises(ValueError, match="no workload timed with PyTorch"):
        compare.chart_panels(_chart_results(with_torch=False))


def test_plot_without_matplotlib_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes ``import matplotlib`` fail
    with pytest.raises(ImportError, match="pip install matplotlib"):
        compare.plot(_chart_results(), tmp_path / "c.png")
    # and the command line stops before measuring anything
    with pytest.raises(SystemExit, match="--plot .*matplotlib"):
        compare.parse_args(["--quick", "--plot", str(tmp_path / "c.png")])
    assert not (tmp_path / "c.png").exists()


def test_tables_and_chart_regenerated_by_one_command(tmp_path):
    pytest.importorskip("matplotlib")
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(_chart_results()))
    docs = tmp_path / "docs"
    (docs / "_static").mkdir(parents=True)
    page = docs / "bench.rst"
    page.write_text("Title\n=====\n\n.. chart-start\n\n.. chart-end\n\nText\n\n"
                    ".. results-start\nold\n.. results-end\n")
    png = docs / "_static" / "chart.png"
    assert compare.main(["--render", str(saved), "--update-doc", str(page),
                         "--plot", str(png)]) == 0
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width > 600 and height > 300
    text = page.read_text()
    chart = text[text.index(".. chart-start"):text.index(".. chart-end")]
    assert ".. figure:: _static/chart.png" in chart and "commit abc1234+dirty" in chart
    tables = text[text.index(".. results-start"):text.index(".. results-end")]
    assert "old" not in tables and "(commit abc1234+dirty)" in tables and "Latency" in tables
    # new tables without --plot take the chart of the earlier run off the page
    assert compare.main(["--render", str(saved), "--update-doc", str(page)]) == 0
    text = page.read_text()
    assert "figure::" not in text and ".. chart-start" in text and "Latency" in text
    # a page without the chart's markers gets a clear error
    other = tmp_path / "other.rst"
    other.write_text(".. results-start\n.. results-end\n")
    with pytest.raises(SystemExit, match="chart-start"):
        compare.main(["--render", str(saved), "--update-doc", str(other), "--plot", str(png)])


def test_reports_name_the_commit_measured():
    meta = compare.machine_info()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                         capture_output=True)
    if git.returncode != 0:
        pytest.skip("not a git checkout: there is no commit to name")
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    assert meta["git"] == git.stdout.strip() + ("+dirty" if changed else "")
    assert f"(commit {meta['git']})" in compare.headline(meta)
    assert "(commit unknown)" in compare.headline(dict(meta, git=None))


# ------------------------------------------------------------------ asv configuration
def test_asv_config_is_usable_offline():
    conf = json.loads((BENCH / "asv.conf.json").read_text())
    assert conf["environment_type"] == "existing"
    assert conf["repo"] == ".." and conf["branches"] == ["main"]
    assert (BENCH / conf.get("benchmark_dir", "benchmarks") / "__init__.py").is_file()


def test_asv_suites_import_and_expose_benchmarks():
    sys.path.insert(0, str(BENCH))
    try:
        import importlib
        pkg = importlib.import_module("benchmarks")
        names = []
        for path in sorted((BENCH / "benchmarks").glob("*.py")):
            if path.name.startswith("_"):
                continue
            mod = importlib.import_module(f"benchmarks.{path.stem}")
            for cls_name, cls in vars(mod).items():
                if isinstance(cls, type) and cls.__module__ == mod.__name__:
                    names += [f"{cls_name}.{m}" for m in vars(cls)
                              if m.startswith(("time_", "peakmem_", "track_"))]
        assert pkg is not None
        assert any(n.split(".")[1].startswith("time_") for n in names)
        assert any(n.split(".")[1].startswith("peakmem_") for n in names)
        assert any(n.split(".")[1].startswith("track_") for n in names)
    finally:
        sys.path.remove(str(BENCH))
        for k in [k for k in sys.modules if k == "benchmarks" or k.startswith("benchmarks.")]:
            del sys.modules[k]


# ------------------------------------------------------------------ scaling report
def test_scaling_fits_render_and_plot(tmp_path, monkeypatch):
    scaling = load_script("benchmarks/scaling.py", "fastrnn_bench_scaling")
    args = scaling.parse_args(["--quick", "--sweeps", "T", "B", "--threads", "1"])
    assert set(args.points) == {"T", "B"} and args.repeats == 3
    T = [25, 50, 100]
    rows_t = [dict(value=t, flops=1e6, **{"fastrnn forward": 1e-3 + 2e-4 * t,
                                          "fastrnn train": 3e-3 * t}) for t in T]
    f = scaling.fit("T", rows_t, "fastrnn forward")
    assert f["r2"] == pytest.approx(1.0) and f["per_step_ms"] == pytest.approx(0.2)
    rows_b = [dict(value=b, flops=1e6, **{"fastrnn forward": 1e-4 * b ** 2,
                                          "fastrnn train": 1e-4 * b}) for b in (1, 4, 16)]
    assert scaling.fit("B", rows_b, "fastrnn forward")["exponent"] == pytest.approx(2.0)
    # a tiny real worker run, in-process, thread setting stubbed out
    monkeypatch.setattr(scaling, "BASE", dict(B=3, T=4, I=3, H=4))
    monkeypatch.setattr(scaling, "RAGGED_LOW", 2)
    monkeypatch.setattr(scaling, "RAGGED_PACKED_TRAIN_MAX", 5)
    monkeypatch.setattr(scaling.compare, "set_threads", lambda n: {"threads": n})
    spec = dict(vars(args), threads=1, repeats=1, no_torch=not HAS_TORCH, backend=BACKENDS[0],
                points={"T": [2, 4], "H": [2, 4], "ragged": [5, 7]})
    scaling.worker(spec, tmp_path / "w.json")
    run = json.loads((tmp_path / "w.json").read_text())
    assert [r["value"] for r in run["sweeps"]["T"]] == [2, 4]
    for r in run["sweeps"]["T"]:  # the precision columns: the same layer in bf16, checked
        assert "fastrnn bf16 forward" in r and "fastrnn bf16 train" in r
        assert r["errors"]["bf16"]["Y"] < 0.1
    ragged = run["sweeps"]["ragged"]
    assert [r["padded"] for r in ragged] == [15, 21]
    assert all(3 * 2 <= r["tokens"] <= r["padded"] for r in ragged)
    assert all("fastrnn train" in r for r in ragged)
    assert ("torch packed train" in ragged[0]) == HAS_TORCH
    assert "torch packed train" not in ragged[1]
    results = dict(meta=scaling.compare.machine_info(), runs=[run])
    text = scaling.render(results)
    assert "T varies" in text and f"(commit {results['meta']['git'] or 'unknown'})" in text
    assert "fastrnn bf16 train ms" in text
    assert "ragged batch" in text and "us/real step" in text
    assert ("n/t" in text) == HAS_TORCH
    if _has("matplotlib"):
        assert scaling.plot(results, tmp_path / "s.png")
        assert (tmp_path / "s.png").stat().st_size > 1000


@pytest.mark.skipif(not HAS_TORCH, reason="the ragged workload compares with PyTorch")
def test_ragged_workload_matches_packed_torch_and_catches_a_difference():
    sys.path.insert(0, str(BENCH))
    try:
        from _compare.impls import MismatchError
        from _compare.ragged import RaggedRun, ragged_lengths
    finally:
        sys.path.remove(str(BENCH))
    lengths = ragged_lengths(5, 2, 9, seed=3)
    assert lengths.max() == 9 and lengths.min() >= 2
    run = RaggedRun("LSTM", lengths, 3, 4, BACKENDS[0])
    assert run.tokens == lengths.sum() and run.X.shape == (5, 9, 3)
    report = run.check()
    assert set(report) == {"torch packed", "torch padded", "grad"}
    fns = run.fns(packed_train=False)
    assert "torch packed train" not in fns and "torch packed train" in run.skipped
    assert np.isfinite(fns["fastrnn train"]()) and np.isfinite(fns["torch padded train"]())
    run.layer.params["weight_hh_l0"][0, 0] += 0.5
    with pytest.raises(MismatchError, match="differs"):
        run.check()


# ------------------------------------------------------------------ cold start
def test_cold_start_script_reports_every_setting_and_auto_skips_numba(tmp_path):
    cold = load_script("benchmarks/cold_start.py", "fastrnn_bench_cold_start")
    out = tmp_path / "cold.json"
    res = cold.main(["--repeats", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    # the predictor serves without scikit-learn; the estimators need it
    assert [res[n]["sklearn_imported"] for n in ("predictor", "auto", "numba")] == [
        False, True, True]
    assert res["predictor"]["numba_imported"] is ("cython" not in COMPILED_BACKENDS)
    for name in ("predictor", "auto", "numba"):
        r = res[name]
        assert r["total"] == pytest.approx(r["import_"] + r["load"] + r["predict"])
        assert 0 < r["total"] < r["wall"]
    assert res["numba"]["numba_imported"] is True
    # with the Cython kernels built, a one-sequence prediction never loads Numba
    assert res["auto"]["numba_imported"] is ("cython" not in COMPILED_BACKENDS)


# ------------------------------------------------------------------ the prepared GPU check
@pytest.mark.skipif(not HAS_TORCH, reason="needs PyTorch (the test extra installs it)")
def test_gpu_check_runs_on_the_simulator_and_compares_before_timing(tmp_path):
    pytest.importorskip("numba_cuda")
    import os

    out = tmp_path / "gpu.json"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--smoke", "--json",
                          str(out)], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["config"] for r in rows] == ["B-LSTM", "B-GRU", "lm"]
    assert [r["config"] for r in result["stream"]] == ["stream-LSTM", "stream-GRU"]
    for r in result["stream"]:  # both fastrnn steps agreed with PyTorch's before the timing
        assert r["rel_err"] < 1e-4
        assert all(r[k] > 0 for k in ("step_device", "step_host", "step_torch"))
    for r in rows[:2]:
        assert r["rel_err"] < 1e-4  # the same weights give the same outputs and gradients
        assert all(r[k] > 0 for k in ("forward_fastrnn", "forward_torch", "train_fastrnn",
                                      "train_torch"))
    assert rows[2]["lm_fastrnn"] > 0 and rows[2]["lm_torch"] > 0


# ------------------------------------------------------------------ one-sequence latency
@pytest.mark.skipif("cython" not in COMPILED_BACKENDS, reason="needs the Cython kernels")
def test_latency_script_checks_its_contenders_and_reports_ratios():
    latency = load_script("benchmarks/latency.py", "fastrnn_bench_latency")
    res = latency.worker(threads=1, repeats=2, warmup=1)
    assert [r["cell"] for r in res["rows"]] == list(latency.CELLS)
    for row in res["rows"]:
        names = set(row["median_s"])
        assert {"fastrnn f32", "fastrnn int8", "fastrnn bf16"} <= names
        assert names | set(row["skipped"]) == {"fastrnn f32", "fastrnn int8", "fastrnn bf16",
                                                "ort", "torch"}
        # the float32 contenders agreed with fastrnn (else the worker raised); int8 is close
        assert all(row["max_abs_diff"][k] <= 1e-4 for k in ("ort", "torch") if k in names)
        assert 0 < row["max_abs_diff"]["fastrnn int8"] < 0.1
        assert 0 < row["max_abs_diff"]["fastrnn bf16"] < 0.1
        if "ort" in names:
            for k, t in row["median_s"].items():
                assert row["ratio_to_ort"][k] == pytest.approx(t / row["median_s"]["ort"])
    text = latency.report({"timing": [res]})
    assert "threads 1" in text and "largest output difference: int8" in text
