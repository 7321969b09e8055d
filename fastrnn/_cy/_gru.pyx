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

from ._argcheck cimport check_product, check_steps, expect_shape, mask_rows
from ._blas cimport matmul
from ._cellmath cimport (gru_bwd, gru_fwd_row, gru_v1_bwd_r, gru_v1_bwd_zn, gru_v1_gates_row,
                        gru_v1_out_row)
from ._rows cimport carry, recurrent_product, zero_rows

from ._errors import call


def _forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_t,
             const floating[::1] bhh, const int64_t[::1] batch_sizes,
             const floating[:, ::1] hmask, bint use_mask, floating[:, :, ::1] hs,
             floating[:, :, ::1] acts, floating[:, ::1] hin, floating[:, ::1] a):
    cdef str k = "gru_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G // 3
    cdef Py_ssize_t t, b, n_
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef floating *ap = &a[0, 0]
    if G % 3:
        raise ValueError(f"{k}: xp's last dimension must be 3H (gates r, z, n), got {G}.")
    check_product(k, "whh_t", whh_t.shape, hin.shape, a.shape, B, H, G)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
    expect_shape(k, "bhh", bhh.shape, 1, G)
    expect_shape(k, "acts", acts.shape, 3, T, B, 4 * H)
    with nogil:
        for t in range(T):
            n_ = batch_sizes[t]
            recurrent_product(&hs[t, 0, 0], mask, &hin[0, 0], &whh_t[0, 0], ap, n_, H, G, use_mask)
            for b in range(n_):
                gru_fwd_row(H, &xp[t, b, 0], ap + b * G, &bhh[0], &hs[t, b, 0], &acts[t, b, 0],
                            &hs[t + 1, b, 0])
            carry(&hs[t, 0, 0], n_, B, H)


def _backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
              const floating[:, :, ::1] acts, const floating[:, ::1] whh,
              const int64_t[::1] batch_sizes, const floating[:, ::1] hmask, bint use_mask,
              floating[:, :, ::1] dxp, floating[:, :, ::1] dhp, floating[:, ::1] dh,
              floating[:, ::1] ddirect):
    cdef str k = "gru_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], G = 3 * H
    cdef Py_ssize_t t, b, j, n_, q
    cdef const floating *act
    cdef const floating *hp
    cdef const floating *d
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef floating *gx
    cdef floating *gh
    cdef floating *dhr = &dh[0, 0]
    cdef floating *dd = &ddirect[0, 0]
    cdef floating dar, daz, dan, dhn
    expect_shape(k, "acts", acts.shape, 3, T, B, 4 * H)
    expect_shape(k, "whh", whh.shape, 2, G, H)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
    expect_shape(k, "dxp", dxp.shape, 3, T, B, G)
    expect_shape(k, "dhp", dhp.shape, 3, T, B, G)
    expect_shape(k, "dh", dh.shape, 2, B, H)
    expect_shape(k, "ddirect", ddirect.shape, 2, B, H)
    with nogil:
        for t in range(T - 1, -1, -1):
            n_ = batch_sizes[t]
            for b in range(n_):
                act, hp, d = &acts[t, b, 0], &hs[t, b, 0], &dy[t, b, 0]
                gx, gh = &dxp[t, b, 0], &dhp[t, b, 0]
                for j in range(H):
                    gru_bwd(dhr[b * H + j] + d[j], act[j], act[H + j], act[2 * H + j],
                            act[3 * H + j], hp[j], &dar, &daz, &dan, &dhn, &dd[b * H + j])
                    gx[j] = dar
                    gx[H + j] = daz
                    gx[2 * H + j] = dan
                    gh[j] = dar
                    gh[H + j] = daz
                    gh[2 * H + j] = dhn
            zero_rows(&dxp[t, 0, 0], n_, B, G)
            zero_rows(&dhp[t, 0, 0], n_, B, G)
            matmul(&dhp[t, 0, 0], &whh[0, 0], dhr, n_, G, H, <floating>0)
            if use_mask:
                for q in range(n_ * H):
                    dhr[q] = dhr[q] * mask[q] + dd[q]
            else:
                for q in range(n_ * H):
                    dhr[q] += dd[q]


def _v1_forward(const floating[:, :, ::1] xp, const floating[:, ::1] whh_rz_t,
                const floating[:, ::1] whh_n_t, const int64_t[::1] batch_sizes,
                const floating[:, ::1] hmask, bint use_mask, floating[:, :, ::1] hs,
                floating[:, :, ::1] acts, floating[:, :, ::1] rh, floating[:, ::1] hin,
                floating[:, ::1] a, floating[:, ::1] an):
    cdef str k = "gru_v1_forward"
    cdef Py_ssize_t T = xp.shape[0], B = xp.shape[1], G = xp.shape[2], H = G // 3
    cdef Py_ssize_t t, b, n_
    cdef const floating *inp
    cdef const floating *mask = mask_rows(hmask, use_mask)
    if G % 3:
        raise ValueError(f"{k}: xp's last dimension must be 3H (gates r, z, n), got {G}.")
    check_product(k, "whh_rz_t", whh_rz_t.shape, hin.shape, a.shape, B, H, 2 * H)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
    expect_shape(k, "whh_n_t", whh_n_t.shape, 2, H, H)
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "rh", rh.shape, 3, T, B, H)
    expect_shape(k, "an", an.shape, 2, B, H)
    with nogil:
        for t in range(T):
            n_ = batch_sizes[t]
            inp = recurrent_product(&hs[t, 0, 0], mask, &hin[0, 0], &whh_rz_t[0, 0], &a[0, 0], n_,
                                    H, 2 * H, use_mask)
            for b in range(n_):
                gru_v1_gates_row(H, &xp[t, b, 0], &a[b, 0], inp + b * H, &acts[t, b, 0],
                                 &rh[t, b, 0])
            matmul(&rh[t, 0, 0], &whh_n_t[0, 0], &an[0, 0], n_, H, H, <floating>0)
            for b in range(n_):
                gru_v1_out_row(H, &xp[t, b, 0], &an[b, 0], &hs[t, b, 0], &acts[t, b, 0],
                               &hs[t + 1, b, 0])
            carry(&hs[t, 0, 0], n_, B, H)
            zero_rows(&rh[t, 0, 0], n_, B, H)


