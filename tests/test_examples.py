"""The runnable examples reach what their issue promises on real data."""

import math
from pathlib import Path

import pytest

from fastrnn.datasets import DatasetUnavailableError

from _scripts import load_script

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    return load_script(EXAMPLES / f"{name}.py", name)


@pytest.mark.slow
def test_bilstm_engine_example_reaches_095_on_japanese_vowels():
    mod = load_example("train_bilstm_japanese_vowels")
    try:
        acc, _ = mod.main()
    except DatasetUnavailableError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    assert acc >= 0.95


def _midi_pitches(part):
    # notes over a bar line come back as tied pieces: join them
    return [(n.pitch.midi, float(n.offset), float(n.quarterLength))
            for n in part.stripTies().flatten().notes]


def test_bach_chorales_tokens_round_trip_through_a_score():
    music21 = pytest.importorskip("music21")  # the "music" extra; the test extra brings it
    mod = load_example("bach_chorales")
    score = next(iter(music21.corpus.chorales.Iterator(numberingSystem="riemenschneider",
                                                       returnType="stream")))
    tokens = mod.encode(score)
    assert len(tokens) == 4 * round(float(score.highestTime) / mod.STEP)
    assert [t[0] for t in tokens[:8]] == list("SATBSATB")
    # the soprano's notes on the eighth-note grid are what the tokens say
    soprano = [n for n in score.parts[0].flatten().notes]
    first = soprano[0]
    assert tokens[0] == f"S{first.pitch.midi}"
    assert mod.encode(mod.to_score(mod.decode(tokens))) == tokens


def test_bach_chorales_example_trains_generates_and_writes_midi(tmp_path):
    music21 = pytest.importorskip("music21")
    mod = load_example("bach_chorales")
    ppl, bigram, written = mod.main(["--chorales", "24", "--time-budget", "8",
                                     "--hidden-size", "32", "--n-generate", "1", "--steps", "16",
                                     "--out", str(tmp_path / "c.mid")])
    assert math.isfinite(ppl) and ppl > 1 and bigram > 1
    (path, tokens), = written
    events = mod.decode(tokens)
    back = music21.converter.parse(str(path))
    # every voice that sounds comes back from the MIDI file with its pitches, onsets, lengths
    sounding = [v for v in mod.VOICES if any(p is not None for p, _, _ in events[v])]
    assert len(back.parts) == len(sounding) > 0
    for part, v in zip(back.parts, sounding):
        expected = [(p, s * mod.STEP, n * mod.STEP) for p, s, n in events[v] if p is not None]
        assert _midi_pitches(part) == expected
