"""fastrnn's CUDA backend against PyTorch (cuDNN) on the same GPU: forward, training step, char LM.

Usage (on a machine with an NVIDIA GPU, PyTorch built for CUDA and ``fastrnn[cuda]``)::

    python benchmarks/gpu_check.py [--repeats 10] [--json gpu_check.json]
    bash benchmarks/gpu_check.sh            # the CUDA tests on the hardware, then this script

Workloads (float32, one layer, batch-first host arrays in and out):

``B``  batch 32, 100 steps, 128 inputs, 256 units; ``C``  batch 64, 50 steps, 256 inputs, 512 units;
LSTM and GRU each. *forward*: the layer's ``forward`` on a host array; *train*: ``forward`` and
``backward`` with a fixed output gradient. PyTorch runs the same module (the same weights,
copied into fastrnn with :meth:`fastrnn.nn.LSTM.from_torch`) on the GPU and is timed the same
way, from a host (CPU) array to a host array, with ``torch.cuda.synchronize()`` before the clock
stops; its time without the two copies is reported too.

``lm``  the character language model of ``benchmarks/compare.py`` (96 symbols, embedding 64,
LSTM 256, 32 streams of 64 steps, Adam, clipping at 5): one training step of
:class:`fastrnn.train.Trainer` on a :class:`fastrnn.nn.SequenceNetwork` with ``backend="cuda"``
against a plain PyTorch loop of the same model on the GPU; tokens per second.

``stream``  streaming steps (:meth:`fastrnn.nn.LSTM.step`) of a two-layer LSTM and GRU, 32
streams, 128 inputs, 256 units: the step that keeps the weights and states on the GPU (one upload
of ``x_t``, one download of ``y_t``) against the host-level step it replaced (the backend's
per-kernel functions, which copy per kernel call) and against PyTorch stepping the same module one
step at a time from a host array to a host array, its state kept on the GPU; time per step.

The outputs of both are compared before anything is timed (float32, relative error below 1e-4;
the training step compares the input gradient). Each time is the median of ``--repeats`` calls
after two warm-up calls. ``--smoke`` runs tiny shapes once without warm-up, for the test suite,
on numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``) and PyTorch on the CPU when it has no GPU.
"""

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np

SHAPES = {"B": (32, 100, 128, 256), "C": (64, 50, 256, 512)}
SMOKE_SHAPES = {"B": (2, 3, 2, 3)}
LM = dict(V=96, E=64, H=256, B=32, bptt=64, lr=1e-3, clip=5.0)
SMOKE_LM = dict(V=5, E=2, H=3, B=2, bptt=3, lr=1e-3, clip=5.0)
STREAM = dict(B=32, I=128, H=256, L=2, steps=20)
SMOKE_STREAM = dict(B=2, I=2, H=3, L=2, steps=2)


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = max(np.linalg.norm(a), np.linalg.norm(b), 1e-30)
    return float(np.linalg.norm(a - b) / den)


#: warm-up calls before the timed ones (none with ``--smoke``, whose times mean nothing)
WARMUP = 2


def _median_seconds(fn, repeats, sync):
    for _ in range(WARMUP):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def layer_rows(torch, device, shapes, repeats, sync):
    from fastrnn import nn

    rows = []
    for group, (B, T, I, H) in shapes.items():
        for cell in ("LSTM", "GRU"):
            torch.manual_seed(0)
            module = getattr(torch.nn, cell)(I, H, batch_first=True)
            layer = getattr(nn, cell).from_torch(module, backend="cuda", dtype=np.float32)
            module = module.to(device)
            rng = np.random.default_rng(0)
            X = rng.standard_normal((B, T, I)).astype(np.float32)
            dY = rng.standard_normal((B, T, H)).astype(np.float32)

            def torch_train(X=X, dY=dY, module=module):
                x = torch.from_numpy(X).to(device).requires_grad_()
                y, _ = module(x)
                y.backward(torch.from_numpy(dY).to(device))
                return y.detach().cpu().numpy(), x.grad.cpu().numpy()

            def torch_forward(X=X, module=module):
                with torch.no_grad():
                    return module(torch.from_numpy(X).to(device))[0].cpu().numpy()

            x_dev = torch.from_numpy(X).to(device)

            def torch_forward_on_device(module=module, x_dev=x_dev):
                with torch.no_grad():
                    return module(x_dev)[0]

            def ours_train(X=X, dY=dY, layer=layer):
                Y, _ = layer.forward(X)
                return Y, layer.backward(dY)

            Y, _ = layer.forward(X)
            y_ref, dx_ref = torch_train()
            dX = ours_train()[1]
            err = max(_rel(Y, torch_forward()), _rel(dX, dx_ref))
            if err > 1e-4:
                raise SystemExit(f"{group}-{cell}: fastrnn and PyTorch disagree (relative error "
                                 f"{err:.2e}); nothing timed.")
            row = dict(config=f"{group}-{cell}", shape=dict(B=B, T=T, I=I, H=H), rel_err=err)
            row["forward_fastrnn"] = _median_seconds(lambda: layer.forward(X), repeats, sync)
            row["forward_torch"] = _median_seconds(torch_forward, repeats, sync)
            row["forward_torch_on_device"] = _median_seconds(torch_forward_on_device, repeats,
                                                             sync)
            row["train_fastrnn"] = _median_seconds(ours_train, repeats, sync)
            row["train_torch"] = _median_seconds(torch_train, repeats, sync)
            rows.append(row)
            print(_format(row), flush=True)
    return rows


