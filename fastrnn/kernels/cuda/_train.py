"""Training on the GPU for a whole fit: parameters, gradients and optimiser state stay there.

With ``backend="cuda"`` every call of a layer copies its parameters to the device and its
gradients back (:mod:`._stack`), and the optimiser and the gradient clipping run on the host. A
:class:`DeviceSession` instead keeps, for the whole of a fit, one device buffer of all the
parameters of a :class:`~fastrnn.nn.SequenceNetwork` (laid out as its host buffer, the
``FlatArrays`` of ``network.params``, with one device view per name), one of the gradients and
one per optimiser state (Adam's two moments, the momentum buffer, AdaGrad's sum). A training step
(:meth:`DeviceSession.step`) then copies:

* to the device, once: the batch, time-major and sorted longest first, with its lengths, its
  targets, each sequence's weight in the loss and the dropout masks (drawn on the host, as the
  host's forward draws them), packed into one buffer; with token input the batch is its ids,
  with, for the embedding's gradient, the steps of every id (:func:`_id_steps`), and the logits
  of the network's linear part (not trained by the optimiser: computed on the host);
* back, once: the loss and the global gradient norm (two float64 values).

Without pooling the head reads every real step as a row (a tagger; with the softmax head of a
language model, over the vocabulary without its excluded ids). A window of truncated
back-propagation through time gathers its rows' initial state on the device from the state
carried by each stream (a :class:`DeviceCarry`) and leaves the final state of each stream there
for the next window.

Everything in between runs on the device: the embedding's lookup and the gradient of its rows,
the recurrent stack (:func:`._stack.forward_device`,
:func:`._stack.backward_device`, any depth, both directions, the layers joined by their
connections with ``skip``), the pooling (with the bag of embeddings beside it), the dense head
(with ``tie_weights``, the embedding's matrix, whose gradient is then the head's plus the
lookup's), the loss
(softmax cross-entropy or mean squared error) and its gradient, the head's gradients, the squared
norm of the gradient buffer (accumulated in float64), clipping by the global norm and the update
of SGD (with momentum or Nesterov momentum), Adam, AdamW or AdaGrad (and a learned initial state
and its gradient). The update is skipped on the device when the loss or the norm is not finite or
the loss exceeds the divergence limit the trainer passes, so that the trainer can roll back as it
does on the host (the snapshot it rolls back to is kept on the device too).

The host copies of the parameters, gradients and optimiser state become stale after a device step;
:meth:`DeviceSession.pull` brings them up to date (one download per buffer), and the training loop
calls it before anything outside the optimisation step reads them (see
:meth:`fastrnn.train.Trainer.sync_parameters`); :meth:`DeviceSession.push` uploads the parameters
again if the host changed them in between.

The arithmetic of every element follows the host's (``fastrnn.optim``, ``fastrnn.losses``), but
sums run in another order, so results agree to rounding, not bit for bit.
"""

import math

import numpy as np

from ...nn._checks import as_batch, as_lengths, check_finite_steps
from ...nn._plan import Plan
from .._driver import to_time_major
from . import _device as dev
from ._matmul import gemm
from ._stack import (_LINK_NAMES, _PARAM_NAMES, _col_sum, _pack, _views, backward_device,
                     forward_device)
from ._train_kernels import (_adagrad, _adam, _add, _broadcast, _carry_rows, _clamp, _concat_bag,
                             _copy, _exclude, _fill, _first_columns, _gather, _launch1, _lengths,
                             _mse, _norm, _NT, _pool, _pool_backward, _scatter, _select, _sgd,
                             _softmax_ce, _steps, _sum_batch, _sum_rows, _zeros)

__all__ = ["DeviceCarry", "DeviceSession", "unsupported"]

#: the losses computed on the device
LOSSES = ("ce", "mse")
#: the poolings, numbered as :func:`_pool` takes them
POOLINGS = ("last", "mean", "max")


