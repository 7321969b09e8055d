"""A tiled shared-memory matrix product for the GPU: the per-step recurrent products and the
batched products over all steps (input projection, weight and input gradients).

numba-cuda has no matrix multiply, so every product of the CUDA backend runs in this kernel. Each
``TILE x TILE`` block of threads computes one ``TILE x TILE`` tile of the output; along the shared
dimension it loads one tile of each operand into shared memory at a time, so every element read
from global memory is used ``TILE`` times (the classic blocked scheme of the CUDA C Programming
Guide, "Shared Memory" section).

Either operand may be used transposed, without a transposed copy: the weights stay in the PyTorch
layout ``(G*H, K)``, ``x W^T`` reads them transposed, and the weight gradient ``dG^T x`` reads the
gate gradients transposed. A transposed operand is loaded with the roles of the two thread indices
swapped, so that neighbouring threads still read neighbouring addresses.

The kernel has an optional prologue and epilogue, which saves separate element-wise launches:

.. math:: C_{[:n]} = \\big((\\mathrm{op}(A) \\odot M_A)_{[:n]} \\, \\mathrm{op}(B)\\big) \\odot M_C
          + D + b_1 + b_2

``M_A`` is the recurrent-dropout mask on the input state (forward; it has the shape of ``A`` as
stored), ``M_C`` the same mask on the gradient that flows back (backward), ``D`` an addend (the
GRU's direct path through the update gate) and ``b_1``, ``b_2`` bias vectors added to every row
(the input projection's ``b_ih`` and ``b_hh``).
"""

import math
import sys

import numpy as np
from numba import cuda

#: side of the square thread block and of the shared-memory tiles: 16 x 16 = 256 threads on a GPU.
#: On numba-cuda's simulator every thread of a block is a Python thread, so blocks of 4 x 4 keep it
#: fast; the tests check both sizes.
TILE = 4 if "numba.cuda.simulator_init" in sys.modules else 16


def _build(scalar, tile):
    """Compile the product for one scalar type (``np.float32`` or ``np.float64``) and one tile side:
    the shared-memory tiles need both at compile time."""

    @cuda.jit
    def gemm_kernel(n, a, trans_a, amask, use_amask, b, trans_b, c, cmask, use_cmask,
                    add, use_add, bias1, use_bias1, bias2, use_bias2):
        # sa[i, k] holds op(A)[row0 + i, k0 + k]; sb[k, j] holds op(B)[k0 + k, col0 + j]
        sa = cuda.shared.array((tile, tile), scalar)
        sb = cuda.shared.array((tile, tile), scalar)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row0 = cuda.blockIdx.y * tile
        col0 = cuda.blockIdx.x * tile
        K = a.shape[0] if trans_a else a.shape[1]
        N = b.shape[0] if trans_b else b.shape[1]
        acc = scalar(0)
        for k0 in range(0, K, tile):
            if trans_a:
                # op(A)[row0 + tx, k0 + ty] = a[k0 + ty, row0 + tx]: consecutive tx, consecutive
                # addresses
                r = row0 + tx
                k = k0 + ty
                if r < n and k < K:
                    v = a[k, r]
                    if use_amask:
                        v *= amask[k, r]
                    sa[tx, ty] = v
                else:
                    sa[tx, ty] = scalar(0)
            else:
                r = row0 + ty
                k = k0 + tx
                if r < n and k < K:
                    v = a[r, k]
                    if use_amask:
                        v *= amask[r, k]
                    sa[ty, tx] = v
                else:
                    sa[ty, tx] = scalar(0)
            if trans_b:
                # op(B)[k0 + tx, col0 + ty] = b[col0 + ty, k0 + tx]
                k = k0 + tx
                j = col0 + ty
                if k < K and j < N:
                    sb[tx, ty] = b[j, k]
                else:
                    sb[tx, ty] = scalar(0)
            else:
                k = k0 + ty
                j = col0 + tx
                if k < K and j < N:
                    sb[ty, tx] = b[k, j]
                else:
                    sb[ty, tx] = scalar(0)
            cuda.syncthreads()
            for kk in range(tile):
                acc += sa[ty, kk] * sb[kk, tx]
            cuda.syncthreads()
        row = row0 + ty
        col = col0 + tx
        if row < n and col < N:
            if use_cmask:
                acc *= cmask[row, col]
            if use_add:
                acc += add[row, col]
            if use_bias1:
                acc += bias1[col]
            if use_bias2:
                acc += bias2[col]
            c[row, col] = acc

    return gemm_kernel


_kernels = {}


def _kernel_for(dtype, tile):
    dtype = np.dtype(dtype)
    key = (dtype, tile)
    if key not in _kernels:
        if dtype == np.float32:
            _kernels[key] = _build(np.float32, tile)
        elif dtype == np.float64:
            _kernels[key] = _build(np.float64, tile)
        else:
            raise ValueError(f"gemm: dtype must be float32 or float64, got {dtype}.")
    return _kernels[key]


def gemm(n, a, b, c, amask=None, cmask=None, add=None, bias1=None, bias2=None, trans_a=False,
         trans_b=False, tile=None):
    """``c[:n] = ((op(a) * amask) @ op(b))[:n] * cmask[:n] + add[:n] + bias1 + bias2`` on the
    device, with ``op(a) = a.T`` when ``trans_a`` (likewise ``b``).

    Rows ``n:`` of ``c`` are left untouched (finished sequences keep their values).

    Parameters
    ----------
    n : int
        Number of leading rows of ``op(a)`` (and ``c``) to compute, ``0 <= n <= M``.
    a : device array of shape (M, K), or (K, M) when ``trans_a``
    b : device array of shape (K, N), or (N, K) when ``trans_b``
    c : device array of shape (M', N) with ``M' >= n``
        Output; must not alias ``a``, ``b`` or ``add``.
    amask : device array of the shape of ``a``, optional
        Multiplies ``a`` element-wise before the product.
    cmask : device array of shape (M', N), optional
        Multiplies the product element-wise.
    add : device array of shape (M', N), optional
        Added after ``cmask``.
    bias1, bias2 : device array of shape (N,), optional
        Added to every row, last (``bias1`` first).
    trans_a, trans_b : bool, default False
        Use the operand transposed.
    tile : int, optional
        Side of the thread block and shared-memory tiles; default :data:`TILE`.
    """
    M, K = (a.shape[1], a.shape[0]) if trans_a else (a.shape[0], a.shape[1])
    Kb, N = (b.shape[1], b.shape[0]) if trans_b else (b.shape[0], b.shape[1])
    if Kb != K or c.shape[1] != N or c.shape[0] < n or M < n or n < 0:
        raise ValueError(
            f"gemm: shapes do not match: a {tuple(a.shape)} (trans_a={trans_a}), b "
            f"{tuple(b.shape)} (trans_b={trans_b}), c {tuple(c.shape)}, n={n}; need op(a) (M, K), "
            "op(b) (K, N), c (M', N) and n <= min(M, M')."
        )
    if n == 0 or N == 0:
        return
    tile = TILE if tile is None else int(tile)
    kernel = _kernel_for(c.dtype, tile)
    grid = (math.ceil(N / tile), math.ceil(n / tile))
    # An unused operand still needs an argument of the right type: pass one that is never read.
    row = c[0]
    kernel[grid, (tile, tile)](
        n, a, bool(trans_a), a if amask is None else amask, amask is not None,
        b, bool(trans_b), c, c if cmask is None else cmask, cmask is not None,
        c if add is None else add, add is not None,
        row if bias1 is None else bias1, bias1 is not None,
        row if bias2 is None else bias2, bias2 is not None,
    )
