"""The element-wise cell mathematics, written once and compiled per target.

``build(jit)`` returns a namespace of scalar functions compiled with ``jit``:
``numba.njit(inline="always")`` for the CPU kernels, ``numba.cuda.jit(device=True)`` for the CUDA
kernels. The functions call each other through the closure, so each target gets its own compiled
copy of exactly the same source.

Notation: ``a*`` are gate pre-activations, ``i, f, g, o`` (LSTM) and ``r, z, n`` (GRU) the
activated gates, ``d*`` gradients of the loss. The GRU comes in two forms: ``gru_*`` apply the reset
gate after the recurrent product (``reset_after``), ``gru_v1_*`` to the state before it (the
original form, whose candidate needs a second product once ``r`` is known, so its unit is split in
two halves around that product).

The minimal cells of Feng et al. (2024, "Were RNNs All We Needed?", arXiv:2410.01201) have gates
that read the input alone, so a step is ``h_t = a_t * h_{t-1} + b_t`` with ``a_t``, ``b_t`` known
for all steps at once: ``mingru_ab`` and ``minlstm_ab`` give ``a, b`` from the pre-activations,
``*_bwd`` the pre-activation gradients from ``dh`` (the gradient arriving at ``h_t``). ``cand``
selects the candidate's activation: the identity (``False``) or the paper's ``g`` (``True``,
``g(x) = x + 0.5`` for ``x >= 0``, else ``sigmoid(x)``), which keeps the candidate positive.
"""

import math
from types import SimpleNamespace


