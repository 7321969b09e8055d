"""Run the parts of a kernel on several threads: one part in the calling thread, the others in a
small persistent pool.

The fast kernels split their work into independent parts (rows of the batch, or rows of a weight
gradient) that write disjoint parts of their outputs, so a part needs no synchronisation until all
have finished. The kernels are compiled with ``nogil=True``: the threads run truly in parallel, and
waiting threads sleep (nothing spins). One pool per process, created on first use and rebuilt in a
child after ``fork``.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool = None
_pool_size = 0


def _reset_after_fork():
    global _pool, _pool_size
    _pool = None
    _pool_size = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _get_pool(workers):
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fastrnn")
            _pool_size = workers
        return _pool


def run_parts(fn, args_list):
    """Call ``fn(*args)`` for every ``args`` of ``args_list`` concurrently; return the results in
    order.

    The first call runs in the calling thread. Every part is waited for, even when one raises; the
    first exception is then re-raised.
    """
    if len(args_list) == 1:
        return [fn(*args_list[0])]
    pool = _get_pool(len(args_list) - 1)
    futures = [pool.submit(fn, *args) for args in args_list[1:]]
    error = None
    try:
        first = fn(*args_list[0])
    except BaseException as exc:  # noqa: BLE001 - re-raised below once the other parts are done
        error, first = exc, None
    results = [first]
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
            results.append(None)
    if error is not None:
        raise error
    return results
