"""The product of a step of the fast recurrent sweeps, in float32 or in bf16.

:func:`step_gemm` is what the sweeps of :mod:`fastrnn.kernels.rnn`, :mod:`~fastrnn.kernels.lstm`
and :mod:`~fastrnn.kernels.gru` call for ``h_{t-1} W_hh^T`` (forward) and ``dg_t W_hh`` (backward).
Numba picks the implementation from the packed weights' dtype when it compiles a sweep:

* float32 (packed by :func:`fastrnn.kernels._gemm.pack_b`): :func:`fastrnn.kernels._gemm.gemm`,
  the float32 product, the same values as a direct call;
* uint16 (bf16 values packed by :func:`fastrnn._cy._bf16.pack_b`): the C product
  ``frb_gemm_rows`` of ``fastrnn/_cy/_bf16gemm.h``, called through its address: the step's rows of
  ``A`` rounded to bf16, ``vdpbf16ps`` on AVX-512 BF16 (portable C elsewhere, and under
  :func:`fastrnn._cy._bf16.set_isa`), float32 sums. No Python, no GIL.

The address is given to LLVM under a fixed name (:data:`SYMBOL`) by :func:`register`, which
:func:`fastrnn.kernels._bf16.kernels` calls before any bf16 sweep is compiled or loaded from
Numba's on-disk cache: a cached sweep then finds the function of the current process. (Importing
the extension only then keeps float32 training free of it, and of its ``FASTRNN_ISA`` check.)
"""

from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from ._gemm import KC, gemm
from ._simd import _elem_ptr

__all__ = ["SYMBOL", "register", "step_gemm"]

#: the name under which compiled sweeps call ``frb_gemm_rows``
SYMBOL = "fastrnn_bf16_gemm_rows"

_registered = []


def register(module):
    """Give LLVM the address of ``frb_gemm_rows`` of the compiled extension ``module``
    (:mod:`fastrnn._cy._bf16`) under :data:`SYMBOL`, once per process."""
    if not _registered:
        binding.add_symbol(SYMBOL, module.gemm_rows_address())
        _registered.append(module)


_I64 = ir.IntType(64)
_PF32 = ir.FloatType().as_pointer()
_PI64 = _I64.as_pointer()
_FNTY = ir.FunctionType(ir.VoidType(), [_I64, _I64, _I64, _PF32, _PI64, ir.IntType(16).as_pointer(),
                                        _PF32, _PI64, ir.IntType(32)])


@intrinsic
def _gemm_rows(typingctx, M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate):
    """``frb_gemm_rows(M, N, K, &A[a_off], a_rows, Bp, &C[c_off], c_rows, accumulate)``."""
    sig = types.void(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate)

    def codegen(context, builder, sig, args):
        m, n, k, a, ar, ao, bp, c, cr, co, acc = args
        at, art, aot, bpt, ct, crt, cot = (sig.args[i] for i in (3, 4, 5, 6, 7, 8, 9))

        def data(ty, val):
            return context.make_array(ty)(context, builder, val).data

        def i64(ty, val):
            return context.cast(builder, val, ty, types.int64)

        fn = cgutils.get_or_insert_function(builder.module, _FNTY, SYMBOL)
        builder.call(fn, [i64(sig.args[0], m), i64(sig.args[1], n), i64(sig.args[2], k),
                          _elem_ptr(context, builder, at, a, aot, ao), data(art, ar),
                          data(bpt, bp), _elem_ptr(context, builder, ct, c, cot, co),
                          data(crt, cr),
                          builder.zext(context.cast(builder, acc, sig.args[10], types.boolean),
                                       ir.IntType(32))])
        return context.get_dummy_value()

    return sig, codegen


def step_gemm(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate):
    """``C (+)= A B`` for one step of a sweep (Numba code only).

    Row ``i`` of ``A`` (``M x K``, float32) is ``A[a_off + a_rows[i] :][:K]``, row ``i`` of ``C``
    (``M x N``, float32) is ``C[c_off + c_rows[i] :][:N]`` (``A``, ``C`` 1-D; ``a_rows``,
    ``c_rows`` int64). ``Bp`` is ``B`` (``K x N``) packed: float32 by
    :func:`fastrnn.kernels._gemm.pack_b` (with ``kc = KC``) for the float32 product, uint16 by
    :func:`fastrnn._cy._bf16.pack_b` for the bf16 one. With ``accumulate`` false ``C`` is
    overwritten.
    """
    raise NotImplementedError("step_gemm runs inside Numba-compiled code only")


@overload(step_gemm)
def _step_gemm(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate):
    if not isinstance(Bp, types.Array):
        return None
    if Bp.dtype == types.uint16:
        if a_rows.dtype != types.int64 or c_rows.dtype != types.int64:
            raise TypingError(f"step_gemm: the row tables must be int64, got {a_rows.dtype} and "
                              f"{c_rows.dtype}")

        def bf16(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate):
            _gemm_rows(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate)

        return bf16

    def f32(M, N, K, A, a_rows, a_off, Bp, C, c_rows, c_off, accumulate):
        gemm(M, N, K, A, a_rows, a_off, 1, Bp, KC, C, c_rows, c_off, accumulate)

    return f32
