"""fastrnn demo: a character-level language model of Shakespeare with the defaults, in about a
minute.

``RNNLanguageModel(random_state=0)`` trains on 39 of Shakespeare's works (4.7 million characters;
it holds out the last 4 to weigh its n-gram part against its network), prints the bits per
character on Hamlet (lower is better; a 7-gram Kneser-Ney model alone gets about 2.3 on held-out
plays), and samples three texts at temperatures 0.5, 0.8 and 1.0.

    python examples/demo_lm.py            # about a minute
    python examples/demo_lm.py 30         # stop training after 30 s
"""

import sys
import time

from fastrnn.datasets import shakespeare_splits
from fastrnn.estimators.language_model import RNNLanguageModel

def main(budget=None, verbose=1):
    t0 = time.perf_counter()
    splits = shakespeare_splits()
    train, validation = splits["train"], splits["validation"]
    print(f"Shakespeare: {len(train)} training texts ({sum(map(len, train)):,} characters), "
          f"validation: hamlet ({len(validation[0]):,} characters)")
    lm = RNNLanguageModel(random_state=0, time_budget=budget, verbose=verbose)
    lm.fit(train)
    rate = lm.n_tokens_seen_ / lm.training_time_
    print(f"trained {lm.n_steps_} steps, {lm.n_tokens_seen_:,} characters in "
          f"{lm.training_time_:.0f} s ({rate:,.0f} characters/s); weight of the "
          f"{lm.ngram_.order}-gram part: {lm.ngram_weight_:.2f}")
    bits = lm.bits_per_token(validation)
    print(f"validation (hamlet): {bits:.3f} bits per character (perplexity {2 ** bits:.2f})")
    samples = {}
    for temperature in (0.5, 0.8, 1.0):
        text = lm.generate("KING.\n", max_length=300, temperature=temperature, random_state=1)
        samples[temperature] = text
        print(f"\n--- temperature {temperature}\nKING.\n{text}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return bits, samples


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else None)
