"""fastrnn against PyTorch: forward and training step (forward + backward) of LSTM, GRU, RNN layers.

Not a test. Both libraries run in this one process on the same weights and inputs, interleaved
(fastrnn, then PyTorch, repeat), after warm-up; every figure is the median of the repeats. The
thread settings are applied before numpy and torch are imported and printed with the table.

Configurations (those of ``compare.py``): B = (batch 32, T 100, I 128, H 256),
C = (64, 50, 256, 512), D = config B with 2 layers, bidirectional. float32, all sequences full
length.

Usage::

    python benchmarks/kernel_timing.py                 # 2 threads, all cells and configurations
    python benchmarks/kernel_timing.py --threads 1 --cells lstm --configs B --repeats 15
"""

import argparse
import os
import sys
import time

CONFIGS = {
    "B": dict(B=32, T=100, I=128, H=256, num_layers=1, bidirectional=False),
    "C": dict(B=64, T=50, I=256, H=512, num_layers=1, bidirectional=False),
    "D": dict(B=32, T=100, I=128, H=256, num_layers=2, bidirectional=True),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="threads for both libraries (default 2)")
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--configs", default="B,C,D")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-check", action="store_true", help="skip the correctness check")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the CPU time of the calling thread instead of the wall clock "
                         "(only with --threads 1: robust on a loaded machine, where other "
                         "processes take the cores)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.cpu_time and args.threads != 1:
        raise SystemExit("--cpu-time measures the calling thread only: use it with --threads 1.")
    n = str(args.threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "FASTRNN_NUM_THREADS"):
        os.environ[var] = n
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import fastrnn._config as cfg
    from fastrnn.nn import GRU, LSTM, RNN

    torch.set_num_threads(args.threads)
    cfg.set_num_threads(args.threads)

    print("thread settings:", {v: os.environ.get(v) for v in (
        "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
        "FASTRNN_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")})
    print(f"torch {torch.__version__}: set_num_threads({args.threads}), get_num_threads()="
          f"{torch.get_num_threads()}, mkldnn enabled={torch.backends.mkldnn.enabled}")
    print(f"fastrnn threads: {cfg.num_threads()}; thread pools: "
          + ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info()))
    clock = time.thread_time if args.cpu_time else time.perf_counter
    print(f"float32, median of {args.repeats} interleaved repeats after {args.warmup} warm-up "
          "runs; "
          f"{'CPU time of the calling thread' if args.cpu_time else 'wall-clock time'} in ms; "
          "ratio = PyTorch time / fastrnn time (> 1: fastrnn faster)\n")

    classes = {"lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU),
               "rnn": (RNN, torch.nn.RNN)}
    header = (f"{'cell':5s} {'cfg':3s} | {'fwd fastrnn':>11s} {'fwd torch':>9s} {'ratio':>6s} | "
              f"{'train fastrnn':>13s} {'train torch':>11s} {'ratio':>6s}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for cell in args.cells.split(","):
        ours_cls, torch_cls = classes[cell.strip()]
        for name in args.configs.split(","):
            c = CONFIGS[name.strip()]
            B, T, I, H = c["B"], c["T"], c["I"], c["H"]
            kw = dict(num_layers=c["num_layers"], bidirectional=c["bidirectional"])
            ours = ours_cls(I, H, dtype=np.float32, backend="numba", random_state=0, **kw)
            theirs = torch_cls(I, H, batch_first=True, **kw)
            theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.params.items()})
            X = rng.standard_normal((B, T, I), dtype=np.float32)
            D = 2 if c["bidirectional"] else 1
            R = rng.standard_normal((B, T, D * H), dtype=np.float32)
            Xt, Rt = torch.from_numpy(X), torch.from_numpy(R)

            def ours_fwd():
                ours.forward(X)

            def ours_train():
                ours.forward(X)
                ours.backward(R)

            def torch_fwd():
                with torch.no_grad():
                    theirs(Xt)

            def torch_train():
                x = Xt.clone().requires_grad_(True)
                theirs.zero_grad(set_to_none=True)
                y, _ = theirs(x)
                y.backward(Rt)

            if not args.no_check:
                Y, _ = ours.forward(X)
                dX = ours.backward(R)
                x = Xt.clone().requires_grad_(True)
                y, _ = theirs(x)
                y.backward(Rt)
                err_y = np.abs(Y - y.detach().numpy()).max()
                err_dx = np.abs(dX - x.grad.numpy()).max() / max(1e-30, np.abs(dX).max())
                gk = "weight_hh_l0"
                err_g = (np.abs(ours.grads[gk] - theirs.get_parameter(gk).grad.numpy()).max()
                         / np.abs(ours.grads[gk]).max())
                if err_y > 1e-4 or err_dx > 1e-3 or err_g > 1e-3:
                    raise SystemExit(f"{cell} {name}: results differ from PyTorch "
                                     f"(Y {err_y:.2e}, dX {err_dx:.2e}, dW_hh {err_g:.2e})")

            res = {}
            for label, pair in (("fwd", (ours_fwd, torch_fwd)),
                                ("train", (ours_train, torch_train))):
                for f in pair:
                    for _ in range(args.warmup):
                        f()
                times = ([], [])
                for _ in range(args.repeats):
                    for i, f in enumerate(pair):
                        # let the other library's idle threads stop spinning before timing
                        time.sleep(0.01)
                        t0 = clock()
                        f()
                        times[i].append(clock() - t0)
                res[label] = [1e3 * float(np.median(t)) for t in times]
            fo, ft = res["fwd"]
            to, tt = res["train"]
            print(f"{cell:5s} {name:3s} | {fo:11.2f} {ft:9.2f} {ft / fo:6.2f} | "
                  f"{to:13.2f} {tt:11.2f} {tt / to:6.2f}", flush=True)


if __name__ == "__main__":
    main()
