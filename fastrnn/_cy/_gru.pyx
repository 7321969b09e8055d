# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True
"""Cython kernels of the GRU (gate order r, z, n).

Same signatures and semantics as :mod:`fastrnn.kernels.gru` (conventions:
:mod:`fastrnn.kernels.rnn`).
``gru_forward``/``gru_backward`` apply the reset gate after the recurrent product
(``reset_after=True``, as PyTorch and cuDNN); ``gru_v1_forward``/``gru_v1_backward`` apply it to
the state before the product (the original form), which needs a second product per step once
``r_t`` is known. float32 and float64 through fused types; the time loop runs without the GIL.
"""

from cython cimport floating
from libc.stdint cimport int64_t

from ._argcheck cimport check_batch_sizes, check_mask, expect_shape, wants_double
from ._blas cimport matmul
from ._cellmath cimport gru_bwd, gru_fwd_row, gru_v1_gates_row, gru_v1_out_row
from ._rows cimport copy, masked, zero

from ._errors import explain

_CONVERSION_ERRORS = (ValueError, TypeError, BufferError, AttributeError)


cdef int _forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_t,
                  const floating[::1] bhh, const int64_t[::1] batch_sizes,
                  const floating[:, ::1] hmask, bint use_mask, floating[:, :, ::1] hs,
                  floating[:, :, ::1] acts, floating[:, ::1] hin, floating[:, ::1] a) except -1:
    cdef str k = "gru_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G // 3
    cdef Py_ssize_t t, b, j, n_
    cdef const floating* src
    cdef const floating* x
    cdef const floating* inp
    cdef const floating* mask = NULL
    cdef const floating* bh
    cdef floating* ap
    cdef floating* act
    cdef floating* dst
    if G % 3:
        raise ValueError(f"{k}: xp's last dimension must be 3H (gates r, z, n), got {G}.")
    expect_shape(k, "whh_t", whh_t.shape, 2, H, G)
    expect_shape(k, "bhh", bhh.shape, 1, G)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, 4 * H)
    expect_shape(k, "hin", hin.shape, 2, B, H)
    expect_shape(k, "a", a.shape, 2, B, G)
    if use_mask:
        mask = &hmask[0, 0]
    bh = &bhh[0]
    with nogil:
        for t in range(T):
            n_ = batch_sizes[t]
            src = &hs[t, 0, 0]
            ap = &a[0, 0]
            inp = masked(src, mask, &hin[0, 0], n_ * H, use_mask)
            matmul(inp, &whh_t[0, 0], ap, n_, H, G, <floating>0)
            x = &xp[t, 0, 0]
            act = &acts[t, 0, 0]
            dst = &hs[t + 1, 0, 0]
            for b in range(n_):
                gru_fwd_row(H, x, ap, bh, src, act, dst)
                x += G
                ap += G
                act += 4 * H
                src += H
                dst += H
            copy(&hs[t, 0, 0] + n_ * H, &hs[t + 1, 0, 0] + n_ * H, (B - n_) * H)
    return 0


