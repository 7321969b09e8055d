"""Computations whose results are pinned by ``tests/data/compat``: layers of every cell on every CPU
backend (forward, backward, training mode with dropout), fitted estimators and a language model.

Only the public API is used, so the same functions ran on the code that wrote the fixture and run on
today's code; ``tests/test_compat.py`` compares the two results, bit for bit where the machine is the
kind that wrote the fixture (see :func:`machine_signature`). ``python tests/make_compat_fixture.py``
rewrites the fixture (only when a change of results is intended, and said so in the changelog).
"""

import platform

import numpy as np

SEED = 1234
LENGTHS = np.array([7, 3, 5, 1, 7], dtype=np.int64)
B, T, I, H = 5, 7, 4, 6

#: (name, class name, constructor options)
CELLS = [
    ("rnn_tanh", "RNN", {}),
    ("rnn_relu", "RNN", {"nonlinearity": "relu"}),
    ("lstm", "LSTM", {}),
    ("lstm_peephole", "LSTM", {"peephole": True}),
    ("gru", "GRU", {}),
    ("gru_v1", "GRU", {"reset_after": False}),
]

#: (name, layer options, training mode)
SHAPES = [
    ("uni", dict(num_layers=1), False),
    ("deep_bidir_train", dict(num_layers=2, bidirectional=True, dropout=0.3,
                              recurrent_dropout=0.2), True),
]


