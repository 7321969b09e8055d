"""The char language model under test (sizes in ``workloads.LM``): :class:`LMRun`."""

import numpy as np

from .harness import try_torch
from .impls import MismatchError, per_backend
from .workloads import LM


class LMRun:
    """The char language model in fastrnn (one network per backend) and in PyTorch,
    all from the same initial weights and fed the same chunks of the same token streams."""

    def __init__(self, backends=("numba",), use_torch=True, seed=0, n_chunks=8):
        from fastrnn.losses import sequence_softmax_cross_entropy
        from fastrnn.nn import SequenceNetwork
        from fastrnn.train import Trainer
        c = LM
        self.loss = sequence_softmax_cross_entropy

        def network(bk):
            return SequenceNetwork(c["V"], vocab_size=c["V"], embedding_dim=c["E"],
                                   hidden_size=c["H"], pooling=None, backend=bk, random_state=seed)

        self.skipped = {}
        self.nets, _ = per_backend(backends, network, self.skipped)
        self.trainers = {bk: Trainer(net, optimizer="adam", learning_rate=c["lr"],
                                     clip_norm=c["clip"]) for bk, net in self.nets.items()}
        first = next(iter(self.nets.values()), None)
        rng = np.random.RandomState(seed + 2)
        stream = rng.randint(0, c["V"], size=(c["B"], n_chunks * c["bptt"] + 1))
        self.chunks = [(stream[:, i:i + c["bptt"]], stream[:, i + 1:i + 1 + c["bptt"]])
                       for i in range(0, n_chunks * c["bptt"], c["bptt"])]
        self.lengths = np.full(c["B"], c["bptt"], np.int64)
        self.state = {bk: None for bk in self.nets}
        self.k = {bk: 0 for bk in self.nets}
        self.kt = 0
        self.torch = None
        if not use_torch:
            self.skipped["torch"] = "disabled (--no-torch)"
        elif first is not None:
            torch, why = try_torch()
            if torch is None:
                self.skipped["torch"] = why
            else:
                self._build_torch(torch, first)

    def _build_torch(self, torch, net):
        c, p = LM, net.params
        self.torch = torch
        self.emb = torch.nn.Embedding(c["V"], c["E"], padding_idx=net.embedding.padding_idx)
        self.lstm = torch.nn.LSTM(c["E"], c["H"], batch_first=True)
        self.head = torch.nn.Linear(c["H"], c["V"])
        with torch.no_grad():
            self.emb.weight.copy_(torch.from_numpy(p["embedding.weight"]))
            for k, v in self.lstm.named_parameters():
                v.copy_(torch.from_numpy(p["rnn." + k]))
            self.head.weight.copy_(torch.from_numpy(p["head.weight"]))
            self.head.bias.copy_(torch.from_numpy(p["head.bias"]))
        self.tparams = [*self.emb.parameters(), *self.lstm.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.tparams, lr=c["lr"])
        self.tchunks = [(torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64)))
                        for x, y in self.chunks]
        self.tstate = None

    def fr_step(self, bk):
        """One truncated-BPTT chunk: Trainer.step (forward, loss, backward, clip, Adam), carrying
        the final state into the next chunk."""
        x, y = self.chunks[self.k[bk] % len(self.chunks)]
        self.k[bk] += 1
        lengths = self.lengths
        loss, self.state[bk] = self.trainers[bk].step(
            x, lengths, lambda out: self.loss(out, y, lengths), state=self.state[bk])
        return loss

    def torch_step(self):
        torch, c = self.torch, LM
        x, y = self.tchunks[self.kt % len(self.tchunks)]
        self.kt += 1
        self.opt.zero_grad(set_to_none=True)
        out, (h, cc) = self.lstm(self.emb(x), self.tstate)
        logits = self.head(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c["V"]), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.tparams, c["clip"])
        self.opt.step()
        self.tstate = (h.detach(), cc.detach())
        return loss.detach().item()

    def fns(self):
        fns = {f"fastrnn[{bk}]": (lambda bk=bk: self.fr_step(bk)) for bk in self.nets}
        if self.torch is not None:
            fns["torch"] = self.torch_step
        return fns

    def check(self, steps=3, tol=1e-3):
        """Train ``steps`` chunks in every implementation from the same weights: the losses must
        agree (relative ``tol``); return the largest relative difference to the reference."""
        losses = {name: [fn() for _ in range(steps)] for name, fn in self.fns().items()}
        if len(losses) < 2:
            return None
        ref_name = "torch" if "torch" in losses else next(iter(losses))
        worst = 0.0
        for name, ls in losses.items():
            for i, (a, b) in enumerate(zip(ls, losses[ref_name])):
                err = abs(a - b) / max(1.0, abs(b))
                worst = max(worst, err)
                if err > tol:
                    raise MismatchError(f"LM losses differ at step {i + 1}: {name} {a:.6f} vs "
                                        f"{ref_name} {b:.6f}")
        return worst