def lm_row(torch, device, c, repeats, sync, n_chunks=4):
    from fastrnn.losses import sequence_softmax_cross_entropy
    from fastrnn.nn import SequenceNetwork
    from fastrnn.train import Trainer

    net = SequenceNetwork(c["V"], vocab_size=c["V"], embedding_dim=c["E"], hidden_size=c["H"],
                          pooling=None, backend="cuda", random_state=0)
    trainer = Trainer(net, optimizer="adam", learning_rate=c["lr"], clip_norm=c["clip"])
    p = net.params
    emb = torch.nn.Embedding(c["V"], c["E"], padding_idx=net.embedding.padding_idx)
    lstm = torch.nn.LSTM(c["E"], c["H"], batch_first=True)
    head = torch.nn.Linear(c["H"], c["V"])
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(p["embedding.weight"]))
        for k, v in lstm.named_parameters():
            v.copy_(torch.from_numpy(p["rnn." + k]))
        head.weight.copy_(torch.from_numpy(p["head.weight"]))
        head.bias.copy_(torch.from_numpy(p["head.bias"]))
    modules = [m.to(device) for m in (emb, lstm, head)]
    params = [q for m in modules for q in m.parameters()]
    opt = torch.optim.Adam(params, lr=c["lr"])
    rng = np.random.default_rng(2)
    stream = rng.integers(0, c["V"], size=(c["B"], n_chunks * c["bptt"] + 1))
    chunks = [(stream[:, i:i + c["bptt"]], stream[:, i + 1:i + 1 + c["bptt"]])
              for i in range(0, n_chunks * c["bptt"], c["bptt"])]
    lengths = np.full(c["B"], c["bptt"], np.int64)
    k = {"ours": 0, "torch": 0}

    def ours():
        x, y = chunks[k["ours"] % n_chunks]
        k["ours"] += 1
        return trainer.step(x, lengths, lambda out: sequence_softmax_cross_entropy(
            out, y, lengths))[0]

    def theirs():
        x, y = chunks[k["torch"] % n_chunks]
        k["torch"] += 1
        opt.zero_grad()
        out, _ = lstm(emb(torch.from_numpy(x).to(device)))
        logits = head(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c["V"]),
                                                 torch.from_numpy(y).to(device).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c["clip"])
        opt.step()
        return float(loss.detach())

    first = (ours(), theirs())
    if abs(first[0] - first[1]) > 1e-4 * abs(first[1]):
        raise SystemExit(f"lm: the first losses disagree ({first[0]:.6f} vs {first[1]:.6f}); "
                         "nothing timed.")
    tokens = c["B"] * c["bptt"]
    row = dict(config="lm", first_loss=first[0],
               lm_fastrnn=tokens / _median_seconds(ours, repeats, sync),
               lm_torch=tokens / _median_seconds(theirs, repeats, sync))
    print(f"lm        fastrnn {row['lm_fastrnn']:10.0f} tokens/s   PyTorch "
          f"{row['lm_torch']:10.0f} tokens/s   ratio {row['lm_fastrnn'] / row['lm_torch']:.2f}")
    return row


