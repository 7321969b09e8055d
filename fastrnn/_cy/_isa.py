"""The ``FASTRNN_ISA`` variable, read by the compiled kernels' modules when they are imported."""

import os


def isa_from_env(levels):
    """The level named by ``FASTRNN_ISA`` (one of ``levels``), or ``"avx512"`` when it is unset:
    the highest the CPU supports, which the kernels lower to what it runs."""
    value = os.environ.get("FASTRNN_ISA", "").strip().lower()
    if not value:
        return "avx512"
    if value not in levels:
        raise ValueError(f"FASTRNN_ISA must be one of {sorted(levels)} (or unset), got "
                         f"{value!r}. Unset it to use the best level the CPU supports.")
    return value