def build(jit):
    """Compile the scalar cell functions with ``jit`` and return them in a namespace."""

    @jit
    def sigmoid(x):
        # Two branches so that exp never overflows.
        if x >= 0:
            e = math.exp(-x)
            return 1.0 / (1.0 + e)
        e = math.exp(x)
        return e / (1.0 + e)

    @jit
    def rnn_act(a, relu):
        if relu:
            return a if a > 0 else 0.0 * a
        return math.tanh(a)

    @jit
    def rnn_dact(h, relu):
        """Derivative of the activation, written in terms of its output ``h``."""
        if relu:
            return 1.0 if h > 0 else 0.0
        return 1.0 - h * h

    @jit
    def lstm_fwd(ai, af, ag, ao, c_prev, wci, wcf, wco, on_i, on_f, on_o):
        """One LSTM unit. ``w*`` are peephole weights (0 when unused), ``on_*`` switch a gate on
        (an ablated gate is fixed at 1). Returns ``i, f, g, o, c, h``."""
        i = sigmoid(ai + wci * c_prev) if on_i else 1.0
        f = sigmoid(af + wcf * c_prev) if on_f else 1.0
        g = math.tanh(ag)
        c = f * c_prev + i * g
        o = sigmoid(ao + wco * c) if on_o else 1.0
        h = o * math.tanh(c)
        return i, f, g, o, c, h

    @jit
    def lstm_bwd(dh, dc, i, f, g, o, c, c_prev, wci, wcf, wco, on_i, on_f, on_o):
        """Back through one LSTM unit. ``dh``, ``dc`` are the gradients arriving at ``h_t`` and
        ``c_t``. Returns the pre-activation gradients ``dai, daf, dag, dao`` and ``dc_prev``."""
        tc = math.tanh(c)
        dao = dh * tc * o * (1.0 - o) if on_o else 0.0
        dct = dc + dh * o * (1.0 - tc * tc) + dao * wco
        dai = dct * g * i * (1.0 - i) if on_i else 0.0
        daf = dct * c_prev * f * (1.0 - f) if on_f else 0.0
        dag = dct * i * (1.0 - g * g)
        dc_prev = dct * f + dai * wci + daf * wcf
        return dai, daf, dag, dao, dc_prev

    @jit
    def gru_fwd(ar, az, xn, hn, h_prev):
        """One GRU unit with the reset gate applied after the recurrent product (``reset_after``).
        ``ar``, ``az`` are full pre-activations, ``xn`` the input part and ``hn`` the recurrent part
        (bias included) of the candidate. Returns ``r, z, n, h``."""
        r = sigmoid(ar)
        z = sigmoid(az)
        n = math.tanh(xn + r * hn)
        h = (1.0 - z) * n + z * h_prev
        return r, z, n, h

    @jit
    def gru_bwd(dh, r, z, n, hn, h_prev):
        """Back through one GRU unit. Returns ``dar, daz, dan`` (pre-activation gradients;
        ``dan`` is the gradient of the candidate's input part), ``dhn`` (of the recurrent part
        ``hn``) and the direct gradient to ``h_prev`` through the update gate."""
        dz = dh * (h_prev - n)
        dan = dh * (1.0 - z) * (1.0 - n * n)
        dar = dan * hn * r * (1.0 - r)
        daz = dz * z * (1.0 - z)
        return dar, daz, dan, dan * r, dh * z

    @jit
    def gru_v1_gates(ar, az, h_in):
        """Reset and update gates of one GRU unit in the original form (reset before the product).
        ``h_in`` is the state that entered the recurrent product (after the dropout mask). Returns
        ``r, z`` and ``r * h_in``, the input of the candidate's product."""
        r = sigmoid(ar)
        z = sigmoid(az)
        return r, z, r * h_in

    @jit
    def gru_v1_state(an, z, h_prev):
        """Candidate and new state of one GRU unit in the original form: ``an`` is the candidate's
        full pre-activation (input part plus ``(r * h_in) W_hn^T``). Returns ``n, h``."""
        n = math.tanh(an)
        h = (1.0 - z) * n + z * h_prev
        return n, h

    @jit
    def gru_v1_bwd_zn(dh, z, n, h_prev):
        """Back through the update gate and the candidate's tanh of one GRU unit in the original
        form. Returns ``daz``, ``dan`` (pre-activation gradients) and the direct gradient to
        ``h_prev`` through the update gate."""
        daz = dh * (h_prev - n) * z * (1.0 - z)
        dan = dh * (1.0 - z) * (1.0 - n * n)
        return daz, dan, dh * z

    @jit
    def gru_v1_bwd_r(drh, r, h_in):
        """Gradient of the reset gate's pre-activation, from ``drh``, that of ``r * h_in``."""
        return drh * h_in * r * (1.0 - r)

    @jit
    def softplus(x):
        """``log(1 + exp(x))`` without overflow."""
        if x > 0:
            return x + math.log1p(math.exp(-x))
        return math.log1p(math.exp(x))

    @jit
    def candidate(x, cand):
        """The candidate state of a minimal cell from its pre-activation (see the module
        docstring)."""
        if cand:
            return x + 0.5 if x >= 0 else sigmoid(x)
        return x

    @jit
    def dcandidate(x, cand):
        """Derivative of :func:`candidate` at ``x``."""
        if cand:
            if x >= 0:
                return 1.0
            s = sigmoid(x)
            return s * (1.0 - s)
        return 1.0

    @jit
    def mingru_ab(az, ah, cand):
        """minGRU: ``h_t = (1 - z) h_{t-1} + z * cand(ah)`` with ``z = sigmoid(az)``. Returns the
        coefficients ``a = 1 - z`` and ``b = z * cand(ah)`` of ``h_t = a h_{t-1} + b``."""
        z = sigmoid(az)
        return 1.0 - z, z * candidate(ah, cand)

    @jit
    def mingru_bwd(dh, az, ah, h_prev, cand):
        """Back through one minGRU unit: ``daz, dah`` (pre-activation gradients) from ``dh``."""
        z = sigmoid(az)
        ht = candidate(ah, cand)
        return dh * (ht - h_prev) * z * (1.0 - z), dh * z * dcandidate(ah, cand)

    @jit
    def minlstm_ab(af, ai, ah, cand):
        """minLSTM: ``h_t = f' h_{t-1} + i' cand(ah)`` with ``f' = f / (f + i)``, ``i' = i / (f +
        i)``, ``f = sigmoid(af)``, ``i = sigmoid(ai)``. ``f'`` is computed as ``sigmoid(d)`` with
        ``d = log f - log i = softplus(-ai) - softplus(-af)``, finite for every input (``f + i``
        underflows to 0 when both pre-activations are very negative). Returns ``a = f'`` and
        ``b = i' cand(ah)``."""
        fn = sigmoid(softplus(-ai) - softplus(-af))
        return fn, (1.0 - fn) * candidate(ah, cand)

    @jit
    def minlstm_bwd(dh, af, ai, ah, h_prev, cand):
        """Back through one minLSTM unit: ``daf, dai, dah`` from ``dh``. With ``f' = sigmoid(d)``:
        ``dd = dh (h_prev - cand(ah)) f' (1 - f')``, ``dd/daf = 1 - f``, ``dd/dai = -(1 - i)``."""
        fn = sigmoid(softplus(-ai) - softplus(-af))
        dd = dh * (h_prev - candidate(ah, cand)) * fn * (1.0 - fn)
        return (dd * (1.0 - sigmoid(af)), -dd * (1.0 - sigmoid(ai)),
                dh * (1.0 - fn) * dcandidate(ah, cand))

    return SimpleNamespace(
        softplus=softplus, candidate=candidate, dcandidate=dcandidate, mingru_ab=mingru_ab,
        mingru_bwd=mingru_bwd, minlstm_ab=minlstm_ab, minlstm_bwd=minlstm_bwd,
        sigmoid=sigmoid, rnn_act=rnn_act, rnn_dact=rnn_dact,
        lstm_fwd=lstm_fwd, lstm_bwd=lstm_bwd, gru_fwd=gru_fwd, gru_bwd=gru_bwd,
        gru_v1_gates=gru_v1_gates, gru_v1_state=gru_v1_state, gru_v1_bwd_zn=gru_v1_bwd_zn,
        gru_v1_bwd_r=gru_v1_bwd_r,
    )