def stream_rows(torch, device, c, repeats, sync):
    from fastrnn import nn
    from fastrnn._backend import get_backend
    from fastrnn.kernels import _driver

    rows = []
    B, I, H, L = c["B"], c["I"], c["H"], c["L"]
    X = np.random.default_rng(3).standard_normal((c["steps"], B, I)).astype(np.float32)
    for cell in ("LSTM", "GRU"):
        torch.manual_seed(0)
        module = getattr(torch.nn, cell)(I, H, num_layers=L)
        layer = getattr(nn, cell).from_torch(module, backend="cuda", dtype=np.float32).eval()
        module = module.to(device)
        # the host-level step: the general driver over the backend's per-kernel functions
        host_state = nn.StreamState(layer, B)
        host_step = _driver.stream(get_backend("cuda"), layer._spec, layer.params, host_state)

        def run_host():
            host_state.reset()
            for x in X:
                host_state.x[...] = x
                host_step()
            return host_state.h[-1].copy()

        state = layer.init_state(B)  # uploads the weights, once

        def run_device():
            state.reset()
            for x in X:
                y, _ = layer.step(x, state)
            return y.copy()

        def run_torch():
            with torch.no_grad():
                hc = None
                for x in X:
                    y, hc = module(torch.from_numpy(x[None]).to(device), hc)
                    y = y[0].cpu().numpy()
            return y

        ref = run_torch()
        err = max(_rel(run_device(), ref), _rel(run_host(), ref))
        if err > 1e-4:
            raise SystemExit(f"stream-{cell}: fastrnn and PyTorch disagree (relative error "
                             f"{err:.2e}); nothing timed.")
        n = len(X)
        row = dict(config=f"stream-{cell}", shape=dict(B=B, I=I, H=H, L=L), rel_err=err,
                   step_device=_median_seconds(run_device, repeats, sync) / n,
                   step_host=_median_seconds(run_host, repeats, sync) / n,
                   step_torch=_median_seconds(run_torch, repeats, sync) / n)
        rows.append(row)
        print(f"{row['config']:12s} per step: device {1e6 * row['step_device']:8.1f} us, "
              f"host-level {1e6 * row['step_host']:8.1f} us (ratio "
              f"{row['step_host'] / row['step_device']:.2f}), PyTorch "
              f"{1e6 * row['step_torch']:8.1f} us (ratio "
              f"{row['step_torch'] / row['step_device']:.2f})", flush=True)
    return rows


def _format(row):
    fwd = row["forward_torch"] / row["forward_fastrnn"]
    trn = row["train_torch"] / row["train_fastrnn"]
    return (f"{row['config']:8s}  forward {1e3 * row['forward_fastrnn']:8.2f} ms vs "
            f"{1e3 * row['forward_torch']:8.2f} ms ({1e3 * row['forward_torch_on_device']:.2f} "
            f"on device), speed ratio {fwd:.2f};  train {1e3 * row['train_fastrnn']:8.2f} ms vs "
            f"{1e3 * row['train_torch']:8.2f} ms, ratio {trn:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, one repeat (tests)")
    args = ap.parse_args(argv)
    import torch

    import fastrnn

    ok, why = fastrnn.available_backends()["cuda"]
    if not ok:
        raise SystemExit(f"the CUDA backend cannot run here: {why}")
    if torch.cuda.is_available():
        device, sync = torch.device("cuda"), torch.cuda.synchronize
        gpu = torch.cuda.get_device_name(0)
    elif args.smoke:
        device, sync, gpu = torch.device("cpu"), (lambda: None), "none (simulator, PyTorch on CPU)"
    else:
        raise SystemExit("PyTorch sees no GPU (torch.cuda.is_available() is False); install a "
                         "CUDA build of PyTorch, or pass --smoke to check the script itself.")
    repeats = 1 if args.smoke else args.repeats
    if args.smoke:
        global WARMUP
        WARMUP = 0
    print(f"GPU: {gpu}; PyTorch {torch.__version__} (cuDNN "
          f"{torch.backends.cudnn.version()}); fastrnn {fastrnn.__version__}; "
          f"python {platform.python_version()}")
    rows = layer_rows(torch, device, SMOKE_SHAPES if args.smoke else SHAPES, repeats, sync)
    rows.append(lm_row(torch, device, SMOKE_LM if args.smoke else LM, repeats, sync))
    stream = stream_rows(torch, device, SMOKE_STREAM if args.smoke else STREAM, repeats, sync)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(gpu=gpu, torch=torch.__version__, rows=rows, stream=stream), f,
                      indent=1)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
