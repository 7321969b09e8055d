"""A ragged batch: sequences of very different lengths in one padded array, fastrnn against PyTorch
with and without ``pack_padded_sequence``, all holding the same weights.

fastrnn takes the lengths with the batch and skips the padded steps of the short sequences (its
plan sorts the batch by length and runs each step on the sequences still going). PyTorch skips
them only when the batch is packed (``torch.nn.utils.rnn.pack_padded_sequence``); run on the padded
array it computes every sequence to the longest length and the padded steps are wasted. The
training step is forward + backward of ``L = sum(Y * G)`` with ``G`` zero on the padded steps, the
input gradient included, as in :class:`.impls.SameWeights`.
"""

import numpy as np

from .harness import try_torch
from .impls import GRAD_TOL, OUT_TOL, MismatchError, fastrnn_layer, max_err, torch_module
from .workloads import Shape


#: why PyTorch's packed training step is not timed on long batches
PACKED_TRAIN_SLOW = ("not timed: PyTorch's CPU backward through a PackedSequence grows much faster "
                     "than the work (seconds to minutes a step here at lengths of a few hundred; "
                     "pytorch/pytorch#149194)")


def ragged_lengths(B, low, high, seed=0):
    """``B`` lengths drawn uniformly from ``low..high`` (the longest forced to ``high``, so that the
    padded array always has ``high`` steps)."""
    rng = np.random.RandomState(seed)
    lengths = rng.randint(low, high + 1, size=B)
    lengths[rng.randint(B)] = high
    return lengths


class RaggedRun:
    """One ragged batch in fastrnn and in PyTorch (packed and padded), same weights and inputs.

    Parameters
    ----------
    cell : {"LSTM", "GRU", "RNN"}
    lengths : ndarray of int, shape (B,)
    I, H : int
        Input and hidden sizes.
    backend : str
        fastrnn backend.
    use_torch : bool
    seed : int

    Attributes
    ----------
    tokens : int
        Real steps in the batch (``lengths.sum()``), the work that is not padding.
    skipped : dict implementation -> reason
    """

    def __init__(self, cell, lengths, I, H, backend="numba", use_torch=True, seed=0):  # noqa: E741
        self.cell = cell
        self.lengths = np.asarray(lengths, dtype=np.int64)
        B, T = len(self.lengths), int(self.lengths.max())
        self.shape = Shape(B, T, I, H)
        self.tokens = int(self.lengths.sum())
        self.skipped = {}
        self.layer = fastrnn_layer(cell, self.shape, backend, seed)
        rng = np.random.RandomState(seed + 1)
        valid = (np.arange(T)[None, :] < self.lengths[:, None])[:, :, None]
        self.X = (rng.standard_normal((B, T, I)) * valid).astype(np.float32)
        self.G = (rng.standard_normal((B, T, H)) * valid).astype(np.float32)
        self.valid = valid
        self.torch = self.tm = None
        if not use_torch:
            self.skipped["torch"] = "disabled (--no-torch)"
            return
        torch, why = try_torch()
        if torch is None:
            self.skipped["torch"] = why
            return
        self.torch = torch
        self.tm = torch_module(torch, cell, self.shape, self.layer.state_dict())
        self.Xt = torch.from_numpy(self.X).requires_grad_(True)
        self.Gt = torch.from_numpy(self.G)
        self.lengths_t = torch.from_numpy(self.lengths)

    # ------------------------------------------------------------------ callables to time
    def fr_forward(self):
        layer, X, lengths = self.layer, self.X, self.lengths
        return lambda: layer.forward(X, lengths)

    def fr_train(self):
        layer, X, G, lengths = self.layer, self.X, self.G, self.lengths

        def step():
            Y, _ = layer.forward(X, lengths)
            loss = float(np.vdot(Y, G))
            layer.backward(G)
            return loss
        return step

    def _torch_run(self, X, packed):
        torch = self.torch
        if not packed:
            return self.tm(X)[0]
        seqs = torch.nn.utils.rnn.pack_padded_sequence(X, self.lengths_t, batch_first=True,
                                                       enforce_sorted=False)
        Y, _ = self.tm(seqs)
        return torch.nn.utils.rnn.pad_packed_sequence(Y, batch_first=True,
                                                      total_length=self.shape.T)[0]

    def torch_forward(self, packed):
        torch, X = self.torch, self.Xt.detach()

        def fwd():
            with torch.inference_mode():
                return self._torch_run(X, packed)
        return fwd

    def torch_train(self, packed):
        params = list(self.tm.parameters())
        X, G = self.Xt, self.Gt

        def step():
            for p in params:
                p.grad = None
            X.grad = None
            loss = (self._torch_run(X, packed) * G).sum()
            loss.backward()
            return loss.detach().item()
        return step

    def fns(self, packed_train=True):
        """``{name: callable}`` of every implementation, forward and training step; without
        ``packed_train``, not PyTorch's packed training step (recorded in ``skipped``)."""
        out = {"fastrnn forward": self.fr_forward(), "fastrnn train": self.fr_train()}
        if self.tm is not None:
            for packed, name in ((True, "torch packed"), (False, "torch padded")):
                out[f"{name} forward"] = self.torch_forward(packed)
                out[f"{name} train"] = self.torch_train(packed)
            if not packed_train:
                del out["torch packed train"]
                self.skipped["torch packed train"] = PACKED_TRAIN_SLOW
        return out

    # ------------------------------------------------------------------ correctness
    def check(self):
        """fastrnn's outputs on the real steps against packed and padded PyTorch's, and its
        gradients against padded PyTorch's; return ``{implementation: max error}``; raise
        :class:`.impls.MismatchError`.

        With ``G`` zero on the padded steps the padded run's gradients equal the packed run's (the
        steps after a sequence's end reach no loss), and its backward is quick where the packed
        one takes minutes on long batches."""
        if self.tm is None:
            return {}
        Y, _ = self.layer.forward(self.X, self.lengths)
        dX = self.layer.backward(self.G)
        grads = dict({k: v.copy() for k, v in self.layer.grads.items()})
        report = {}
        for packed, name in ((True, "torch packed"), (False, "torch padded")):
            with self.torch.no_grad():
                Yt = self._torch_run(self.Xt.detach(), packed).numpy()
            report[name] = max_err(Y * self.valid, Yt * self.valid)
            if report[name] > OUT_TOL:
                raise MismatchError(f"{self.cell} ragged {self.shape.label()}: fastrnn differs from "
                                    f"{name} (max abs error {report[name]:.3g}, tolerance "
                                    f"{OUT_TOL})")
        self.torch_train(False)()
        errs = {k: max_err(grads[k], p.grad.numpy(), relative=True)
                for k, p in self.tm.named_parameters()}
        errs["X"] = max_err(dX * self.valid, self.Xt.grad.numpy() * self.valid, relative=True)
        report["grad"] = max(errs.values())
        if report["grad"] > GRAD_TOL:
            worst = max(errs, key=errs.get)
            raise MismatchError(f"{self.cell} ragged {self.shape.label()}: gradient {worst!r} "
                                f"differs from padded PyTorch's (relative error {errs[worst]:.3g},"
                                f" tolerance {GRAD_TOL})")
        return report
