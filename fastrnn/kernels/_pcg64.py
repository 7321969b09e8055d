"""numpy's PCG64 generator stepped inside compiled code, for the dropout masks.

``np.random.PCG64`` is a 128-bit linear congruential generator with the XSL-RR output (O'Neill,
"PCG: A family of simple fast space-efficient statistically good algorithms for random number
generation", 2014): each draw first steps the state, ``s = s * M + inc (mod 2**128)``, then
returns the 64 bits ``rotr64(hi(s) ^ lo(s), hi(s) >> 58)``. ``Generator.random(dtype=float32)``
takes 32 bits per value, the low half of a draw before its high half, and returns
``(bits >> 8) * 2**-24``.

Through numpy a float32 draw costs about 2.9 ns on the benchmark host (a call through a function
pointer per value); stepped here, one 128-bit multiply a draw (:func:`mad128`, LLVM's ``i128``),
a 64-bit draw (two float32 values) costs 1.5-1.9 ns. The state and increment are read from
numpy's generator (``PCG64(seed).state``, :func:`split_state`), or computed from an integer seed
by :func:`seeded_state` as ``PCG64(seed)`` does (numpy's ``SeedSequence`` hash, then PCG's
seeding), so the values are numpy's, bit for bit (``tests/test_flat.py`` compares them).
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .._config import NUMBA_OPTS

__all__ = ["MULT_HI", "MULT_LO", "draw_raw", "mad128", "next64", "seeded_state", "split_state"]

#: PCG's default 128-bit multiplier (the one numpy's PCG64 uses), as high and low 64-bit halves
MULT = 0x2360ED051FC65DA44385DF649FCCF645
MULT_HI = np.uint64(MULT >> 64)
MULT_LO = np.uint64(MULT & 0xFFFFFFFFFFFFFFFF)

_I64, _I128 = ir.IntType(64), ir.IntType(128)


@intrinsic
def mad128(typingctx, ah, al, bh, bl, ch, cl):
    """``(a * b + c) mod 2**128`` of 128-bit integers given as (high, low) uint64 halves; returns
    the result's ``(high, low)``."""
    args = (ah, al, bh, bl, ch, cl)
    if any(a != types.uint64 for a in args):
        raise TypingError(f"mad128 takes six uint64 halves, got {args}")
    sig = types.UniTuple(types.uint64, 2)(*args)

    def codegen(context, builder, sig, llargs):
        def wide(h, lo):
            return builder.or_(builder.shl(builder.zext(h, _I128), ir.Constant(_I128, 64)),
                               builder.zext(lo, _I128))

        a, b, c = (wide(llargs[i], llargs[i + 1]) for i in (0, 2, 4))
        r = builder.add(builder.mul(a, b), c)
        hi = builder.trunc(builder.lshr(r, ir.Constant(_I128, 64)), _I64)
        return context.make_tuple(builder, sig.return_type, (hi, builder.trunc(r, _I64)))

    return sig, codegen


def split_state(bit_generator):
    """A ``np.random.PCG64``'s state and increment as an array of uint64 halves: ``[state_hi,
    state_lo, inc_hi, inc_lo]`` (the generator of the compiled draws)."""
    st = bit_generator.state["state"]
    s, inc = int(st["state"]), int(st["inc"])
    m = 0xFFFFFFFFFFFFFFFF
    return np.array([s >> 64, s & m, inc >> 64, inc & m], np.uint64)


@numba.njit(**NUMBA_OPTS)
def next64(sh, sl, ih, il):
    """One draw: the stepped state ``(sh, sl)`` and its 64 output bits."""
    sh, sl = mad128(sh, sl, MULT_HI, MULT_LO, ih, il)
    v = sh ^ sl
    r = sh >> np.uint64(58)
    return sh, sl, (v >> r) | (v << ((np.uint64(64) - r) & np.uint64(63)))


@numba.njit(**NUMBA_OPTS)
def draw_raw(gen, raw):
    """``raw[:] =`` the next ``len(raw)`` 64-bit draws of the generator ``gen`` (numpy's
    ``PCG64.random_raw``); ``gen``, ``[state_hi, state_lo, inc_hi, inc_lo]`` (uint64), is left
    as it was."""
    sh, sl, ih, il = gen[0], gen[1], gen[2], gen[3]
    for i in range(raw.shape[0]):
        sh, sl, raw[i] = next64(sh, sl, ih, il)


# numpy's SeedSequence (after O'Neill's seed_seq_fe): a pool of four 32-bit words hashed from the
# entropy, then the words of the generated state hashed from the pool
_M32 = np.uint64(0xFFFFFFFF)
_INIT_A, _MULT_A = np.uint64(0x43B0D7E5), np.uint64(0x931E8875)
_INIT_B, _MULT_B = np.uint64(0x8B51F9DD), np.uint64(0x58F38DED)
_MIX_L, _MIX_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
_SHIFT = np.uint64(16)


@numba.njit(**NUMBA_OPTS)
def _hashmix(value, hc):
    """SeedSequence's ``hashmix``: the hashed 32-bit ``value`` and the next hash constant."""
    value ^= hc
    hc = (hc * _MULT_A) & _M32
    value = (value * hc) & _M32
    return value ^ (value >> _SHIFT), hc


@numba.njit(**NUMBA_OPTS)
def _mix(x, y):
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> _SHIFT)


@numba.njit(**NUMBA_OPTS)
def seeded_state(seed):
    """``np.random.PCG64(seed)``'s state and increment as :func:`split_state` gives them, for an
    integer ``0 <= seed < 2**32`` (the entropy of one 32-bit word): its SeedSequence's four
    64-bit words ``w``, then PCG's seeding with the initial state ``w0 w1`` and the sequence
    ``w2 w3``."""
    zero, one = np.uint64(0), np.uint64(1)
    pool = np.zeros(4, np.uint64)
    hc = _INIT_A
    for i in range(4):
        pool[i], hc = _hashmix(np.uint64(seed) if i == 0 else zero, hc)
    for src in range(4):
        for dst in range(4):
            if src != dst:
                h, hc = _hashmix(pool[src], hc)
                pool[dst] = _mix(pool[dst], h)
    words = np.zeros(4, np.uint64)  # generate_state(4, uint64): 32-bit halves, low first
    hc = _INIT_B
    for i in range(8):
        v = pool[i % 4] ^ hc
        hc = (hc * _MULT_B) & _M32
        v = (v * hc) & _M32
        words[i // 2] |= (v ^ (v >> _SHIFT)) << np.uint64(32 * (i % 2))
    # inc = 2 * sequence + 1; the state starts at 0, steps, adds the initial state, steps
    ih = (words[2] << one) | (words[3] >> np.uint64(63))
    il = (words[3] << one) | one
    sh, sl = mad128(zero, zero, MULT_HI, MULT_LO, ih, il)
    sh, sl = mad128(sh, sl, zero, one, words[0], words[1])
    sh, sl = mad128(sh, sl, MULT_HI, MULT_LO, ih, il)
    gen = np.empty(4, np.uint64)
    gen[0], gen[1], gen[2], gen[3] = sh, sl, ih, il
    return gen