def machine_signature():
    """What decides the bits of a float32 result here: the CPU's vector extensions and the BLAS."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx512_bf16", "avx2", "fma") if f" {f}" in flags]
    try:
        from threadpoolctl import threadpool_info

        blas = sorted(f"{i.get('internal_api')}:{i.get('version')}:{i.get('architecture')}"
                      for i in threadpool_info() if i.get("user_api") == "blas")
    except Exception:  # noqa: BLE001 - informative only
        blas = []
    return "|".join([platform.machine(), ",".join(isa), ";".join(blas)])


def _inputs(dtype):
    rng = np.random.RandomState(SEED)
    X = rng.standard_normal((B, T, I)).astype(dtype)
    for b, L in enumerate(LENGTHS):
        X[b, L:] = np.nan  # padding is never read
    return X, rng


def layer_case(cell_name, shape_name, backend, dtype):
    """Results of one layer: ``{name: array}``."""
    import fastrnn.nn as fnn

    _, cls, opts = next(c for c in CELLS if c[0] == cell_name)
    _, shape_opts, training = next(s for s in SHAPES if s[0] == shape_name)
    layer = getattr(fnn, cls)(I, H, dtype=dtype, backend=backend, random_state=SEED,
                              **opts, **shape_opts)
    layer.train(training)
    X, rng = _inputs(dtype)
    out = {f"param/{k}": v.copy() for k, v in layer.params.items()}
    D = 2 if shape_opts.get("bidirectional") else 1
    n = shape_opts["num_layers"] * D
    h0 = rng.standard_normal((n, B, H)).astype(dtype)
    state = (h0, rng.standard_normal((n, B, H)).astype(dtype)) if cls == "LSTM" else h0
    Y, h_n = layer.forward(X, LENGTHS, state)
    dY = rng.standard_normal(Y.shape).astype(dtype)
    dh = tuple(rng.standard_normal(s.shape).astype(dtype) for s in
               (h_n if isinstance(h_n, tuple) else (h_n,)))
    dX = layer.backward(dY, dh if cls == "LSTM" else dh[0])
    out["Y"] = Y
    for i, s in enumerate(h_n if isinstance(h_n, tuple) else (h_n,)):
        out[f"h_n/{i}"] = s
    out["dX"] = dX
    for i, g in enumerate(layer.grad_h0 if isinstance(layer.grad_h0, tuple) else (layer.grad_h0,)):
        out[f"dh0/{i}"] = g
    out.update({f"grad/{k}": v.copy() for k, v in layer.grads.items()})
    # a second call in eval mode on one sequence (the shape that "auto" may route elsewhere)
    layer.eval()
    Y1, _ = layer.forward(X[:1, :5], [5])
    out["Y_batch1"] = Y1
    if not shape_opts.get("bidirectional"):
        st = layer.init_state(2)
        steps = [layer.step(X[:2, t], st)[0].copy() for t in range(3)]
        out["stream"] = np.stack(steps)
    return out


def all_layer_cases(backends):
    """Every layer case on ``backends``, keyed ``layer/<cell>/<shape>/<backend>/<dtype>/<name>``."""
    out = {}
    for cell_name, _, _ in CELLS:
        for shape_name, _, _ in SHAPES:
            for backend in backends:
                for dtype in (np.float32, np.float64):
                    res = layer_case(cell_name, shape_name, backend, dtype)
                    if backend != backends[0]:  # the initial parameters do not depend on it
                        res = {k: v for k, v in res.items() if not k.startswith("param/")}
                    key = f"layer/{cell_name}/{shape_name}/{backend}/{np.dtype(dtype).name}"
                    out.update({f"{key}/{k}": v for k, v in res.items()})
    return out


# ---------------------------------------------------------------------------------- estimators
def series_data():
    rng = np.random.RandomState(SEED + 1)
    lengths = rng.randint(4, 12, size=40)
    X = [rng.standard_normal((L, 3)) + (i % 2) for i, L in enumerate(lengths)]
    y_cls = np.array(["a" if i % 2 else "b" for i in range(40)])
    y_reg = np.array([x.mean() for x in X])
    tags = [np.where(x[:, 0] > 0.5, "hi", "lo") for x in X]
    return X, y_cls, y_reg, tags


#: the estimators' training defaults when the fixture was made, pinned under every case's own
#: options: the defaults have changed since, and the fixture checks that the same settings give
#: the same results (the tagger's case names its bidirectional=True)
FIRST_DEFAULTS = dict(bidirectional=False, dropout=0.0, learning_rate=1e-3, batch_size=32,
                      max_iter=100, lr_schedule="constant", early_stopping=False)

#: (file name, estimator class, constructor options, kind)
ESTIMATORS = [
    ("classifier.fastrnn", "RNNClassifier",
     dict(hidden_size=5, max_iter=3, dropout=0.1, random_state=0), "cls"),
    ("classifier_tokens.fastrnn", "RNNClassifier",
     dict(hidden_size=5, embedding_dim=3, bidirectional=True, pooling="last", max_iter=3,
          random_state=0, linear=False), "cls_tokens"),
    ("regressor.fastrnn", "RNNRegressor",
     dict(cell="gru", hidden_size=5, pooling="mean", max_iter=3, random_state=0), "reg"),
    ("tagger.fastrnn", "RNNTagger",
     dict(cell="rnn", hidden_size=5, bidirectional=True, max_iter=3, random_state=0), "tag"),
]


def _estimator_inputs(kind):
    X, y_cls, y_reg, tags = series_data()
    if kind == "cls_tokens":
        X = [np.clip((np.abs(x[:, 0]) * 4).astype(np.int64) + 1, 1, 9) for x in X]
    target = {"cls": y_cls, "cls_tokens": y_cls, "reg": y_reg, "tag": tags}[kind]
    return X, target


def fit_estimator(name):
    import fastrnn

    fname, cls, opts, kind = next(e for e in ESTIMATORS if e[0] == name)
    X, y = _estimator_inputs(kind)
    return getattr(fastrnn, cls)(**{**FIRST_DEFAULTS, **opts}).fit(X, y)


def estimator_outputs(model, name):
    """Predictions of a fitted (or loaded) estimator and gradients of its network."""
    kind = next(e for e in ESTIMATORS if e[0] == name)[3]
    X, _ = _estimator_inputs(kind)
    out = {}
    if kind.startswith("cls"):
        out["proba"] = model.predict_proba(X)
        out["transform"] = model.transform(X)
    elif kind == "reg":
        out["predict"] = np.asarray(model.predict(X), np.float64)
        out["transform"] = model.transform(X)
    else:
        out["proba"] = np.concatenate(model.predict_proba(X))
    # gradients of the network itself (eval mode: no dropout), on the first sequences padded
    net = model.network_
    net.eval()
    lengths = np.array([len(x) for x in X[:6]])
    Tm = int(lengths.max())
    if kind == "cls_tokens":
        Xp = np.zeros((6, Tm), np.int64)
    else:
        Xp = np.zeros((6, Tm, X[0].shape[1]), net.dtype)
    for b, x in enumerate(X[:6]):
        Xp[b, :len(x)] = x
    o, _ = net.forward(Xp, lengths)
    net.backward(np.ones_like(o))
    out.update({f"netgrad/{k}": v.copy() for k, v in net.grads.items()})
    return out


# ---------------------------------------------------------------------------------- language model
def lm_texts():
    rng = np.random.RandomState(SEED + 2)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far"]
    return [" ".join(rng.choice(words, size=rng.randint(3, 9))) + "." for _ in range(30)]


def fit_lm():
    from fastrnn import RNNLanguageModel

    # the network alone, as the fixture was written before the n-gram part
    return RNNLanguageModel(hidden_size=8, embedding_dim=5, bptt=8, batch_size=4, max_iter=2,
                            dropout=0.1, random_state=0, ngram_order=None).fit(lm_texts()[:24])


def lm_outputs(model):
    held = lm_texts()[24:]
    out = {"perplexity": np.array([model.perplexity(held)]),
           "score": np.array([model.score(held)])}
    out["next"] = np.array([p for _, p in model.predict_next("the c", k=5)])
    st = model.init_state(1)
    out["stream"] = np.stack([model.step(t, st)[0].copy() for t in "the "])
    return out