# ---------------------------------------------------------------------------- the batch
def _targets(targets, coef, plan, per_step, loss, K):
    """The targets and the loss weights of a batch as the kernels read them: one row per
    sequence (sorted), or with ``per_step`` one row per step (time-major and sorted, the
    padded steps with weight 0 and label 0).

    Returns
    -------
    tg : ndarray of shape (R, 1) (labels) or (R, K) (values)
    coef : ndarray of shape (R,), float64
    """
    targets, coef = np.asarray(targets), np.asarray(coef, np.float64)
    B, Tm, order = plan.B, plan.Tm, plan.order
    width = 1 if loss == "ce" else K
    if not per_step:
        tg = targets[order].reshape(B, -1)
        if tg.shape[1] != width or coef.shape != (B,):
            raise ValueError(f"targets of shape {targets.shape} and weights of shape "
                             f"{coef.shape} do not fit a batch of {B} sequences and {K} outputs "
                             f"with loss={loss!r}; pass one target row and one weight per "
                             "sequence.")
        return tg, coef[order]
    lead = targets.shape[:2]
    if (targets.ndim != (2 if loss == "ce" else 3) or lead[0] != B or lead[1] < Tm
            or targets.shape[2:] not in ((), (K,)) or coef.shape != lead):
        raise ValueError(f"targets of shape {targets.shape} and weights of shape {coef.shape} "
                         f"do not fit a batch of {B} sequences of up to {Tm} steps and {K} "
                         f"outputs with loss={loss!r} and no pooling; pass a target and a "
                         "weight per step.")
    real = plan.real
    tg = np.ascontiguousarray(targets[order, :Tm].swapaxes(0, 1)).reshape(Tm, B, width)
    tg = np.where(real[:, :, None], tg, 0)
    w = np.where(real, coef[order, :Tm].T, 0.0)
    return tg.reshape(Tm * B, width), w.reshape(Tm * B)


