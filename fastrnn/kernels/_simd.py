"""Explicit float32 SIMD vectors for the Numba kernels: a 16-lane vector type and its operations.

LLVM's auto-vectorizer leaves a matrix-multiply micro-kernel or a loop with many arrays scalar or
half-vectorized; writing the vector code out keeps the accumulators in registers and makes the
generated code independent of the vectorizer's heuristics. :class:`F32x16` is an LLVM
``<16 x float>`` value (one AVX-512 register; on CPUs without AVX-512 LLVM splits it into two AVX2
registers: correct, but the micro-kernel then runs short of registers).

The operations are Numba intrinsics usable inside ``@njit`` code only:

``vload(a, i)`` / ``vstore(a, i, v)``
    16 consecutive elements of the float32 array ``a`` starting at flat element offset ``i``
    (counted from the array's data pointer; the caller makes sure the 16 elements exist).
``vload_n(a, i, n)`` / ``vstore_n(a, i, v, n)``
    Only the first ``n`` lanes (``0 <= n <= 16``); the other lanes read as 0 and are not written.
``vbload(a, i)``
    Broadcast ``a[i]`` to all lanes (one ``vbroadcastss``, usually folded into the FMA).
``vsplat(x)``, ``vzero()``
    Broadcast a scalar; all zeros.
``vfma(a, b, c)``
    ``a * b + c`` with one rounding.
``vadd``, ``vsub``, ``vmul``, ``vdiv``
    Lane-wise IEEE arithmetic.
``vgt_select(x, t, a, b)``
    ``a`` where ``x > t`` else ``b`` (an ordered comparison: a NaN in ``x`` selects ``b``).
``vfloor(x)``
    Lane-wise floor.
``vpow2i(n)``
    ``2**n`` for lanes holding integers ``-126 <= n <= 127`` (built from the exponent bits; other
    values give garbage).
``vprefetch(a, i)``
    Ask for the cache line of ``a[i]`` (flat element offset) ahead of a write (LLVM's
    ``llvm.prefetch``: a hint, never a fault, no effect on any value).

No index is checked and negative indices are not wrapped: these are building blocks for kernels
whose loops are written against known shapes.

Built on them, inlined helpers for the gate blocks of a row (``G`` blocks of ``H`` units side by
side): ``vload3``/``vload4`` read lanes ``o .. o+n-1`` of each block, ``vstore3``/``vstore4`` write
them, ``vacc3``/``vacc4`` add to them.
"""

import operator

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model

from ._jit import njit_inline

LANES = 16
_F32 = ir.FloatType()
_VEC = ir.VectorType(_F32, LANES)
_I32 = ir.IntType(32)
_I1V = ir.VectorType(ir.IntType(1), LANES)


class F32x16(types.Type):
    """Numba type of a 16-lane float32 vector held in registers."""

    def __init__(self):
        super().__init__(name="f32x16")


f32x16 = F32x16()


@register_model(F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _check_f32_array(arr):
    if not (isinstance(arr, types.Array) and arr.dtype == types.float32):
        raise TypeError(f"expected a float32 array, got {arr}")


def _elem_ptr(context, builder, arrty, arr, idxty, idx):
    """Pointer to element ``idx`` (flat, from the data pointer) of ``arr``."""
    data = context.make_array(arrty)(context, builder, arr).data
    i = context.cast(builder, idx, idxty, types.intp)
    return builder.gep(data, [i])


def _lane_mask(builder, context, nty, n):
    """``<16 x i1>`` with lanes ``0 .. n-1`` set."""
    n32 = builder.trunc(context.cast(builder, n, nty, types.int64), _I32)
    splat = builder.insert_element(ir.Constant(ir.VectorType(_I32, LANES), ir.Undefined), n32,
                                   ir.Constant(_I32, 0))
    splat = builder.shuffle_vector(splat, ir.Constant(ir.VectorType(_I32, LANES), ir.Undefined),
                                   ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))
    lanes = ir.Constant(ir.VectorType(_I32, LANES), list(range(LANES)))
    return builder.icmp_signed("<", lanes, splat)


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), x, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(_VEC, ir.Undefined),
                                  ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