cdef int _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
                   const floating[:, :, ::1] acts, const floating[:, ::1] whh,
                   const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
                   floating[:, :, ::1] dxp, floating[:, :, ::1] dhp, floating[:, ::1] dh,
                   floating[:, ::1] ddirect) except -1:
    cdef str k = "gru_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], G = 3 * H
    cdef Py_ssize_t t, b, j, n_, q
    cdef const floating* act
    cdef const floating* hp
    cdef const floating* d
    cdef const floating* mask = NULL
    cdef floating* gx
    cdef floating* gh
    cdef floating* dhr
    cdef floating* dd
    cdef floating dar, daz, dan, dhn
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, 4 * H)
    expect_shape(k, "whh", whh.shape, 2, G, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "dxp", dxp.shape, 3, T, B, G)
    expect_shape(k, "dhp", dhp.shape, 3, T, B, G)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    expect_shape(k, "ddirect", ddirect.shape, 2, B, H)
    if use_mask:
        mask = &hmask[0, 0]
    with nogil:
        for t in range(T - 1, -1, -1):
            n_ = batch_sizes[t]
            act = &acts[t, 0, 0]
            hp = &hs[t, 0, 0]
            d = &dy[t, 0, 0]
            gx = &dxp[t, 0, 0]
            gh = &dhp[t, 0, 0]
            dhr = &dh[0, 0]
            dd = &ddirect[0, 0]
            for b in range(n_):
                for j in range(H):
                    gru_bwd(dhr[j] + d[j], act[j], act[H + j], act[2 * H + j], act[3 * H + j],
                            hp[j], &dar, &daz, &dan, &dhn, &dd[j])
                    gx[j] = dar
                    gx[H + j] = daz
                    gx[2 * H + j] = dan
                    gh[j] = dar
                    gh[H + j] = daz
                    gh[2 * H + j] = dhn
                act += 4 * H
                hp += H
                d += H
                gx += G
                gh += G
                dhr += H
                dd += H
            zero(&dxp[t, 0, 0] + n_ * G, (B - n_) * G)
            zero(&dhp[t, 0, 0] + n_ * G, (B - n_) * G)
            dhr = &dh[0, 0]
            dd = &ddirect[0, 0]
            matmul(&dhp[t, 0, 0], &whh[0, 0], dhr, n_, G, H, <floating>0)
            if use_mask:
                for q in range(n_ * H):
                    dhr[q] = dhr[q] * mask[q] + dd[q]
            else:
                for q in range(n_ * H):
                    dhr[q] += dd[q]
    return 0


cdef int _v1_forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_rz_t,
                     const floating[:, ::1] whh_n_t, const int64_t[::1] batch_sizes,
                     const floating[:, ::1] hmask, bint use_mask, floating[:, :, ::1] hs,
                     floating[:, :, ::1] acts, floating[:, :, ::1] rh, floating[:, ::1] hin,
                     floating[:, ::1] a, floating[:, ::1] an) except -1:
    cdef str k = "gru_v1_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G // 3
    cdef Py_ssize_t t, b, n_
    cdef const floating* src
    cdef const floating* x
    cdef const floating* inp
    cdef const floating* mask = NULL
    cdef floating* ap
    cdef floating* anp
    cdef floating* act
    cdef floating* rht
    cdef floating* dst
    if G % 3:
        raise ValueError(f"{k}: xp's last dimension must be 3H (gates r, z, n), got {G}.")
    expect_shape(k, "whh_rz_t", whh_rz_t.shape, 2, H, 2 * H)
    expect_shape(k, "whh_n_t", whh_n_t.shape, 2, H, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "rh", rh.shape, 3, T, B, H)
    expect_shape(k, "hin", hin.shape, 2, B, H)
    expect_shape(k, "a", a.shape, 2, B, 2 * H)
    expect_shape(k, "an", an.shape, 2, B, H)
    if use_mask:
        mask = &hmask[0, 0]
    with nogil:
        for t in range(T):
            n_ = batch_sizes[t]
            src = &hs[t, 0, 0]
            inp = masked(src, mask, &hin[0, 0], n_ * H, use_mask)
            ap = &a[0, 0]
            matmul(inp, &whh_rz_t[0, 0], ap, n_, H, 2 * H, <floating>0)
            x = &xp[t, 0, 0]
            act = &acts[t, 0, 0]
            rht = &rh[t, 0, 0]
            for b in range(n_):
                gru_v1_gates_row(H, x, ap, inp, act, rht)
                x += G
                ap += 2 * H
                act += G
                rht += H
                inp += H
            anp = &an[0, 0]
            matmul(&rh[t, 0, 0], &whh_n_t[0, 0], anp, n_, H, H, <floating>0)
            x = &xp[t, 0, 0]
            act = &acts[t, 0, 0]
            dst = &hs[t + 1, 0, 0]
            for b in range(n_):
                gru_v1_out_row(H, x, anp, src, act, dst)
                x += G
                act += G
                anp += H
                dst += H
                src += H
            copy(&hs[t, 0, 0] + n_ * H, &hs[t + 1, 0, 0] + n_ * H, (B - n_) * H)
            zero(&rh[t, 0, 0] + n_ * H, (B - n_) * H)
    return 0