# ---------------------------------------------------------------------------- token input
def _check_ids(ids, vocab_size):
    """The token ids of a batch, (B, T) or (B, T, K) integers in ``[0, vocab_size)``."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu" or ids.ndim not in (2, 3):
        raise ValueError(f"token input must be integer ids of shape (B, T) or (B, T, K), got "
                         f"dtype {ids.dtype} and shape {ids.shape}; pass the encoded sequences.")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids[(ids < 0) | (ids >= vocab_size)].flat[0]
        raise ValueError(
            f"token id {bad} is out of range [0, {vocab_size}); encode the text with the same "
            "vocabulary the model was built with (unknown tokens map to UNK).")
    return ids


def _id_steps(tok, plan, padding_idx, vocab_size, dt):
    """Where each id of a batch is read, for the embedding's gradient.

    Parameters
    ----------
    tok : ndarray of shape (Tm, B, K)
        The ids, time-major and sorted as the plan sorts the batch.
    plan : Plan
    padding_idx : int or None
        This id gets no gradient.
    vocab_size : int
    dt : numpy dtype
        The dtype the buffers travel in: with float32, ids and steps must stay below 2**24.

    Returns
    -------
    uniq : ndarray of shape (U,)
        The ids read at the real steps (ascending), padding excluded.
    starts : ndarray of shape (U + 1,)
        ``pos[starts[u]:starts[u + 1]]`` are the steps of ``uniq[u]``.
    pos : ndarray of shape (N,)
        Flat steps ``t * B + b``, each once per time it reads the id.
    """
    Tm, B, K = tok.shape
    limit = 2 ** 24 if dt == np.float32 else 2 ** 53
    if max(vocab_size, Tm * B + 1) > limit:
        raise ValueError(f"a float32 batch of {Tm * B} steps over {vocab_size} ids cannot travel "
                         f"to the device exactly (at most {limit}); use dtype float64 or smaller "
                         "batches.")
    real = plan.real.ravel()
    steps = np.repeat(np.flatnonzero(real), K)
    flat_ids = tok.reshape(Tm * B, K)[real].ravel()
    if padding_idx is not None:
        keep = flat_ids != int(padding_idx) % vocab_size
        steps, flat_ids = steps[keep], flat_ids[keep]
    order = np.argsort(flat_ids, kind="stable")
    sorted_ids = flat_ids[order]
    first = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if len(order) else \
        np.zeros(0, np.int64)
    starts = np.r_[first, len(order)]
    return sorted_ids[first], starts, steps[order]


# ---------------------------------------------------------------------------- support
def _optimizer_kind(optimizer):
    """``"adam"`` (Adam, AdamW), ``"sgd"``, ``"adagrad"`` or ``None`` for an optimiser without
    device update."""
    from ...optim import SGD, AdaGrad, Adam, AdamW

    if type(optimizer) in (Adam, AdamW):
        return "adam"
    if type(optimizer) is SGD:
        return "sgd"
    if type(optimizer) is AdaGrad:
        return "adagrad"
    return None


def unsupported(net, optimizer):
    """Why a fit of ``net`` with ``optimizer`` cannot run in a :class:`DeviceSession` (a
    sentence), or ``None`` when it can."""
    from ...nn.layers import Dense, SoftmaxHead
    from ...nn.network import SequenceNetwork

    if not isinstance(net, SequenceNetwork):
        return "the network is not a SequenceNetwork"
    rnn = net.rnn
    checks = (
        (type(net.head) not in (Dense, SoftmaxHead), f"the head {type(net.head).__name__}"),
        (net.pooling is not None and net.pooling not in POOLINGS,
         f"the pooling {net.pooling!r}"),
        (rnn.quantized_ is not None, "a quantised layer"),
        (_optimizer_kind(optimizer) is None,
         f"the optimiser {type(optimizer).__name__} (SGD, Adam, AdamW and AdaGrad run on the "
         "device)"),
        (net.params.contiguous() is None or net.grads.contiguous() is None
         or net.params.offsets != net.grads.offsets, "parameters not laid out in one buffer"),
    )
    for bad, what in checks:
        if bad:
            return f"training on the device does not support {what}"
    return None


# ---------------------------------------------------------------------------- carried state
class DeviceCarry:
    """The recurrent state a language model carries from one window of truncated
    back-propagation through time to the next, kept on the device (one row per stream).

    :meth:`DeviceSession.step` returns it as the final state of a step given a carried state
    (see :meth:`DeviceSession.step`'s ``state``); handed back with the next window it becomes that
    window's initial state there, with nothing copied.

    Attributes
    ----------
    h, c : device arrays of shape (num_layers * num_directions, n_streams, hidden_size)
        ``c`` is ``None`` without a cell state.
    """

    device_carry = True

    def __init__(self, h, c):
        self.h, self.c = h, c

    def host(self):
        """The state as host arrays: ``h``, or ``(h, c)`` with a cell state (downloads)."""
        h = dev.download(self.h, np.empty(self.h.shape, self.h.dtype))
        if self.c is None:
            return h
        return h, dev.download(self.c, np.empty(self.c.shape, self.c.dtype))


# ---------------------------------------------------------------------------- the session
class DeviceSession:
    """Device copies of a network's parameters, gradients and optimiser state for one fit.

    Parameters
    ----------
    net : fastrnn.nn.SequenceNetwork
        A network that :func:`unsupported` accepts (float or token input, pooling, a dense head).
    optimizer : fastrnn.optim.SGD, Adam, AdamW or AdaGrad
        Its state (if it has stepped before) is copied to the device; :meth:`pull` copies it back.
    clip_norm : float or None
        Clipping threshold of the global gradient norm.

    Attributes
    ----------
    stale : bool
        Whether the host copies are older than the device's (a step ran since the last
        :meth:`pull`).
    """

    def __init__(self, net, optimizer, clip_norm):
        why = unsupported(net, optimizer)
        if why is not None:
            raise ValueError(f"{why}; train with the host optimiser instead.")
        self.net, self.opt = net, optimizer
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.kind = _optimizer_kind(optimizer)
        self.dt = dt = np.dtype(net.dtype)
        self.names = tuple(net.params)
        self.keys = (("exp_avg", "exp_avg_sq") if self.kind == "adam"
                     else ("sum",) if self.kind == "adagrad"
                     else ("momentum_buffer",) if optimizer.momentum > 0 else ())
        pflat = net.params.flat
        n = self.n = pflat.size
        # the optimiser's state: the step of every parameter and its buffers, laid out like the
        # parameters (zeros before its first step)
        sts = [optimizer.state.get(k) for k in self.names]
        steps = {None if st is None else int(st.get("step", 0)) for st in sts}
        if len(steps) != 1:
            raise ValueError("the optimiser has stepped some parameters and not others; train "
                             "with the host optimiser instead.")
        self.t = steps.pop() or 0
        state = np.zeros((len(self.keys), n), dt)
        if self.kind == "adagrad":  # the sum starts at the initial accumulator value
            state[...] = optimizer.initial_accumulator_value
        self.first = self.kind == "sgd" and bool(self.keys)
        for i, key in enumerate(self.keys):
            for name, st, off in zip(self.names, sts, net.params.offsets):
                a = None if st is None else st.get(key)
                if a is not None:
                    state[i, off:off + a.size] = np.ravel(a)
                    self.first = False
        # one upload of the parameters and the optimiser state, one device array each
        packed = np.concatenate([pflat, state.ravel()])
        whole = dev.upload(packed)
        self.d_p = whole[:n]
        self.d_state = [whole[n * (i + 1):n * (i + 2)] for i in range(len(self.keys))]
        self.d_g = _zeros((n,), dt)
        self.d_res = dev.empty((2,), np.float64)
        self.d_scale = dev.empty((1,), dt)
        self.pv = self._named(self.d_p)
        self.gv = self._named(self.d_g)
        spec = net.rnn._spec
        self.spec = spec
        self.units_w = [tuple(self.pv.get("rnn." + n + sfx) for n in _PARAM_NAMES)
                        for sfx in spec.units]
        self.units_g = [tuple(self.gv.get("rnn." + n + sfx) for n in _PARAM_NAMES)
                        for sfx in spec.units]
        # the connections between the layers: per layer (proj, gate weight, gate bias)
        self.links_w, self.links_g = (
            [tuple(views.get(f"rnn.{n}_l{layer}") for n in _LINK_NAMES)
             for layer in range(spec.num_layers)] for views in (self.pv, self.gv))
        # the bounded parameters (IndRNN's recurrent_max), clipped after every update
        self.bounded = [(self.pv[name].reshape(-1), dt.type(bound))
                        for name, bound in net.constraints().items()]
        self.stale = False
        self._snap = None
        self._seen = pflat.copy()  # the host parameters as the device last saw them

    def _named(self, flat):
        """Device views of ``flat`` per parameter name, as the host ``FlatArrays`` lays them."""
        out = {}
        for name, off, view in zip(self.names, self.net.params.offsets, self.net.params.views):
            out[name] = flat[off:off + view.size].reshape(view.shape)
        return out

    # ------------------------------------------------------------------ the step
    def step(self, X, lengths, loss, targets, coef, limit, state=None):
        """One training step on the device; the host learns only the loss and the norm.

        Parameters
        ----------
        X : ndarray of shape (B, T, n_features), or integer ndarray of shape (B, T) or (B, T, K)
            The batch, or its token ids for a network with an embedding.
        lengths : ndarray of shape (B,)
        loss : {"ce", "mse"}
            Softmax cross-entropy of integer labels, or mean squared error.
        targets : ndarray of shape (B,) (labels) or (B, K) (values)
        coef : ndarray of shape (B,)
            Each sequence's weight over the batch's total weight (the loss is
            ``sum_b coef[b] * loss_b``).
        limit : float
            The divergence limit: a larger loss skips the update (``inf`` for none).
        state : object, optional
            The initial state of the rows as a window of truncated back-propagation through time
            describes it (``fastrnn.estimators._lm_task.RowState``): ``carried`` (``None`` for
            zeros, host arrays, or a :class:`DeviceCarry`), ``stream`` and ``fresh`` (each
            row's stream, and whether it starts a document: zero state), ``last`` (each stream's
            last row) and ``host()`` (the rows' initial state on the host). ``None``: zeros.

        Returns
        -------
        loss, norm : float
            The batch loss and the global gradient norm before clipping. The parameters were
            updated unless one is non-finite or the loss exceeds ``limit``; the caller then
            counts the step (:meth:`advance`).
        carry : DeviceCarry or None
            With ``state``: the final state of each stream's last row, on the device.
        """
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
        net, spec, dt = self.net, self.spec, self.dt
        rnn = net.rnn
        D, H = spec.num_directions, spec.hidden_size
        U = len(spec.units)
        # the dropout masks are drawn on the host, from the generators and in the order of the
        # host's forward, so that a seed gives the same masks on every backend
        emb = net.embedding
        if emb is None:
            given = X
            X, _ = net._dropout(X)
            X = as_batch(X, rnn.input_size, dt)
            B, T, F = X.shape
            lengths = as_lengths(lengths, B, T)
            check_finite_steps(X, lengths, source=given)
        else:
            ids = _check_ids(X, emb.num_embeddings)
            B, T, F = ids.shape[0], ids.shape[1], emb.embedding_dim
            lengths = as_lengths(lengths, B, T)
            _, in_mask = net._dropout(np.zeros((B, T, F), dt))
        plan = Plan(lengths, T)
        order = plan.order
        if rnn.training:
            hmasks, drops = rnn._draw_masks(plan)
        else:
            hmasks, drops = [None] * U, [None] * spec.num_layers
        _, out_mask = net._dropout(np.zeros((B, T, D * H), dt))
        K = net.head.out_features
        Tm = plan.Tm
        tg, coef = _targets(targets, coef, plan, net.pooling is None, loss, K)
        excluded = tuple(getattr(net.head, "excluded", ()))
        if excluded and loss == "ce":  # a row without weight must not read an excluded label
            tg[coef == 0] = min(set(range(K)) - set(excluded))
        # the initial state: zeros, the carried state's rows (gathered on the device) or rows
        # from the host; and which final state each stream carries on
        src = h0 = c0 = sel = None
        if state is not None:
            carried = state.carried
            if getattr(carried, "device_carry", False):
                src = np.where(state.fresh, -1, state.stream)[order]
            elif carried is not None:
                rows = state.host()
                h0, c0 = rows if isinstance(rows, tuple) else (rows, None)
                h0 = h0[:, order]
                c0 = None if c0 is None else c0[:, order]
            inv = np.empty(B, np.int64)
            inv[order] = np.arange(B)
            sel = inv[np.asarray(state.last)]
        out_mask = None if out_mask is None else to_time_major(out_mask, plan, dt)
        if emb is None:
            inputs = [to_time_major(X, plan, dt), None, None, None, None, None]
        else:
            # the ids (time-major, sorted), and for the gradient every id's steps in order
            tok = ids.reshape(B, T, -1)[order, :Tm].transpose(1, 0, 2)
            uniq, starts, pos = _id_steps(tok, plan, emb.padding_idx, emb.num_embeddings, dt)
            in_mask = None if in_mask is None else to_time_major(in_mask, plan, dt)
            lin = None if net.linear is None else net.linear.apply(ids, lengths)[order]
            inputs = [None, tok, uniq, starts, pos, in_mask, lin]
        # one upload: the sorted time-major batch (or its ids), the lengths, the targets, the
        # weights and the dropout masks
        inputs += [src, h0, c0, sel, np.array(excluded) if excluded else None]
        flat, spans = _pack(inputs + [plan.Ls, tg, coef, out_mask]
                            + list(hmasks) + list(drops), dt)
        d_in = _views(dev.upload(flat), spans)
        n_in = len(inputs)
        d_src, d_h0, d_c0, d_sel, d_excl = d_in[n_in - 5:n_in]
        d_x = d_in[0]
        d_lf, d_t, d_coef, d_mask = d_in[n_in:n_in + 4]
        d_hmask, d_drop = d_in[n_in + 4:n_in + 4 + U], d_in[n_in + 4 + U:]
        lens = dev.empty((B,), np.int64)
        _launch1(_lengths, B, d_lf, lens)
        if emb is not None:
            d_tok, d_uniq, d_starts, d_pos, d_in_mask, d_lin = d_in[1:n_in - 5]
            d_x = dev.empty((Tm, B, F), dt)
            use_in = d_in_mask is not None
            d_in_mask = d_in_mask if use_in else d_x
            dev.launch(_gather, Tm * B, F, self.pv["embedding.weight"], d_tok, lens, d_in_mask,
                       use_in, d_x)

        lstm = spec.kind == "lstm"
        zeros = _zeros((U, B, H), dt)
        d_y = dev.empty((Tm, B, D * H), dt)
        d_hn = dev.empty((U, B, H), dt)
        d_cn = dev.empty((U, B, H), dt) if lstm else None
        opts = {}
        if spec.kind in ("rnn", "indrnn"):
            opts["relu"] = spec.relu
        if lstm:
            opts["gates_on"] = tuple(int(g) for g in spec.gates_on)
        if spec.kind in ("mingru", "minlstm"):
            opts["cand"] = bool(spec.cand)
        if d_src is not None:
            carried = state.carried
            d_h0 = dev.empty((U, B, H), dt)
            dev.launch(_carry_rows, U * B, H, carried.h, d_src, d_h0)
            if lstm:
                d_c0 = dev.empty((U, B, H), dt)
                dev.launch(_carry_rows, U * B, H, carried.c, d_src, d_c0)
        learned = net.learn_initial_state and state is None
        if learned:  # the learned initial state, the same for every sequence
            d_h0 = dev.empty((U, B, H), dt)
            dev.launch(_broadcast, U * B, H, self.pv["h0"], d_h0)
            if lstm:
                d_c0 = dev.empty((U, B, H), dt)
                dev.launch(_broadcast, U * B, H, self.pv["c0"], d_c0)
        d_h0 = zeros if d_h0 is None else d_h0
        d_c0 = (zeros if d_c0 is None else d_c0) if lstm else None
        cache = forward_device(spec.kind, d_x, lens, plan.batch_sizes, d_h0, d_c0,
                               self.units_w, d_hmask, d_drop, D, d_y, d_hn, d_cn, skip=rnn.skip,
                               d_links=self.links_w, **opts)
        carry = None
        if d_sel is not None:
            S = len(sel)
            new_h = dev.empty((U, S, H), dt)
            dev.launch(_select, U * S, H, d_hn, d_sel, new_h)
            new_c = None
            if lstm:
                new_c = dev.empty((U, S, H), dt)
                dev.launch(_select, U * S, H, d_cn, d_sel, new_c)
            carry = DeviceCarry(new_h, new_c)
        # the head: pooling (of the outputs after dropout), or every step, the dense layer, the
        # loss
        mode = None if net.pooling is None else POOLINGS.index(net.pooling)
        use_mask = d_mask is not None
        d_mask = d_mask if use_mask else d_y
        if mode is None:  # a label per step: the head reads every step's output as a row
            hin = dev.empty((Tm, B, D * H), dt)
            dev.launch(_steps, Tm * B, D * H, d_y, lens, d_mask, use_mask, hin)
            pooled = hin.reshape((Tm * B, D * H))
        else:
            pooled = dev.empty((B, D * H), dt)
            arg = dev.empty((B, D * H), np.int64)
            dev.launch(_pool, B, D * H, d_y, lens, mode, D, d_mask, use_mask, pooled, arg)
        rows = pooled.shape[0]
        # a head tied to the embedding reads its table, and its gradient goes to the table's
        tied = "embedding.weight" if net.tie_weights else "head.weight"
        W, bias = self.pv[tied], self.pv["head.bias"]
        bag = net.bag_of_embeddings
        full = pooled
        if bag:  # the bag of embeddings beside the pooled outputs
            full = dev.empty((B, D * H + F), dt)
            dev.launch(_concat_bag, B, D * H + F, pooled, d_x, lens, full)
        out = dev.empty((rows, K), dt)
        gemm(rows, full, W, out, bias1=bias, trans_b=True)
        if d_excl is not None:
            dev.launch(_exclude, rows, len(excluded), out, d_excl)
        if emb is not None and d_lin is not None:
            dev.launch(_add, B, K, out, d_lin)
        dout = dev.empty((rows, K), dt)
        rowloss = dev.empty((rows,), np.float64)
        if loss == "ce":
            _launch1(_softmax_ce, rows, out, d_t, d_coef, dout, rowloss)
        else:
            _launch1(_mse, rows, out, d_t, d_coef, dout, rowloss)
        _launch1(_sum_rows, 1, rowloss, self.d_res)
        # the backward: the head, the pooling, the stack
        gemm(K, dout, full, self.gv[tied], trans_a=True)
        dev.launch(_col_sum, 1, K, dout, self.gv["head.bias"])
        dfull = dev.empty((rows, full.shape[1]), dt)
        gemm(rows, dout, W, dfull)
        dpooled = dfull
        if bag:
            dpooled = dev.empty((B, D * H), dt)
            dev.launch(_first_columns, B, D * H, dfull, dpooled)
        dy = dev.empty((Tm, B, D * H), dt)
        if mode is None:
            dev.launch(_steps, Tm * B, D * H, dfull.reshape((Tm, B, D * H)), lens, d_mask,
                       use_mask, dy)
        else:
            dev.launch(_pool_backward, Tm * B, D * H, dpooled, lens, mode, D, d_mask, use_mask,
                       arg, dy)
        dx = dev.empty((Tm, B, F), dt)
        dh0 = dev.empty((U, B, H), dt)
        dc0 = dev.empty((U, B, H), dt) if lstm else None
        backward_device(cache, dy, zeros, zeros if lstm else None, dx, dh0, dc0, self.units_g,
                        self.links_g)
        for name, d in (("h0", dh0), ("c0", dc0)) if net.learn_initial_state else ():
            if d is None:
                continue
            if learned:
                dev.launch(_sum_batch, U, H, d, self.gv[name])
            else:  # an initial state was given: the learned one gets no gradient
                g = self.gv[name]
                _launch1(_fill, g.size, g.reshape((g.size,)), dt.type(0))
        if emb is not None:  # the embedding's gradient: zero but at the batch's ids (and the
            g = self.gv["embedding.weight"]  # tied head's, written above, the lookup's added)
            if not net.tie_weights:
                _launch1(_fill, g.size, g.reshape((g.size,)), dt.type(0))
            dev.launch(_scatter, len(uniq), F, dx, d_uniq, d_starts, d_pos, lens, d_in_mask,
                       use_in, dfull, D * H, bag, net.tie_weights, g)
            if net.tie_weights and emb.padding_idx is not None:  # as on the host: no gradient
                pad = g[int(emb.padding_idx) % emb.num_embeddings]
                _launch1(_fill, F, pad, dt.type(0))
        # the norm, clipping and the update: skipped on the device if the step failed
        clip = self.clip_norm is not None and self.clip_norm != math.inf
        cuda_norm = _norm[1, _NT]
        cuda_norm(self.d_g, float(self.clip_norm) if clip else 0.0, clip, self.d_res,
                  self.d_scale)
        self._update(clip, float(limit))
        res = dev.download(self.d_res, np.empty(2, np.float64))
        self.stale = True
        return float(res[0]), float(res[1]), carry

    def _update(self, clip, limit):
        """Launch the optimiser's update for step ``t + 1`` (applied on the device only if the
        step succeeded)."""
        from ...optim._optimizers import _check_real

        opt, dt = self.opt, self.dt.type
        lr = _check_real("lr", opt.lr, low=0.0)
        wd = opt.weight_decay
        if self.kind == "adam":
            from ...optim import AdamW

            decoupled = isinstance(opt, AdamW)
            b1, b2 = opt.betas
            t = self.t + 1
            _launch1(_adam, self.n, self.d_p, self.d_g, self.d_state[0], self.d_state[1],
                     self.d_res, self.d_scale, limit, clip, bool(decoupled and wd),
                     dt(1.0 - lr * wd), bool(wd and not decoupled), dt(wd), dt(b1), dt(1.0 - b1),
                     dt(b2), dt(1.0 - b2), dt(math.sqrt(1.0 - b2 ** t)), dt(opt.eps),
                     dt(lr / (1.0 - b1 ** t)))
        elif self.kind == "adagrad":
            _launch1(_adagrad, self.n, self.d_p, self.d_state[0], self.d_g, self.d_res,
                     self.d_scale, limit, clip, dt(wd), dt(lr), dt(opt.eps))
        else:
            mu = opt.momentum
            buf = self.d_state[0] if self.keys else self.d_g
            _launch1(_sgd, self.n, self.d_p, self.d_g, buf, self.d_res, self.d_scale, limit,
                     clip, dt(wd), dt(lr), dt(mu), self.first, bool(opt.nesterov), dt(lr * mu))
        for p, bound in self.bounded:  # (a skipped update leaves them inside already)
            _launch1(_clamp, p.shape[0], p, bound)

    def advance(self):
        """Count an applied update (the optimiser's step counters)."""
        self.t += 1
        self.first = False
        self.opt.step_count += 1

    # ------------------------------------------------------------------ snapshots
    def snapshot(self):
        """Keep the parameters and the optimiser state on the device (copies there) as the last
        good ones, with the optimiser's counters and learning rate."""
        if self._snap is None:
            self._snap = [dev.empty((self.n,), self.dt) for _ in range(1 + len(self.keys))]
        for src, dst in zip([self.d_p] + self.d_state, self._snap):
            _launch1(_copy, self.n, src, dst)
        self._snap_meta = (self.t, self.first, self.opt.step_count, self.opt.lr)

    def restore(self):
        """Put the snapshot of :meth:`snapshot` back (device copies)."""
        for src, dst in zip(self._snap, [self.d_p] + self.d_state):
            _launch1(_copy, self.n, src, dst)
        self.t, self.first, self.opt.step_count, self.opt.lr = self._snap_meta
        self.stale = True

    def host_snapshot(self):
        """The snapshot as the trainer keeps one on the host: ``(params, optimizer state_dict)``
        (downloads)."""
        if self._snap is None:
            return None
        bufs = [dev.download(d, np.empty(self.n, self.dt)) for d in self._snap]
        t, first, step_count, lr = self._snap_meta
        params = {name: bufs[0][off:off + v.size].reshape(v.shape).copy()
                  for name, off, v in zip(self.names, self.net.params.offsets,
                                          self.net.params.views)}
        state = self.opt.state_dict()
        state.update(lr=float(lr), step_count=int(step_count),
                     state=self._state_arrays(bufs[1:], t, first, copy=True))
        return params, state

    # ------------------------------------------------------------------ the host copies
    def _state_arrays(self, bufs, t, first, copy=False):
        """Per-name optimiser state from the device buffers' host copies ``bufs``."""
        if t == 0:
            return {}
        out = {}
        for name, off, v in zip(self.names, self.net.params.offsets, self.net.params.views):
            st = {"step": int(t)}
            for key, buf in zip(self.keys, bufs):
                if key == "momentum_buffer" and first:
                    continue
                a = buf[off:off + v.size].reshape(v.shape)
                st[key] = a.copy() if copy else a
            out[name] = st
        return out

    def pull(self):
        """Copy the parameters, gradients and optimiser state to the host (one download per
        buffer) if a step ran since the last pull; the host arrays keep their identity."""
        if not self.stale:
            return
        dev.download(self.d_p, self.net.params.flat)
        dev.download(self.d_g, self.net.grads.flat)
        bufs = [dev.download(d, np.empty(self.n, self.dt)) for d in self.d_state]
        self.opt.state = self._state_arrays(bufs, self.t, self.first)
        self.stale = False
        self._seen[...] = self.net.params.flat

    def push(self):
        """Copy the host parameters to the device if they were changed on the host (compared bit
        for bit with what the device last saw: :meth:`pull` or the session's start), so that a
        change made between steps (a callback writing into ``network.params``) is not lost.

        Returns
        -------
        bool
            Whether they were copied.
        """
        if self.stale:
            raise RuntimeError("the host parameters are stale; pull() them before pushing.")
        flat = self.net.params.flat
        if np.array_equal(flat.view(np.uint8), self._seen.view(np.uint8)):
            return False
        dev.upload(np.ascontiguousarray(flat), self.d_p)
        self._seen[...] = flat
        return True
