"""A float32 matrix multiply written with explicit SIMD vectors, for the fast recurrent kernels.

``C (+)= A B`` where the rows of ``A`` and ``C`` are given by tables of offsets (so ``A`` may be a
row-major matrix, a transposed one, or rows gathered from a padded batch) and ``B`` is packed by
:func:`pack_b` into panels of ``NR = 32`` columns. The structure is the one of Goto & van de Geijn,
"Anatomy of high-performance matrix multiplication" (ACM TOMS 34(3), 2008), used by BLIS: a
register-blocked micro-kernel computes an ``MR x NR = 8 x 32`` tile of ``C`` in 16 vector
accumulators, loading one row of a packed panel of ``B`` (two vectors) and broadcasting 8 elements
of ``A`` per step of the inner dimension; a panel of ``KC`` rows stays in the L1 cache while the
micro-kernel sweeps down ``A``.

Why not ``np.dot``: inside a recurrent step the products are small (``16 x 256`` by ``256 x 1024``)
and alternate with element-wise code. OpenBLAS then pays its call overhead and its thread hand-off
(its idle threads spin while the element-wise code runs) and, pinned to AVX2 kernels by
``OPENBLAS_CORETYPE``, uses half the vector width of an AVX-512 core. Measured on a 2-core AMD
EPYC with AVX-512 (the machine of the benchmarks page): 220-240 GFLOP/s per core for the products
of the recurrent kernels against 80-120 for ``np.dot`` on one thread; 265 GFLOP/s with everything in L1 (the FMA peak is
270). This product runs in the calling thread only (the caller decides the parallelism) and its
tiles may start from the values already in ``C`` (``accumulate``), which fuses the addition of the
input projection.

Edges: a tile with fewer than ``MR`` rows reads the last valid row again for the missing ones (valid
memory) and stores only the valid rows; packed panels are zero-padded to ``NR`` columns and the
stores of the last panel are masked. Nothing is allocated.
"""

from ._jit import njit, njit_inline
from ._simd import vbload, vfma, vload, vload_n, vprefetch, vstore, vstore_n, vzero

MR = 8
NR = 32
KC = 256
#: the longest block of the inner dimension of the whole-sequence products of the backward (the
#: weight gradients, ``K = T * B``, and the input gradient, ``K`` = the gate width): ``C`` is loaded
#: and stored again for every block, and blocks of about 1024 instead of 256 ran these products
#: 7-19 % faster on one Zen 4 core (see :func:`long_kc`)
KC_LONG = 1024