cdef int _v1_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
                      const floating[:, :, ::1] acts, const floating[:, ::1] whh_rz,
                      const floating[:, ::1] whh_n, const int64_t[::1] batch_sizes,
                      const floating[:, ::1] hmask, bint use_mask, floating[:, :, ::1] dgates,
                      floating[:, ::1] dh, floating[:, ::1] dn, floating[:, ::1] drz,
                      floating[:, ::1] drh, floating[:, ::1] dhin,
                      floating[:, ::1] ddirect) except -1:
    cdef str k = "gru_v1_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], G = 3 * H
    cdef Py_ssize_t t, b, j, n_
    cdef const floating* act
    cdef const floating* hp
    cdef const floating* d
    cdef const floating* mrow
    cdef floating* g_
    cdef floating* dhr
    cdef floating* dnr
    cdef floating* drzr
    cdef floating* drhr
    cdef floating* dhinr
    cdef floating* ddr
    cdef floating dht, r, z, n, hin_, v, one = 1
    expect_shape(k, "hs", hs.shape, 3, T + 1, B, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "whh_rz", whh_rz.shape, 2, 2 * H, H)
    expect_shape(k, "whh_n", whh_n.shape, 2, H, H)
    check_batch_sizes(k, batch_sizes, T, B)
    check_mask(k, hmask.shape, use_mask, B, H)
    expect_shape(k, "dgates", dgates.shape, 3, T, B, G)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    expect_shape(k, "dn", dn.shape, 2, B, H)
    expect_shape(k, "drh", drh.shape, 2, B, H)
    expect_shape(k, "dhin", dhin.shape, 2, B, H)
    expect_shape(k, "ddirect", ddirect.shape, 2, B, H)
    expect_shape(k, "drz", drz.shape, 2, B, 2 * H)
    with nogil:
        for t in range(T - 1, -1, -1):
            n_ = batch_sizes[t]
            act = &acts[t, 0, 0]
            hp = &hs[t, 0, 0]
            d = &dy[t, 0, 0]
            dhr = &dh[0, 0]
            dnr = &dn[0, 0]
            drzr = &drz[0, 0]
            ddr = &ddirect[0, 0]
            for b in range(n_):
                for j in range(H):
                    dht = dhr[j] + d[j]
                    z = act[H + j]
                    n = act[2 * H + j]
                    drzr[H + j] = dht * (hp[j] - n) * z * (one - z)
                    dnr[j] = dht * (one - z) * (one - n * n)
                    ddr[j] = dht * z
                act += G
                hp += H
                d += H
                dhr += H
                dnr += H
                drzr += 2 * H
                ddr += H
            matmul(&dn[0, 0], &whh_n[0, 0], &drh[0, 0], n_, H, H, <floating>0)
            act = &acts[t, 0, 0]
            hp = &hs[t, 0, 0]
            drzr = &drz[0, 0]
            drhr = &drh[0, 0]
            mrow = &hmask[0, 0] if use_mask else NULL
            for b in range(n_):
                for j in range(H):
                    r = act[j]
                    hin_ = hp[j] * mrow[j] if use_mask else hp[j]
                    drzr[j] = drhr[j] * hin_ * r * (one - r)
                act += G
                hp += H
                drzr += 2 * H
                drhr += H
                if use_mask:
                    mrow += H
            matmul(&drz[0, 0], &whh_rz[0, 0], &dhin[0, 0], n_, 2 * H, H, <floating>0)
            act = &acts[t, 0, 0]
            g_ = &dgates[t, 0, 0]
            dhr = &dh[0, 0]
            dnr = &dn[0, 0]
            drzr = &drz[0, 0]
            drhr = &drh[0, 0]
            dhinr = &dhin[0, 0]
            ddr = &ddirect[0, 0]
            mrow = &hmask[0, 0] if use_mask else NULL
            for b in range(n_):
                for j in range(H):
                    v = dhinr[j] + drhr[j] * act[j]
                    if use_mask:
                        v = v * mrow[j]
                    dhr[j] = v + ddr[j]
                    g_[j] = drzr[j]
                    g_[H + j] = drzr[H + j]
                    g_[2 * H + j] = dnr[j]
                act += G
                g_ += G
                dhr += H
                dnr += H
                drzr += 2 * H
                drhr += H
                dhinr += H
                ddr += H
                if use_mask:
                    mrow += H
            zero(&dgates[t, 0, 0] + n_ * G, (B - n_) * G)
    return 0