@intrinsic
def vload(typingctx, arr, idx):
    _check_f32_array(arr)
    sig = f32x16(arr, idx)

    def codegen(context, builder, sig, args):
        p = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load(builder.bitcast(p, _VEC.as_pointer()), align=4)

    return sig, codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    _check_f32_array(arr)
    sig = types.void(arr, idx, f32x16)

    def codegen(context, builder, sig, args):
        p = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        builder.store(args[2], builder.bitcast(p, _VEC.as_pointer()), align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vprefetch(typingctx, arr, idx):
    _check_f32_array(arr)
    sig = types.void(arr, idx)

    def codegen(context, builder, sig, args):
        p = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        i8p = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, _I32, _I32, _I32]),
            "llvm.prefetch.p0")
        # write, keep in all cache levels, data cache
        builder.call(fn, [builder.bitcast(p, i8p), ir.Constant(_I32, 1), ir.Constant(_I32, 3),
                          ir.Constant(_I32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vload_n(typingctx, arr, idx, n):
    _check_f32_array(arr)
    sig = f32x16(arr, idx, n)

    def codegen(context, builder, sig, args):
        p = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        p = builder.bitcast(p, _VEC.as_pointer())
        mask = _lane_mask(builder, context, sig.args[2], args[2])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_VEC, [_VEC.as_pointer(), _I32, _I1V, _VEC]),
            "llvm.masked.load.v16f32.p0")
        return builder.call(fn, [p, ir.Constant(_I32, 4), mask, ir.Constant(_VEC, [0.0] * LANES)])

    return sig, codegen


@intrinsic
def vstore_n(typingctx, arr, idx, v, n):
    _check_f32_array(arr)
    sig = types.void(arr, idx, f32x16, n)

    def codegen(context, builder, sig, args):
        p = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        p = builder.bitcast(p, _VEC.as_pointer())
        mask = _lane_mask(builder, context, sig.args[3], args[3])
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [_VEC, _VEC.as_pointer(), _I32, _I1V]),
            "llvm.masked.store.v16f32.p0")
        builder.call(fn, [args[2], p, ir.Constant(_I32, 4), mask])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vbload(typingctx, arr, idx):
    _check_f32_array(arr)
    sig = f32x16(arr, idx)

    def codegen(context, builder, sig, args):
        p = _elem_ptr(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return _splat(builder, builder.load(p, align=4))

    return sig, codegen


@intrinsic
def vsplat(typingctx, x):
    if not isinstance(x, (types.Float, types.Integer)):
        return None
    sig = f32x16(x)

    def codegen(context, builder, sig, args):
        return _splat(builder, context.cast(builder, args[0], sig.args[0], types.float32))

    return sig, codegen


@intrinsic
def vzero(typingctx):
    sig = f32x16()

    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, [0.0] * LANES)

    return sig, codegen


@intrinsic
def vfma(typingctx, a, b, c):
    sig = f32x16(f32x16, f32x16, f32x16)

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3),
                                            "llvm.fma.v16f32")
        return builder.call(fn, args)

    return sig, codegen


def _binary(op):
    @intrinsic
    def impl(typingctx, a, b):
        sig = f32x16(f32x16, f32x16)

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return sig, codegen

    return impl


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")
vdiv = _binary("fdiv")


@intrinsic
def vgt_select(typingctx, x, t, a, b):
    sig = f32x16(f32x16, f32x16, f32x16, f32x16)

    def codegen(context, builder, sig, args):
        return builder.select(builder.fcmp_ordered(">", args[0], args[1]), args[2], args[3])

    return sig, codegen


@intrinsic
def vfloor(typingctx, x):
    sig = f32x16(f32x16)

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]),
                                            "llvm.floor.v16f32")
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def vpow2i(typingctx, n):
    sig = f32x16(f32x16)

    def codegen(context, builder, sig, args):
        i32v = ir.VectorType(_I32, LANES)
        e = builder.add(builder.fptosi(args[0], i32v), ir.Constant(i32v, [127] * LANES))
        return builder.bitcast(builder.shl(e, ir.Constant(i32v, [23] * LANES)), _VEC)

    return sig, codegen


for _op, _fn in ((operator.add, vadd), (operator.sub, vsub), (operator.mul, vmul),
                 (operator.truediv, vdiv)):
    def _make(fn):
        def ov(a, b):
            if isinstance(a, F32x16) and isinstance(b, F32x16):
                return lambda a, b: fn(a, b)
            return None
        return ov

    overload(_op)(_make(_fn))


# ---------------------------------------------------------------- the gate blocks of a row
@njit_inline
def vload3(a, o, H, n):
    """``n`` lanes of three blocks ``H`` apart: ``a[o:]``, ``a[o + H:]``, ``a[o + 2H:]``."""
    return vload_n(a, o, n), vload_n(a, o + H, n), vload_n(a, o + 2 * H, n)


@njit_inline
def vload4(a, o, H, n):
    """``n`` lanes of four blocks ``H`` apart."""
    v0, v1, v2 = vload3(a, o, H, n)
    return v0, v1, v2, vload_n(a, o + 3 * H, n)


@njit_inline
def vstore3(a, o, H, n, v0, v1, v2):
    """Store ``n`` lanes of ``v0, v1, v2`` to three blocks ``H`` apart, from ``a[o]``."""
    vstore_n(a, o, v0, n)
    vstore_n(a, o + H, v1, n)
    vstore_n(a, o + 2 * H, v2, n)


@njit_inline
def vstore4(a, o, H, n, v0, v1, v2, v3):
    """Store ``n`` lanes of ``v0 .. v3`` to four blocks ``H`` apart, from ``a[o]``."""
    vstore3(a, o, H, n, v0, v1, v2)
    vstore_n(a, o + 3 * H, v3, n)


@njit_inline
def vacc3(a, o, H, n, v0, v1, v2):
    """Add ``v0, v1, v2`` to ``n`` lanes of three blocks ``H`` apart, from ``a[o]``."""
    p0, p1, p2 = vload3(a, o, H, n)
    vstore3(a, o, H, n, p0 + v0, p1 + v1, p2 + v2)


@njit_inline
def vacc4(a, o, H, n, v0, v1, v2, v3):
    """Add ``v0 .. v3`` to ``n`` lanes of four blocks ``H`` apart, from ``a[o]``."""
    p0, p1, p2, p3 = vload4(a, o, H, n)
    vstore4(a, o, H, n, p0 + v0, p1 + v1, p2 + v2, p3 + v3)
