"""The language model's training data for the :class:`~fastrnn.train.TrainingLoop`: documents
concatenated into parallel streams, cut into chunks for truncated back-propagation through time,
with the recurrent state carried from one chunk to the next and restarted at every document (and
in every stream every :data:`RESTART_TOKENS` tokens).
"""

import math

import numpy as np

from ..text import BOS, PAD
from ..train import Batch, Task, split_at_documents, truncated_bptt_batches

__all__ = ["LMTask", "RowState", "EXCLUDED_OUTPUTS", "SOFTMAX_HEAD", "RESTART_TOKENS"]

#: Token ids the output softmax never gives probability to: padding and the beginning of a document
#: (both are only ever inputs, never a next token).
EXCLUDED_OUTPUTS = (PAD, BOS)

#: The language model's output layer: a softmax over the vocabulary without those ids.
SOFTMAX_HEAD = dict(head="softmax", excluded_outputs=list(EXCLUDED_OUTPUTS))

#: Each training stream restarts from a zero state every this many tokens (rounded up to whole
#: chunks), the streams in turn. Text is scored from a zero state, so the model must keep
#: predicting well from one; in a corpus of long documents a stream would otherwise start from
#: zero only in the first chunk of an epoch, and after a few hundred steps of training only on
#: carried states the model can fail from a zero state (a character model fitted on one 600,000
#: character document scored its own training text at 10 bits per character from a zero state
#: and at 3 from a state carried over from other text).
RESTART_TOKENS = 2048


class RowState:
    """The initial state of the rows of a window, described for the trainer: on the host it is
    :meth:`host`; a step on the GPU gathers the rows from the carried state there.

    Attributes
    ----------
    carried : None, ndarray, tuple of ndarray or fastrnn.kernels.cuda._train.DeviceCarry
        The state carried by every stream (``None``: zeros).
    stream : ndarray of shape (R,)
        The stream of each row.
    fresh : bool ndarray of shape (R,)
        Rows that start from a zero state (a document starts, or the stream restarts).
    last : ndarray of shape (B,)
        The last row of each stream, whose final state is carried on.
    """

    device_rows = True

    def __init__(self, carried, stream, fresh, last, build):
        self.carried, self.stream, self.fresh, self.last = carried, stream, fresh, last
        self._build = build

    def host(self):
        """The rows' initial state as host arrays (``h``, or ``(h, c)``)."""
        return self._build()