_FORWARD_SPEC = (("xp", "f3"), ("whh_t", "f2"), ("bhh", "f1"), ("batch_sizes", "i1"),
                 ("hmask", "f2"), ("use_mask", "flag"), ("hs", "f3w"), ("acts", "f3w"),
                 ("hin", "f2w"), ("a", "f2w"))
_BACKWARD_SPEC = (("dy", "f3"), ("hs", "f3"), ("acts", "f3"), ("whh", "f2"), ("batch_sizes", "i1"),
                  ("hmask", "f2"), ("use_mask", "flag"), ("dxp", "f3w"), ("dhp", "f3w"),
                  ("dh", "f2w"), ("ddirect", "f2w"))
_V1_FORWARD_SPEC = (("xp", "f3"), ("whh_rz_t", "f2"), ("whh_n_t", "f2"), ("batch_sizes", "i1"),
                    ("hmask", "f2"), ("use_mask", "flag"), ("hs", "f3w"), ("acts", "f3w"),
                    ("rh", "f3w"), ("hin", "f2w"), ("a", "f2w"), ("an", "f2w"))
_V1_BACKWARD_SPEC = (("dy", "f3"), ("hs", "f3"), ("acts", "f3"), ("whh_rz", "f2"), ("whh_n", "f2"),
                     ("batch_sizes", "i1"), ("hmask", "f2"), ("use_mask", "flag"),
                     ("dgates", "f3w"), ("dh", "f2w"), ("dn", "f2w"), ("drz", "f2w"),
                     ("drh", "f2w"), ("dhin", "f2w"), ("ddirect", "f2w"))


def gru_forward(xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a):
    """GRU forward (reset gate after the recurrent product).

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus ``b_ih`` only (``b_hh`` is inside the reset product).
    whh_t : ndarray of shape (H, 3H)
        Transposed recurrent weights.
    bhh : ndarray of shape (3H,)
        Recurrent bias.
    batch_sizes : ndarray of shape (T,), int64
        Sequences still running at each step (the batch is sorted by length, longest first).
    hmask : ndarray of shape (B, H) or (0, 0)
        Recurrent-dropout mask, read only when ``use_mask``.
    use_mask : bool
    hs : ndarray of shape (T+1, B, H)
        Output states; ``hs[0]`` holds ``h_0``.
    acts : ndarray of shape (T, B, 4H)
        Output cache: ``r, z, n`` and the recurrent part of the candidate ``W_hn h + b_hn``.
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 3H)
        Scratch.
    """
    try:
        if wants_double(xp):
            _forward[double](xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a)
        else:
            _forward[float](xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a)
    except _CONVERSION_ERRORS as exc:
        explain("gru_forward", _FORWARD_SPEC,
                (xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a), exc)


