"""Train a bidirectional LSTM speaker classifier on JapaneseVowels with the engine alone.

No estimator class: a :class:`fastrnn.nn.SequenceNetwork`, the softmax cross-entropy loss and a
:class:`fastrnn.train.Trainer` (Adam, clipping, NaN recovery), with length-bucketed minibatches.
Run: ``python examples/train_bilstm_japanese_vowels.py``.
"""

import time

import numpy as np

from fastrnn.datasets import load_japanese_vowels
from fastrnn.losses import softmax_cross_entropy
from fastrnn.nn import SequenceNetwork
from fastrnn.text import length_buckets, pad_sequences
from fastrnn.train import Trainer


def main(epochs=30, seed=0):
    X_train, y_train = load_japanese_vowels("train")
    X_test, y_test = load_japanese_vowels("test")
    classes = np.unique(y_train)
    y_tr = np.searchsorted(classes, y_train)
    y_te = np.searchsorted(classes, y_test)
    # standardise each channel with the training statistics
    stacked = np.concatenate(X_train)
    mean, std = stacked.mean(0), stacked.std(0)
    Xtr, Ltr = pad_sequences([(x - mean) / std for x in X_train], dtype=np.float32)
    Xte, Lte = pad_sequences([(x - mean) / std for x in X_test], dtype=np.float32)

    net = SequenceNetwork(len(classes), n_features=12, cell="lstm", hidden_size=32,
                          bidirectional=True, pooling="mean", dropout=0.1, random_state=seed)
    trainer = Trainer(net, optimizer="adam", learning_rate=0.01, clip_norm=5.0)
    rng = np.random.RandomState(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        losses = []
        for idx in length_buckets(Ltr, 32, random_state=rng):
            T = Ltr[idx].max()
            loss, _ = trainer.step(Xtr[idx, :T], Ltr[idx],
                                   lambda out, idx=idx: softmax_cross_entropy(out, y_tr[idx]))
            losses.append(loss)
        if (epoch + 1) % 5 == 0:
            print(f"epoch {epoch + 1:3d}  train loss {np.mean(losses):.4f}")
    train_time = time.perf_counter() - t0
    net.eval()
    out, _ = net.forward(Xte, Lte)
    acc = float(np.mean(out.argmax(1) == y_te))
    print(f"test accuracy {acc:.4f} on {len(y_te)} sequences; training took {train_time:.1f} s")
    return acc, train_time


if __name__ == "__main__":
    main()
