"""Numba's on-disk cache of fastrnn's kernels, stamped with all of their sources.

Numba stamps a cached kernel with the hash of the one file that defines it. A kernel's machine
code also holds the functions it calls from other files (the cell mathematics, the vector
helpers, the matrix product), so a change of those alone (an edit in a checkout, an upgrade that
changes the callee's file and not the caller's) would leave the caller's stamp as it was, and the
next process would load machine code compiled from the old callee: a silently wrong result.

:func:`install` puts cache locators in front of Numba's own for the functions defined in this
package: the same cache files in the same places, with a stamp that also holds the hash of every
source file of the package that Numba compiles from (:func:`sources_digest`), so that a change of
any of them makes every cached kernel of the package compile again.
"""

import functools
import hashlib
import os

from numba.core import caching

__all__ = ["install", "sources_digest"]

#: the package whose functions get the stamp: the folder above this one
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _compiled_sources(root):
    """The source files under ``root`` that Numba may compile from: the kernels' folder and every
    other file that names Numba, in a fixed order."""
    kernels = os.path.join(root, "kernels")
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                data = f.read()
            if path.startswith(kernels + os.sep) or b"numba" in data:
                out.append((os.path.relpath(path, root), data))
    return out


@functools.lru_cache(maxsize=None)
def sources_digest(root=None):
    """SHA-256 of the sources of :func:`_compiled_sources` (names and contents) under ``root``
    (default :data:`PACKAGE_DIR`), computed once per process."""
    h = hashlib.sha256()
    for rel, data in _compiled_sources(root or PACKAGE_DIR):
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


class _Stamped:
    """A locator of Numba's for this package's functions, whose stamp also holds
    :func:`sources_digest`."""

    def get_source_stamp(self):
        return (super().get_source_stamp(), sources_digest(PACKAGE_DIR))

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.abspath(py_file).startswith(PACKAGE_DIR + os.sep):
            return None
        return super().from_function(py_func, py_file)


class UserProvided(_Stamped, caching.UserProvidedCacheLocator):
    """``NUMBA_CACHE_DIR``, where it is set."""


class InTree(_Stamped, caching.InTreeCacheLocator):
    """Next to the sources (their ``__pycache__``), where that can be written."""


class UserWide(_Stamped, caching.UserWideCacheLocator):
    """The user's cache folder, for a read-only installation."""


LOCATORS = (UserProvided, InTree, UserWide)


def install():
    """Put :data:`LOCATORS` in front of Numba's (once); kernels decorated afterwards use them."""
    classes = caching.CacheImpl._locator_classes
    if classes[:len(LOCATORS)] != list(LOCATORS):
        classes[0:0] = LOCATORS


install()
