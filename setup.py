"""Build script of fastrnn: the optional Cython extensions (everything else is in pyproject.toml).

The Cython backend (``fastrnn/_cy/_rnn.pyx``, ``_lstm.pyx``, ``_gru.pyx``) is optional: when Cython
or a C compiler is missing, or the build fails, the install still succeeds, a warning is printed
(``pip install -v`` shows it), and the reason is written to ``fastrnn/_cy/_build_status.txt`` next
to where the extensions would have been, so that ``fastrnn.show_backends()`` can say why the
``cython`` backend is missing. Every other backend keeps working.

Environment variables
---------------------
FASTRNN_REQUIRE_CYTHON
    ``1`` (or ``true``/``yes``/``on``) turns a missing Cython or a failed build into an error that
    stops the install; CI sets it so that the Cython backend is never silently skipped.
CFLAGS
    Extra compiler flags, as for any extension build (e.g. ``CFLAGS=-march=native`` for a build that
    only ever runs on this machine; the default flags are portable).

``pip install -e .`` builds the extensions in place (next to the ``.pyx`` files), as does
``python setup.py build_ext --inplace``.
"""

import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

CY_PACKAGE = "fastrnn._cy"
CY_DIR = os.path.join("fastrnn", "_cy")
CY_MODULES = ("_rnn", "_lstm", "_gru", "_step", "_minimal", "_infer", "_bf16")
#: the C headers ``_infer.pyx`` includes (its matrix-vector products and recurrence)
INFER_HEADERS = ("_infer.h", "_gemv.h", "_recur_body.h")
#: the C header of ``_bf16.pyx`` (the bf16 matrix product of mixed-precision training)
HEADERS = {"_infer": INFER_HEADERS, "_bf16": ("_bf16gemm.h",)}
STATUS_FILE = "_build_status.txt"

# Portable optimisation flags. No -ffast-math: NaN and Inf must propagate through the kernels so
# that training can detect divergence. -fno-math-errno and -fno-trapping-math change nothing a
# caller sees (errno and floating-point traps are unused) but let the compiler inline and vectorise
# more.
GCC_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
MSVC_FLAGS = ["/O2", "/fp:precise"]


def require_cython():
    value = os.environ.get("FASTRNN_REQUIRE_CYTHON", "").strip().lower()
    return value in ("1", "true", "yes", "on")


def short_reason(exc):
    """One line saying why a build step failed; a failed command is named by its program only (the
    compiler prints its own diagnostics above)."""
    text = str(exc)
    m = re.search(r"Command '\[?'?([^',\]]+).*?' returned non-zero exit status (-?\d+)", text)
    if m:
        return (f"the command {m.group(1)!r} exited with status {m.group(2)} (its messages are in "
                "the build log)")
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text[:300]}" + ("..." if len(text) > 300 else "")


class OptionalBuildExt(build_ext):
    """``build_ext`` that cythonizes lazily and never fails the install unless
    FASTRNN_REQUIRE_CYTHON is set; it records the outcome in ``_build_status.txt``."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # the extensions compile side by side, one per core
            self.parallel = os.cpu_count() or 1

    def run(self):
        self._failures = []
        try:
            from Cython.Build import cythonize
        except ImportError as exc:
            self._finish([(None, f"Cython is not installed in the build environment ({exc})")])
            return
        try:
            # cythonize returns new Extension objects; setuptools has already annotated ours, so
            # only their sources (.pyx -> generated .c) are taken over.
            built = cythonize(
                [Extension(e.name, list(e.sources)) for e in self.extensions],
                compiler_directives={"language_level": "3"},
                quiet=True,
            )
        except Exception as exc:  # noqa: BLE001 - any failure makes the backend unavailable
            self._finish([(None, "Cython could not translate the .pyx files "
                                 f"({short_reason(exc)}; its messages are in the build log)")])
            return
        sources = {e.name: e.sources for e in built}
        for ext in self.extensions:
            ext.sources = sources[ext.name]
        super().run()
        self._finish(self._failures)

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        for ext in self.extensions:
            flags = MSVC_FLAGS if msvc else GCC_FLAGS
            ext.extra_compile_args = flags + list(ext.extra_compile_args)
            if not msvc and "m" not in ext.libraries:
                # Link libm explicitly: the references then carry symbol versions, and glibc binds
                # exp/expf to its current implementations rather than to the old versions, whose
                # SVID error-handling wrappers cost ~1 ns a call.
                ext.libraries.append("m")
        super().build_extensions()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - a compiler may fail in many ways
            self._failures.append((ext.name, short_reason(exc)))

    # -------------------------------------------------------------------- outcome
    def _package_dirs(self):
        """Where the extensions land: the build directory, and the source tree when in place."""
        dirs = [os.path.join(self.build_lib, *CY_PACKAGE.split("."))]
        if self.inplace or getattr(self, "editable_mode", False):
            dirs.append(self.get_finalized_command("build_py").get_package_dir(CY_PACKAGE))
        return dirs

    def _finish(self, failures):
        """``failures``: ``(extension name or None, reason)`` pairs; empty when all were built."""
        dirs = self._package_dirs()
        if not failures:
            for d in dirs:
                path = os.path.join(d, STATUS_FILE)
                if os.path.exists(path):
                    os.remove(path)
            return
        by_reason = {}
        for name, why in failures:
            by_reason.setdefault(why, []).append(name)
        reason = "; ".join(
            why if names == [None] else f"compiling {', '.join(names)} failed: {why}"
            for why, names in by_reason.items()
        )
        if require_cython():
            raise CompileError(
                f"FASTRNN_REQUIRE_CYTHON is set and the Cython backend was not built: {reason}. "
                "Install Cython>=3 and a C compiler, or unset FASTRNN_REQUIRE_CYTHON to install "
                "without the Cython backend."
            )
        for d in dirs:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, STATUS_FILE), "w", encoding="utf-8") as fh:
                fh.write(reason + "\n")
            # An extension left from an earlier build would run stale code: remove it.
            for name in CY_MODULES:
                built = self.get_ext_filename(f"{CY_PACKAGE}.{name}")
                stale = os.path.join(d, os.path.basename(built))
                if os.path.exists(stale):
                    os.remove(stale)
        bar = "=" * 78
        print(
            f"\n{bar}\nWARNING: the optional Cython backend of fastrnn was not built:\n  {reason}\n"
            "fastrnn works without it (the numba backend is the default). To build it, install\n"
            "Cython>=3 and a C compiler and reinstall; set FASTRNN_REQUIRE_CYTHON=1 to make this\n"
            f"an error.\n{bar}\n",
            file=sys.stderr,
        )


setup(
    ext_modules=[
        # optional=True: setuptools skips copying a failed extension into the source tree
        Extension(f"{CY_PACKAGE}.{name}", [os.path.join(CY_DIR, name + ".pyx")], optional=True,
                  depends=[os.path.join(CY_DIR, h) for h in HEADERS.get(name, ())])
        for name in CY_MODULES
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
