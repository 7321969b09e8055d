"""The Cython backend: the recurrent kernels compiled ahead of time.

The extensions (``_rnn``, ``_lstm``, ``_gru``, built from the ``.pyx`` files here by ``setup.py``)
are optional; :mod:`fastrnn._cy._kernels` gathers the eight kernels or, when the extensions are
missing, raises an ``ImportError`` that says why (which :func:`fastrnn.show_backends` then prints).
Nothing is imported here, so that this package always imports.
"""
