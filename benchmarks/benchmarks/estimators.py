"""Estimators: ``RNNClassifier.fit`` on the JapaneseVowels data set (skipped until the estimator
exists, or when the data set cannot be loaded)."""

import warnings

from . import SlowBenchmark, limit_threads

#: settings tried on the classifier (those it does not accept are left out)
FIT_SETTINGS = dict(cell="lstm", hidden_size=64, max_iter=10, batch_size=32, random_state=0)


class RNNClassifierFit(SlowBenchmark):
    """``fit`` of a single-layer LSTM classifier, 10 epochs, 270 training series of 7-29 steps."""

    repeat = (1, 5, 60.0)
    timeout = 900

    def setup(self):
        limit_threads()
        import fastrnn
        try:
            cls = fastrnn.RNNClassifier  # lazy: imports scikit-learn only here
        except (AttributeError, ImportError) as exc:
            raise NotImplementedError(f"fastrnn.RNNClassifier is not available yet ({exc})")
        from fastrnn.datasets import load_japanese_vowels
        try:
            self.X, self.y = load_japanese_vowels("train")
        except Exception as exc:  # noqa: BLE001 - offline and not cached: skip
            raise NotImplementedError(f"JapaneseVowels cannot be loaded ({exc})")
        accepted = cls().get_params()
        self.make = lambda: cls(**{k: v for k, v in FIT_SETTINGS.items() if k in accepted})
        self._fit(self.X[::10], self.y[::10])  # compile the kernels outside the timing

    def _fit(self, X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning after max_iter epochs is expected
            self.make().fit(X, y)

    def time_fit(self):
        self._fit(self.X, self.y)

    def peakmem_fit(self):
        self._fit(self.X, self.y)