@njit
def long_kc(K):
    """The blocks of a long inner dimension ``K``: the fewest blocks of at most :data:`KC_LONG`,
    of equal length (the last may be shorter); returns that length (at least 1)."""
    n = max(1, (K + KC_LONG - 1) // KC_LONG)
    return max(1, (K + n - 1) // n)


def packed_size(K, N):
    """Number of float32 elements of a packed ``K x N`` matrix (see :func:`pack_b`)."""
    return K * ((N + NR - 1) // NR) * NR


@njit
def pack_b(B, b_rows, b_off, b_cs, K, N, kc, out):
    """Pack the ``K x N`` matrix ``B[k, j] = B[b_off + b_rows[k] + j*b_cs]`` into panels.

    ``B`` is a 1-D view of any array and ``b_rows`` (int64) holds the flat offset of each row, so a
    block of rows, a transposed matrix or rows gathered from a padded batch are all the same case.
    A negative row offset packs a row of zeros (a padded step whose values must not be read).
    Layout of ``out`` (1-D, :func:`packed_size` elements): blocks of ``kc`` rows of ``B`` (the last
    may be shorter); inside a block, panels of ``NR`` columns, each stored row after row, at
    ``k0*Npad + jb*kcb*NR + k*NR + j``; columns past ``N`` are zero.
    """
    nb = (N + NR - 1) // NR
    npad = nb * NR
    for k0 in range(0, K, kc):
        kcb = min(kc, K - k0)
        for jb in range(nb):
            base = k0 * npad + jb * kcb * NR
            j0 = jb * NR
            jn = min(NR, N - j0)
            if b_cs == 1:  # rows of B are contiguous: vector copies, zero-filled past N
                n0 = min(jn, 16)
                n1 = max(jn - 16, 0)
                for k in range(kcb):
                    r = b_rows[k0 + k]
                    dst = base + k * NR
                    if r < 0:
                        vstore(out, dst, vzero())
                        vstore(out, dst + 16, vzero())
                    else:
                        src = b_off + r + j0
                        vstore(out, dst, vload_n(B, src, n0))
                        vstore(out, dst + 16, vload_n(B, src + 16, n1))
            else:  # columns of B are contiguous (a transposed matrix): read down the columns
                for j in range(jn):
                    src = b_off + (j0 + j) * b_cs
                    for k in range(kcb):
                        r = b_rows[k0 + k]
                        out[base + k * NR + j] = B[src + r] if r >= 0 else 0.0
                for k in range(kcb):
                    for j in range(jn, NR):
                        out[base + k * NR + j] = 0.0


@njit
def pack_bt(W, ldw, K, N, kc, out):
    """Pack ``B = W^T`` (``K x N``) where ``W`` is a 1-D view of an ``N x ldw`` row-major matrix:
    the layout of :func:`pack_b`, read along the rows of ``W`` (e.g. ``W_hh`` in PyTorch's
    layout)."""
    nb = (N + NR - 1) // NR
    npad = nb * NR
    for k0 in range(0, K, kc):
        kcb = min(kc, K - k0)
        for jb in range(nb):
            base = k0 * npad + jb * kcb * NR
            j0 = jb * NR
            jn = min(NR, N - j0)
            for j in range(jn):
                src = (j0 + j) * ldw + k0
                for k in range(kcb):
                    out[base + k * NR + j] = W[src + k]
            for k in range(kcb):
                for j in range(jn, NR):
                    out[base + k * NR + j] = 0.0


@njit_inline
def _store_row(C, off, c0, c1, nr, accumulate):
    if nr >= NR:
        if accumulate:
            c0 = c0 + vload(C, off)
            c1 = c1 + vload(C, off + 16)
        vstore(C, off, c0)
        vstore(C, off + 16, c1)
    else:
        n0 = min(nr, 16)
        n1 = max(nr - 16, 0)
        if accumulate:
            c0 = c0 + vload_n(C, off, n0)
            c1 = c1 + vload_n(C, off + 16, n1)
        vstore_n(C, off, c0, n0)
        vstore_n(C, off + 16, c1, n1)


@njit_inline
def _kstep(A, r0, r1, r2, r3, r4, r5, r6, r7, ka, Bp, bo, c):
    """One step of the inner dimension: ``c[2i + h] += A[r_i + ka] * Bp[bo + 16h : bo + 16h + 16]``
    for the 8 rows ``i`` and the two vectors ``h`` of a tile."""
    b0 = vload(Bp, bo)
    b1 = vload(Bp, bo + 16)
    a = vbload(A, r0 + ka)
    c00 = vfma(a, b0, c[0])
    c01 = vfma(a, b1, c[1])
    a = vbload(A, r1 + ka)
    c10 = vfma(a, b0, c[2])
    c11 = vfma(a, b1, c[3])
    a = vbload(A, r2 + ka)
    c20 = vfma(a, b0, c[4])
    c21 = vfma(a, b1, c[5])
    a = vbload(A, r3 + ka)
    c30 = vfma(a, b0, c[6])
    c31 = vfma(a, b1, c[7])
    a = vbload(A, r4 + ka)
    c40 = vfma(a, b0, c[8])
    c41 = vfma(a, b1, c[9])
    a = vbload(A, r5 + ka)
    c50 = vfma(a, b0, c[10])
    c51 = vfma(a, b1, c[11])
    a = vbload(A, r6 + ka)
    c60 = vfma(a, b0, c[12])
    c61 = vfma(a, b1, c[13])
    a = vbload(A, r7 + ka)
    c70 = vfma(a, b0, c[14])
    c71 = vfma(a, b1, c[15])
    return (c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71)


@njit_inline
def _row_starts(a_rows, a_ri, a_off, mr):
    """The starts of the ``MR = 8`` rows of ``A`` that a tile reads: rows past ``mr`` repeat the
    last valid one."""
    last = mr - 1
    return (a_off + a_rows[a_ri], a_off + a_rows[a_ri + min(1, last)],
            a_off + a_rows[a_ri + min(2, last)], a_off + a_rows[a_ri + min(3, last)],
            a_off + a_rows[a_ri + min(4, last)], a_off + a_rows[a_ri + min(5, last)],
            a_off + a_rows[a_ri + min(6, last)], a_off + a_rows[a_ri + min(7, last)])


@njit_inline
def _store_tile(C, c_rows, c_ri, c_off, c, mr, nr, accumulate):
    """Store the ``mr`` valid rows of a tile's accumulators ``c`` (two vectors a row)."""
    _store_row(C, c_off + c_rows[c_ri], c[0], c[1], nr, accumulate)
    if mr > 1:
        _store_row(C, c_off + c_rows[c_ri + 1], c[2], c[3], nr, accumulate)
    if mr > 2:
        _store_row(C, c_off + c_rows[c_ri + 2], c[4], c[5], nr, accumulate)
    if mr > 3:
        _store_row(C, c_off + c_rows[c_ri + 3], c[6], c[7], nr, accumulate)
    if mr > 4:
        _store_row(C, c_off + c_rows[c_ri + 4], c[8], c[9], nr, accumulate)
    if mr > 5:
        _store_row(C, c_off + c_rows[c_ri + 5], c[10], c[11], nr, accumulate)
    if mr > 6:
        _store_row(C, c_off + c_rows[c_ri + 6], c[12], c[13], nr, accumulate)
    if mr > 7:
        _store_row(C, c_off + c_rows[c_ri + 7], c[14], c[15], nr, accumulate)


@njit_inline
def _prefetch_tile(C, c_rows, c_ri, c_off, mr):
    """Ask for the cache lines of the ``mr`` rows of a tile of ``C`` (two lines a row), which the
    tile reads back and adds to at its end: a result streamed through memory (the gate
    pre-activations of a sweep, written long before) then arrives while the tile computes instead
    of stalling its stores. Measured on one Zen 4 core: the step products of a sweep accumulating
    into such rows, 93-96 GFLOP/s without, 104-105 with; the forward of the character model's
    LSTM layer on token input (32 x 64 steps, H 256), 5-6 % less time."""
    for r in range(mr):
        o = c_off + c_rows[c_ri + r]
        vprefetch(C, o)
        vprefetch(C, o + 16)


@njit
def microkernel(kc, A, a_rows, a_ri, a_off, a_cs, Bp, b_off, C, c_rows, c_ri, c_off, mr, nr,
                accumulate):
    """``C[0:mr, 0:nr] (+)= A[0:mr, 0:kc] P`` for one ``MR x NR`` tile, ``P`` a packed panel.

    Row ``i`` of ``A`` starts at ``a_off + a_rows[a_ri + i]`` and its elements are ``a_cs`` apart;
    ``P[k, j] = Bp[b_off + k*NR + j]``; row ``i`` of ``C`` starts at ``c_off + c_rows[c_ri + i]``
    (unit column stride). ``mr <= MR`` valid rows, ``nr <= NR`` valid columns.
    """
    if accumulate:
        _prefetch_tile(C, c_rows, c_ri, c_off, mr)
    r0, r1, r2, r3, r4, r5, r6, r7 = _row_starts(a_rows, a_ri, a_off, mr)
    z = vzero()
    c = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    bo = b_off
    for k in range(kc):
        c = _kstep(A, r0, r1, r2, r3, r4, r5, r6, r7, k * a_cs, Bp, bo, c)
        bo += NR
    _store_tile(C, c_rows, c_ri, c_off, c, mr, nr, accumulate)


@njit
def microkernel_rm(kc, A, a_rows, a_ri, a_off, a_cs, Bp, b_off, C, c_rows, c_ri, c_off, mr, nr,
                   accumulate):
    """:func:`microkernel` for ``a_cs == 1`` (rows of ``A`` contiguous), compiled apart: with one
    index shared by the eight rows its loop has few scalar instructions (5-9 % faster). The
    arguments are those of :func:`microkernel`.
    """
    if accumulate:
        _prefetch_tile(C, c_rows, c_ri, c_off, mr)
    r0, r1, r2, r3, r4, r5, r6, r7 = _row_starts(a_rows, a_ri, a_off, mr)
    z = vzero()
    c = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
    for k in range(kc):
        c = _kstep(A, r0, r1, r2, r3, r4, r5, r6, r7, k, Bp, b_off + k * NR, c)
    _store_tile(C, c_rows, c_ri, c_off, c, mr, nr, accumulate)


@njit
def gemm(M, N, K, A, a_rows, a_off, a_cs, Bp, kc, C, c_rows, c_off, accumulate, mc=128):
    """``C (+)= A B`` with ``B`` packed by :func:`pack_b` (same ``K``, ``N`` and ``kc``).

    Row ``i`` of ``A`` (``M x K``) starts at ``a_off + a_rows[i]`` with elements ``a_cs`` apart; row
    ``i`` of ``C`` (``M x N``) starts at ``c_off + c_rows[i]`` with unit stride. With ``accumulate``
    false ``C`` is overwritten. ``mc`` rows of ``A`` are swept per packed panel.
    """
    if M <= 0 or N <= 0:
        return
    npad = ((N + NR - 1) // NR) * NR
    if K <= 0:
        if not accumulate:
            for i in range(M):
                for j in range(N):
                    C[c_off + c_rows[i] + j] = 0.0
        return
    for k0 in range(0, K, kc):
        kcb = min(kc, K - k0)
        _sweep(M, N, kcb, A, a_rows, a_off + k0 * a_cs, a_cs, Bp, k0 * npad, C, c_rows, c_off,
               accumulate or k0 > 0, mc)


@njit
def _sweep(M, N, kcb, A, a_rows, a_off, a_cs, Bp, bo_k0, C, c_rows, c_off, acc, mc):
    """All tiles of one block of ``kcb`` rows of packed ``B`` (the body of :func:`gemm`)."""
    nb = (N + NR - 1) // NR
    for i0 in range(0, M, mc):
        i1 = min(M, i0 + mc)
        for jb in range(nb):
            j0 = jb * NR
            for i in range(i0, i1, MR):
                if a_cs == 1:
                    microkernel_rm(kcb, A, a_rows, i, a_off, a_cs, Bp, bo_k0 + jb * kcb * NR,
                                   C, c_rows, i, c_off + j0, min(MR, i1 - i), min(NR, N - j0), acc)
                else:
                    microkernel(kcb, A, a_rows, i, a_off, a_cs, Bp, bo_k0 + jb * kcb * NR,
                                C, c_rows, i, c_off + j0, min(MR, i1 - i), min(NR, N - j0), acc)


@njit
def gemm_pack(M, N, K, A, a_rows, a_off, a_cs, B, b_rows, b_off, b_cs, C, c_rows, c_off,
              accumulate, buf, mc=128):
    """``C (+)= A B`` for a ``B`` used once: each block of ``long_kc(K)`` rows of ``B`` is packed
    into ``buf`` (at least ``KC_LONG * ceil(N/NR) * NR`` elements) just before it is used.

    ``A`` and ``C`` as in :func:`gemm`; ``B[k, j] = B[b_off + b_rows[k] + j*b_cs]`` as in
    :func:`pack_b` (negative ``b_rows`` entries are rows of zeros).
    """
    if M <= 0 or N <= 0:
        return
    if K <= 0:
        if not accumulate:
            for i in range(M):
                for j in range(N):
                    C[c_off + c_rows[i] + j] = 0.0
        return
    kc = long_kc(K)
    for k0 in range(0, K, kc):
        kcb = min(kc, K - k0)
        pack_b(B, b_rows[k0:k0 + kcb], b_off, b_cs, kcb, N, kc, buf)
        _sweep(M, N, kcb, A, a_rows, a_off + k0 * a_cs, a_cs, buf, 0, C, c_rows, c_off,
               accumulate or k0 > 0, mc)


@njit
def gemm_pack2(M, K, A, a_rows, a_off, a_cs, B1, b1_rows, N1, C1, c1_rows, B2, b2_rows, N2, C2,
               c2_rows, buf, mc=128):
    """Two products with the same left operand in one pass over it: ``C1 = A B1`` and ``C2 = A B2``
    (overwritten; ``B1``, ``B2`` with unit column stride, rows as in :func:`pack_b`).

    Used for the weight gradients ``dW_ih = dg^T X`` and ``dW_hh = dg^T h`` (``A = dg^T`` is the
    large operand). ``buf`` holds at least ``KC_LONG * (ceil(N1/NR) + ceil(N2/NR)) * NR``
    elements; the blocks of ``K`` are those of :func:`long_kc`.
    """
    if M <= 0:
        return
    nb1 = (N1 + NR - 1) // NR
    nb2 = (N2 + NR - 1) // NR
    if K <= 0:
        for i in range(M):
            for j in range(N1):
                C1[c1_rows[i] + j] = 0.0
            for j in range(N2):
                C2[c2_rows[i] + j] = 0.0
        return
    kc = long_kc(K)
    for k0 in range(0, K, kc):
        kcb = min(kc, K - k0)
        off2 = kcb * nb1 * NR
        pack_b(B1, b1_rows[k0:k0 + kcb], 0, 1, kcb, N1, kc, buf)
        pack_b(B2, b2_rows[k0:k0 + kcb], 0, 1, kcb, N2, kc, buf[off2:])
        acc = k0 > 0
        ak = a_off + k0 * a_cs
        for i0 in range(0, M, mc):
            i1 = min(M, i0 + mc)
            for jb in range(nb1 + nb2):
                if jb < nb1:
                    j0 = jb * NR
                    for i in range(i0, i1, MR):
                        microkernel(kcb, A, a_rows, i, ak, a_cs, buf, jb * kcb * NR, C1, c1_rows, i,
                                    j0, min(MR, i1 - i), min(NR, N1 - j0), acc)
                else:
                    j0 = (jb - nb1) * NR
                    for i in range(i0, i1, MR):
                        microkernel(kcb, A, a_rows, i, ak, a_cs, buf, off2 + (jb - nb1) * kcb * NR,
                                    C2, c2_rows, i, j0, min(MR, i1 - i), min(NR, N2 - j0), acc)
