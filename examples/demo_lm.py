"""fastrnn demo: a character-level LSTM language model of Shakespeare in about two minutes.

Trains on 39 of Shakespeare's works (4.7 million characters) for a fixed time budget, prints the
validation bits per character on Hamlet (lower is better; a 7-gram Kneser-Ney model gets about 2.3
on held-out plays), and samples three texts at temperatures 0.5, 0.8 and 1.0.

    python examples/demo_lm.py            # about 2 minutes
    python examples/demo_lm.py 600        # a longer budget gives a better model
"""

import sys
import time

from fastrnn.datasets import shakespeare_splits
from fastrnn.estimators.language_model import RNNLanguageModel

BUDGET = 100.0  # seconds of training; loading, validation and sampling add about 20 s


def main(budget=BUDGET, verbose=1):
    t0 = time.perf_counter()
    splits = shakespeare_splits()
    train, validation = splits["train"], splits["validation"]
    print(f"Shakespeare: {len(train)} training texts ({sum(map(len, train)):,} characters), "
          f"validation: hamlet ({len(validation[0]):,} characters)")
    lm = RNNLanguageModel(level="char", hidden_size=256, embedding_dim=64, batch_size=64, bptt=64,
                          learning_rate=3e-3, max_iter=20, time_budget=budget, random_state=0,
                          verbose=verbose)
    lm.fit(train)
    rate = lm.n_tokens_seen_ / lm.training_time_
    print(f"trained {lm.n_steps_} steps, {lm.n_tokens_seen_:,} characters in "
          f"{lm.training_time_:.0f} s ({rate:,.0f} characters/s)")
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
    main(float(sys.argv[1]) if len(sys.argv) > 1 else BUDGET)
