"""The char LSTM language model of ``compare.py`` (V 96, E 64, H 256, 32 streams, bptt 64, Adam,
clip 5):
training throughput with ``SequenceNetwork`` + ``Trainer``, carrying the state between chunks."""

import time

from . import SlowBenchmark, compare, limit_threads

STEPS = 6


class CharLanguageModel(SlowBenchmark):
    """Tokens per second of truncated-BPTT training (median chunk time)."""

    repeat = (1, 3, 60.0)

    def setup(self):
        limit_threads()
        self.run = compare.LMRun(["auto"], use_torch=False, n_chunks=STEPS)
        self.run.fr_step("auto")  # compile / load the kernels

    def track_tokens_per_second(self):
        times = []
        for _ in range(STEPS):
            t0 = time.perf_counter()
            self.run.fr_step("auto")
            times.append(time.perf_counter() - t0)
        times.sort()
        median = times[len(times) // 2]
        return compare.LM["B"] * compare.LM["bptt"] / median

    track_tokens_per_second.unit = "tokens/s"

    def time_chunk(self):
        self.run.fr_step("auto")

    def peakmem_chunk(self):
        self.run.fr_step("auto")