def _v1_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] hs,
                 const floating[:, :, ::1] acts, const floating[:, ::1] whh_rz,
                 const floating[:, ::1] whh_n, const int64_t[::1] batch_sizes,
                 const floating[:, ::1] hmask, bint use_mask, floating[:, :, ::1] dgates,
                 floating[:, ::1] dh, floating[:, ::1] dn, floating[:, ::1] drz,
                 floating[:, ::1] drh, floating[:, ::1] dhin, floating[:, ::1] ddirect):
    cdef str k = "gru_v1_backward"
    cdef Py_ssize_t T = dy.shape[0], B = dy.shape[1], H = dy.shape[2], G = 3 * H
    cdef Py_ssize_t t, b, j, n_, q
    cdef const floating *act
    cdef const floating *hp
    cdef const floating *mask = mask_rows(hmask, use_mask)
    cdef floating *g_
    cdef floating v
    expect_shape(k, "acts", acts.shape, 3, T, B, G)
    expect_shape(k, "whh_rz", whh_rz.shape, 2, 2 * H, H)
    expect_shape(k, "whh_n", whh_n.shape, 2, H, H)
    check_steps(k, batch_sizes, hmask.shape, use_mask, "hs", hs.shape, T, B, H)
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
            for b in range(n_):
                act, hp = &acts[t, b, 0], &hs[t, b, 0]
                for j in range(H):
                    gru_v1_bwd_zn(dh[b, j] + dy[t, b, j], act[H + j], act[2 * H + j], hp[j],
                                  &drz[b, H + j], &dn[b, j], &ddirect[b, j])
            matmul(&dn[0, 0], &whh_n[0, 0], &drh[0, 0], n_, H, H, <floating>0)
            for b in range(n_):
                act, hp = &acts[t, b, 0], &hs[t, b, 0]
                for j in range(H):
                    drz[b, j] = gru_v1_bwd_r(drh[b, j], act[j],
                                             hp[j] * mask[b * H + j] if use_mask else hp[j])
            matmul(&drz[0, 0], &whh_rz[0, 0], &dhin[0, 0], n_, 2 * H, H, <floating>0)
            for b in range(n_):
                act, g_ = &acts[t, b, 0], &dgates[t, b, 0]
                for j in range(H):
                    v = dhin[b, j] + drh[b, j] * act[j]
                    if use_mask:
                        v = v * mask[b * H + j]
                    dh[b, j] = v + ddirect[b, j]
                    g_[j] = drz[b, j]
                    g_[H + j] = drz[b, H + j]
                    g_[2 * H + j] = dn[b, j]
            zero_rows(&dgates[t, 0, 0], n_, B, G)


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
    """GRU forward (reset gate after the recurrent product): the arguments and results of
    :func:`fastrnn.kernels.gru.gru_forward`."""
    call("gru_forward", _FORWARD_SPEC, _forward,
         (xp, whh_t, bhh, batch_sizes, hmask, use_mask, hs, acts, hin, a))


def gru_backward(dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect):
    """GRU backward (reset after): the arguments and results of
    :func:`fastrnn.kernels.gru.gru_backward`."""
    call("gru_backward", _BACKWARD_SPEC, _backward,
         (dy, hs, acts, whh, batch_sizes, hmask, use_mask, dxp, dhp, dh, ddirect))


def gru_v1_forward(xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an):
    """GRU forward in the original form (reset gate before the product): the arguments and
    results of :func:`fastrnn.kernels.gru.gru_v1_forward`."""
    call("gru_v1_forward", _V1_FORWARD_SPEC, _v1_forward,
         (xp, whh_rz_t, whh_n_t, batch_sizes, hmask, use_mask, hs, acts, rh, hin, a, an))


def gru_v1_backward(dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh,
                    dn, drz, drh, dhin, ddirect):
    """GRU backward in the original form: the arguments and results of
    :func:`fastrnn.kernels.gru.gru_v1_backward`."""
    call("gru_v1_backward", _V1_BACKWARD_SPEC, _v1_backward,
         (dy, hs, acts, whh_rz, whh_n, batch_sizes, hmask, use_mask, dgates, dh, dn, drz, drh,
          dhin, ddirect))
