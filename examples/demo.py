"""fastrnn demo: the main job on real data.

Runs each recurrent cell (simple RNN, LSTM, GRU) forward and backward over a padded batch of real
JapaneseVowels utterances (variable length, 12 cepstral channels), checks the compiled Numba kernels
against the numpy reference backend, and times both.
"""

import time

import numpy as np

from fastrnn import show_backends
from fastrnn.datasets import load_japanese_vowels
from fastrnn.nn import GRU, LSTM, RNN
from fastrnn.text import pad_sequences


def median_time(fn, repeats=5):
    fn()  # warm-up (includes JIT compilation the first time)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    print("fastrnn backends:")
    show_backends()
    X_list, y = load_japanese_vowels("train")
    X, lengths = pad_sequences(X_list, dtype=np.float64)
    print(f"\nJapaneseVowels train: {len(X_list)} utterances, {X.shape[2]} channels, "
          f"lengths {lengths.min()}-{lengths.max()} (padded to {X.shape[1]})\n")
    rng = np.random.RandomState(0)
    header = f"{'cell':8s} {'dtype':8s} {'max |Y diff|':>13s} {'max |dW diff|':>14s} " \
             f"{'numpy ms':>9s} {'numba ms':>9s} {'speed-up':>8s}"
    print(header)
    print("-" * len(header))
    for name, cls, kw in [("RNN", RNN, {}), ("LSTM", LSTM, {}), ("GRU", GRU, {})]:
        for dtype in (np.float64, np.float32):
            layers = {b: cls(12, 64, dtype=dtype, backend=b, random_state=0, **kw)
                      for b in ("numpy", "numba")}
            dY = rng.randn(X.shape[0], X.shape[1], 64).astype(dtype)
            results, times = {}, {}
            for b, layer in layers.items():
                def step(layer=layer):
                    Y, _ = layer.forward(X, lengths)
                    layer.backward(dY)
                    return Y
                times[b] = median_time(step)
                results[b] = (step(), {k: v.copy() for k, v in layer.grads.items()})
            dy = np.abs(results["numba"][0] - results["numpy"][0]).max()
            dw = max(np.abs(results["numba"][1][k] - results["numpy"][1][k]).max()
                     for k in results["numpy"][1])
            ok = "ok" if dy < (1e-10 if dtype == np.float64 else 1e-4) else "MISMATCH"
            print(f"{name:8s} {np.dtype(dtype).name:8s} {dy:13.2e} {dw:14.2e} "
                  f"{times['numpy'] * 1e3:9.2f} {times['numba'] * 1e3:9.2f} "
                  f"{times['numpy'] / times['numba']:7.1f}x {ok}")
    print("\nforward + backward of the whole padded batch; padding never leaks into outputs.")


if __name__ == "__main__":
    main()
