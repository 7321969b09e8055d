"""A tiled shared-memory matrix product for the per-step recurrent products on the GPU.

numba-cuda has no matrix multiply, so the recurrent product of every step, ``h[:n] @ W`` with
``n = batch_sizes[t]`` rows, runs in this kernel. Each ``TILE x TILE`` block of threads computes
one ``TILE x TILE`` tile of the output; along the shared dimension it loads one tile of each operand
into shared memory at a time, so every element read from global memory is used ``TILE`` times (the
classic blocked scheme of the CUDA C Programming Guide, "Shared Memory" section).

The kernel has an optional prologue and epilogue, which saves separate element-wise launches:

.. math:: C_{[:n]} = \\big((A_{[:n]} \\odot M_A) \\, W\\big) \\odot M_C + D

``M_A`` is the recurrent-dropout mask on the input state (forward), ``M_C`` the same mask on the
gradient that flows back (backward) and ``D`` an addend (the GRU's direct path through the update
gate).
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
    def gemm_kernel(n, a, amask, use_amask, w, c, cmask, use_cmask, add, use_add):
        sa = cuda.shared.array((tile, tile), scalar)
        sw = cuda.shared.array((tile, tile), scalar)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * tile + ty
        col = cuda.blockIdx.x * tile + tx
        K = a.shape[1]
        N = w.shape[1]
        acc = scalar(0)
        for k0 in range(0, K, tile):
            ka = k0 + tx
            if row < n and ka < K:
                v = a[row, ka]
                if use_amask:
                    v *= amask[row, ka]
                sa[ty, tx] = v
            else:
                sa[ty, tx] = scalar(0)
            kw = k0 + ty
            if kw < K and col < N:
                sw[ty, tx] = w[kw, col]
            else:
                sw[ty, tx] = scalar(0)
            cuda.syncthreads()
            for k in range(tile):
                acc += sa[ty, k] * sw[k, tx]
            cuda.syncthreads()
        if row < n and col < N:
            if use_cmask:
                acc *= cmask[row, col]
            if use_add:
                acc += add[row, col]
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


def gemm(n, a, w, c, amask=None, cmask=None, add=None, tile=None):
    """``c[:n] = ((a[:n] * amask[:n]) @ w) * cmask[:n] + add[:n]`` on the device.

    Rows ``n:`` of ``c`` are left untouched (finished sequences keep their values).

    Parameters
    ----------
    n : int
        Number of leading rows to compute, ``0 <= n <= a.shape[0]``.
    a : device array of shape (B, K)
    w : device array of shape (K, N)
    c : device array of shape (B, N)
        Output; must not alias ``a``, ``w`` or ``add``.
    amask : device array of shape (B, K), optional
        Multiplies ``a`` element-wise before the product.
    cmask : device array of shape (B, N), optional
        Multiplies the product element-wise.
    add : device array of shape (B, N), optional
        Added last.
    tile : int, optional
        Side of the thread block and shared-memory tiles; default :data:`TILE`.
    """
    B, K = a.shape
    N = w.shape[1]
    if w.shape[0] != K or c.shape[1] != N or c.shape[0] < n or B < n:
        raise ValueError(
            f"gemm: shapes do not match: a {a.shape}, w {w.shape}, c {c.shape}, n={n}; need "
            "a (B, K), w (K, N), c (B, N) and n <= B."
        )
    if n <= 0 or N == 0:
        return
    tile = TILE if tile is None else int(tile)
    kernel = _kernel_for(c.dtype, tile)
    grid = (math.ceil(N / tile), math.ceil(n / tile))
    # An unused operand still needs an argument of the right type: pass one that is never read.
    kernel[grid, (tile, tile)](
        n, a, a if amask is None else amask, amask is not None,
        w, c, c if cmask is None else cmask, cmask is not None,
        c if add is None else add, add is not None,
    )