class LMTask(Task):
    """Chunks of ``bptt`` steps of ``batch_size`` parallel token streams.

    Every epoch the documents (id arrays with ``<bos>``/``<eos>``) are concatenated in a new order
    (``shuffle``) and cut into ``batch_size`` equal streams. Step ``j`` trains on chunk ``j`` of
    all streams at once (:func:`fastrnn.train.truncated_bptt_batches`); a stream row that crosses
    into a new document is split there (:func:`fastrnn.train.split_at_documents`), so every
    document starts from a zero state, and the final state of each stream is the initial state of
    its next chunk. Besides, stream ``b`` restarts from a zero state (without a document border)
    at the chunks ``j`` where ``(j + offset_b)`` is a multiple of ``restart``, ``restart`` the
    chunks of :data:`RESTART_TOKENS` tokens and ``offset_b = b * restart // batch_size``: in
    every stretch of ``restart`` chunks, each stream starts once from a zero state, as text is
    scored, however long the documents are.

    Parameters
    ----------
    net : SequenceNetwork
        With a softmax head.
    train_ids, val_ids : list of int ndarray
        Encoded documents.
    batch_size, bptt : int
    shuffle : bool
    score : callable
        ``score(docs) -> (sum of log-probabilities, count)`` of encoded documents (validation).
    """

    unit = "tok"
    items_name = "tokens"

    def __init__(self, net, train_ids, val_ids, batch_size, bptt, shuffle, score):
        self.net = net
        self.train_ids = train_ids
        self.val_ids = val_ids
        self.B, self.k = int(batch_size), int(bptt)
        self.shuffle = shuffle
        self.score = score
        self.has_validation = bool(val_ids)
        self.perm = None
        self.chunks = None
        self.state = None
        self.restart = max(1, -(-RESTART_TOKENS // self.k))  # chunks, rounded up
        self.offsets = np.arange(self.B) * self.restart // self.B

    def items_per_epoch(self):
        return (sum(len(d) for d in self.train_ids) // self.B - 1) * self.B

    def _build(self):
        ids = np.concatenate([self.train_ids[i] for i in self.perm])
        n = len(ids) // self.B
        if n < 2:
            raise ValueError(
                f"the training texts give {len(ids)} tokens (with <bos>/<eos>), too few for "
                f"batch_size={self.B} streams of at least 2 tokens; lower batch_size or add text."
            )
        streams = ids[:self.B * n].reshape(self.B, n)
        self.chunks = list(truncated_bptt_batches(streams, self.k))
        return len(self.chunks)

    def start_epoch(self, rng):
        n = len(self.train_ids)
        self.perm = rng.permutation(n) if self.shuffle else np.arange(n)
        self.state = None
        return self._build()

    def _zero_state(self, R):
        rnn = self.net.rnn
        z = np.zeros((rnn.num_layers * rnn.num_directions, R, rnn.hidden_size), self.net.dtype)
        return (z, z.copy()) if rnn.has_cell else z

    def _row_state(self, stream, fresh):
        """Initial state of the rows of a chunk: the carried state of their stream, zero where a
        document starts (or nothing is carried yet)."""
        zero = self._zero_state(len(stream))
        if self._host_state() is None:
            return zero
        keep = ~fresh
        if isinstance(zero, tuple):
            for z, s in zip(zero, self.state):
                z[:, keep] = s[:, stream[keep]]
        else:
            zero[:, keep] = self.state[:, stream[keep]]
        return zero

    def _host_state(self):
        """The carried state on the host (downloaded if it is on the device)."""
        if getattr(self.state, "device_carry", False):
            self.state = self.state.host()
        return self.state

    def batch(self, j):
        X, Y = self.chunks[j]
        Xr, Yr, lengths, stream, fresh, self._last = split_at_documents(X, Y)
        due = (j + self.offsets) % self.restart == 0
        first = np.concatenate(([0], self._last[:-1] + 1))  # the first row of each stream
        fresh[first[due]] = True
        valid = (np.arange(Xr.shape[1])[None, :] < lengths[:, None]) & (Yr != BOS)
        state = RowState(self.state, stream, fresh, self._last,
                         lambda: self._row_state(stream, fresh))
        return Batch(Xr, lengths, self.net.loss_fn(Yr, valid), state, int(valid.sum()),
                     X.shape[0] * X.shape[1])

    def step_done(self, j, loss, h_n):
        last = self._last
        if not math.isfinite(loss):
            self.state = None
        elif getattr(h_n, "device_carry", False):  # already each stream's last row
            self.state = h_n
        elif isinstance(h_n, tuple):
            self.state = tuple(np.ascontiguousarray(s[:, last]) for s in h_n)
        else:
            self.state = np.ascontiguousarray(h_n[:, last])

    def evaluate(self):
        if not self.val_ids:
            return None
        total, count = self.score(self.val_ids)
        loss = -total / count
        return {"val_loss": loss, "val_bits": loss / math.log(2.0)}

    def loss_display(self, loss):
        return loss / math.log(2.0), "bits/token"

    def state_dict(self):
        arrays = {"perm": np.asarray(self.perm, np.int64)}
        self._host_state()
        state = () if self.state is None else (
            self.state if isinstance(self.state, tuple) else (self.state,))
        for i, s in enumerate(state):
            arrays[f"state/{i}"] = s
        return {"n_state": len(state), "batch_size": self.B, "bptt": self.k}, arrays

    def load_state_dict(self, meta, arrays):
        if (meta["batch_size"], meta["bptt"]) != (self.B, self.k):
            raise ValueError(
                f"the checkpoint stopped inside an epoch of batch_size={meta['batch_size']}, "
                f"bptt={meta['bptt']}; resume with those values (got batch_size={self.B}, "
                f"bptt={self.k})."
            )
        self.perm = arrays["perm"]
        parts = [arrays[f"state/{i}"] for i in range(int(meta["n_state"]))]
        self.state = None if not parts else (tuple(parts) if self.net.rnn.has_cell else parts[0])
        return self._build()
