"""A language model over musical events: Bach's four-part chorales in, new chorales out as MIDI.

The chorales come with ``music21`` (an optional dependency: ``pip install 'fastrnn[music]'``),
whose corpus holds the 371 four-part chorales in Riemenschneider's numbering. Each chorale is
transposed to C major or A minor and read on a grid of eighth notes; every step becomes four
tokens, soprano, alto, tenor and bass in that order:

* ``"S67"``: the soprano starts a note, MIDI pitch 67 (G4);
* ``"S~"``: the soprano holds the note it was playing (a longer note, or one tied over);
* ``"S_"``: the soprano rests.

A chorale is the list of those tokens, so :class:`fastrnn.RNNLanguageModel` learns it exactly
as it learns words (a list of tokens per document; nothing here is text). Generation samples a
token stream, which is read back into four parts and written as a MIDI file. The tokens of the
parsed corpus are cached in fastrnn's data folder, so only the first run parses the scores.

Usage::

    pip install 'fastrnn[music]'
    python examples/bach_chorales.py [--time-budget 180] [--chorales 371] [--out chorale.mid]

Prints the test perplexity per token of 10 % held-out chorales against a bigram model of the
same tokens (add-one smoothing), and writes the generated chorales. ``main`` returns both
perplexities and, for each chorale written, its file and its tokens.
"""

import argparse
import json
import math
import os
from collections import Counter
from pathlib import Path

VOICES = "SATB"
#: one grid step, in quarter notes
STEP = 0.5


def _data_home():
    return Path(os.environ.get("FASTRNN_DATA") or Path.home() / ".cache" / "fastrnn")


def encode(score, step=STEP):
    """A four-part score -> its list of tokens (four per grid step); ``None`` if it does not have
    exactly four parts."""
    parts = list(score.parts)
    if len(parts) != 4:
        return None
    n_steps = int(round(float(score.highestTime) / step))
    grid = [[f"{v}_"] * n_steps for v in VOICES]
    for v, part in enumerate(parts):
        for el in part.flatten().notes:
            if el.duration.isGrace:
                continue
            start = int(round(float(el.offset) / step))
            end = max(start + 1, int(round(float(el.offset + el.quarterLength) / step)))
            pitch = max(p.midi for p in el.pitches)  # a chord within one voice: its top note
            tied = el.tie is not None and el.tie.type in ("continue", "stop")
            for t in range(start, min(end, n_steps)):
                onset = t == start and not tied
                grid[v][t] = f"{VOICES[v]}{pitch}" if onset else f"{VOICES[v]}~"
    return [grid[v][t] for t in range(n_steps) for v in range(4)]


def decode(tokens, step=STEP):
    """Tokens -> ``{voice: [(midi pitch or None for a rest, start step, length in steps)]}``.

    Tolerant of what a model may generate: a token of a voice not after the previous one starts
    a new step, and a hold with nothing to hold is a rest."""
    events = {v: [] for v in VOICES}
    t, last = -1, len(VOICES)
    for tok in tokens:
        v, rest = tok[:1], tok[1:]
        if v not in VOICES:
            continue
        if VOICES.index(v) <= last:
            t += 1
        last = VOICES.index(v)
        notes = events[v]
        held = rest == "~" and notes and notes[-1][0] is not None \
            and notes[-1][1] + notes[-1][2] == t
        if held:
            pitch, start, length = notes[-1]
            notes[-1] = (pitch, start, length + 1)
        elif rest.isdigit():
            notes.append((int(rest), t, 1))
        else:
            notes.append((None, t, 1))
    return events


def to_score(events, step=STEP):
    """Decoded events -> a music21 score of four parts (soprano first)."""
    from music21 import note, stream

    score = stream.Score()
    for v in VOICES:
        part = stream.Part(id=v)
        for pitch, start, length in events[v]:
            el = note.Rest() if pitch is None else note.Note(pitch)
            el.quarterLength = length * step
            part.insert(start * step, el)
        score.insert(0, part)
    return score


def load_chorales(limit=None):
    """Token lists of the corpus's four-part chorales, transposed to C major / A minor (cached)."""
    cache = _data_home() / "bach_chorales_tokens.json"
    if cache.exists():
        chorales = json.loads(cache.read_text())
    else:  # parse the scores (about a third of a second each); only the whole corpus is cached
        from music21 import corpus, interval, pitch

        chorales = []
        for score in corpus.chorales.Iterator(numberingSystem="riemenschneider",
                                              returnType="stream"):
            key = score.analyze("key")
            target = pitch.Pitch("C" if key.mode == "major" else "A")
            tokens = encode(score.transpose(interval.Interval(key.tonic, target)))
            if tokens:
                chorales.append(tokens)
            if limit and len(chorales) == limit:
                return chorales
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(chorales))
        os.replace(tmp, cache)  # atomic: a run stopped half-way leaves no broken cache
    return chorales[:limit] if limit else chorales


def bigram_perplexity(train, test):
    """Per-token perplexity of an add-one bigram model (``<s>`` starts each chorale)."""
    vocab = {t for c in train for t in c} | {"</s>"}
    pairs, firsts = Counter(), Counter()
    for c in train:
        seq = ["<s>", *c, "</s>"]
        pairs.update(zip(seq, seq[1:]))
        firsts.update(seq[:-1])
    nll, n = 0.0, 0
    for c in test:
        seq = ["<s>", *c, "</s>"]
        for a, b in zip(seq, seq[1:]):
            nll -= math.log((pairs[(a, b)] + 1) / (firsts[a] + len(vocab) + 1))
            n += 1
    return math.exp(nll / n)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chorales", type=int, default=None, help="use the first N chorales")
    ap.add_argument("--time-budget", type=float, default=180.0, help="training seconds")
    ap.add_argument("--hidden-size", type=int, default=256)
    ap.add_argument("--n-generate", type=int, default=2, help="chorales to generate")
    ap.add_argument("--steps", type=int, default=64, help="eighth-note steps per chorale")
    ap.add_argument("--out", default="chorale.mid",
                    help="MIDI file; several chorales get -1, -2 ... before the suffix")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from fastrnn import RNNLanguageModel

    chorales = load_chorales(args.chorales)
    n_test = max(1, len(chorales) // 10)
    train, test = chorales[:-n_test], chorales[-n_test:]
    print(f"{len(chorales)} chorales, {sum(map(len, chorales))} tokens; "
          f"{len(train)} to train, {len(test)} to test")
    model = RNNLanguageModel(hidden_size=args.hidden_size, time_budget=args.time_budget,
                             max_iter=100, random_state=args.seed)
    model.fit(train)
    ppl = model.perplexity(test)
    bigram = bigram_perplexity(train, test)
    print(f"test perplexity per token: {ppl:.2f} (add-one bigram model: {bigram:.2f})")

    out = Path(args.out)
    written = []
    for i in range(args.n_generate):
        tokens = model.generate(max_length=4 * args.steps, temperature=0.8,
                                random_state=args.seed + i)
        name = out if args.n_generate == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
        to_score(decode(tokens)).write("midi", fp=str(name))
        written.append((name, tokens))
        print(f"wrote {name}: {len(tokens)} tokens")
    return ppl, bigram, written


if __name__ == "__main__":
    main()