def gru_backward(dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect):
    """GRU backward (reset after).

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
        Gradient of the loss with respect to the outputs (zero past each length).
    hs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 4H)
        From the forward.
    whh : ndarray of shape (3H, H)
        Recurrent weights.
    batch_sizes, hmask, use_mask
        As for :func:`gru_forward`.
    dxp : ndarray of shape (T, B, 3H)
        Output: gradients of the input projections (for ``W_ih``, ``b_ih`` and the input).
    dhp : ndarray of shape (T, B, 3H)
        Output: gradients of the recurrent products (for ``W_hh``, ``b_hh``).
    dh : ndarray of shape (B, H)
        In: gradient w.r.t. ``h_n``; out: w.r.t. ``h_0``.
    ddirect : ndarray of shape (B, H)
        Scratch.
    """
    try:
        if wants_double(dy):
            _backward[double](dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh,
                              ddirect)
        else:
            _backward[float](dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh,
                             ddirect)
    except _CONVERSION_ERRORS as exc:
        explain("gru_backward", _BACKWARD_SPEC,
                (dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect), exc)


def gru_v1_forward(xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an):
    """GRU forward in the original form (reset gate before the product).

    Parameters
    ----------
    xp : ndarray of shape (T, B, 3H)
        Input projections plus both biases (all biases are outside the reset gate in this form).
    whh_rz_t : ndarray of shape (H, 2H)
        Transposed recurrent weights of the r and z gates.
    whh_n_t : ndarray of shape (H, H)
        Transposed recurrent weights of the candidate.
    batch_sizes, hmask, use_mask
        As for :func:`gru_forward`.
    hs : ndarray of shape (T+1, B, H)
        Output states; ``hs[0]`` holds ``h_0``.
    acts : ndarray of shape (T, B, 3H)
        Output cache ``r, z, n``.
    rh : ndarray of shape (T, B, H)
        Output cache: ``r_t * h_{t-1}`` (after the dropout mask), the input of ``W_hn``.
    hin : ndarray of shape (B, H)
    a : ndarray of shape (B, 2H)
    an : ndarray of shape (B, H)
        Scratch.
    """
    try:
        if wants_double(xp):
            _v1_forward[double](xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh,
                                hin, a, an)
        else:
            _v1_forward[float](xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh,
                               hin, a, an)
    except _CONVERSION_ERRORS as exc:
        explain("gru_v1_forward", _V1_FORWARD_SPEC,
                (xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an),
                exc)


def gru_v1_backward(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh,
                    dn, drz, drh, dhin, ddirect):
    """GRU backward in the original form.

    Parameters
    ----------
    dy : ndarray of shape (T, B, H)
        Gradient of the loss with respect to the outputs (zero past each length).
    hs : ndarray of shape (T+1, B, H)
    acts : ndarray of shape (T, B, 3H)
        From the forward.
    whh_rz : ndarray of shape (2H, H)
    whh_n : ndarray of shape (H, H)
        Recurrent weights of the r, z gates and of the candidate.
    batch_sizes, hmask, use_mask
        As for :func:`gru_forward`.
    dgates : ndarray of shape (T, B, 3H)
        Output: pre-activation gradients (the same for the input and the recurrent side).
    dh : ndarray of shape (B, H)
        In: gradient w.r.t. ``h_n``; out: w.r.t. ``h_0``.
    dn, drh, dhin, ddirect : ndarray of shape (B, H)
    drz : ndarray of shape (B, 2H)
        Scratch (contiguous operands of the two products).
    """
    try:
        if wants_double(dy):
            _v1_backward[double](dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates,
                                 dh, dn, drz, drh, dhin, ddirect)
        else:
            _v1_backward[float](dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates,
                                dh, dn, drz, drh, dhin, ddirect)
    except _CONVERSION_ERRORS as exc:
        explain("gru_v1_backward", _V1_BACKWARD_SPEC,
                (dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh, dn, drz,
                 drh, dhin, ddirect), exc)
