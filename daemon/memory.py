"""Give the heap's free pages back to the OS after each cycle, so a daemon's RSS follows what it uses.

Why: the soak (bench/bench_soak.py) showed a daemon whose live memory is flat
(Python objects, allocated blocks and glibc's `uordblks` all return to the
same level cycle after cycle) while its RSS still crept up ~7 KiB a cycle:
free chunks left between live ones in glibc's main arena (`fordblks` grew
from 1 to 14 MiB over 600 cycles) are never returned, because glibc only
shrinks the heap from its top. `malloc_trim(0)` walks every arena and
`madvise(MADV_DONTNEED)`s each whole free page, wherever it lies. It costs
about 0.25 ms after a cycle (3.6 ms at most, measured over 500 cycles).

On a C library without `malloc_trim` (musl, macOS) `trim_heap` does nothing
and says so by returning False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        fn = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        log.debug("malloc_trim is not available; the heap is left as it is", extra={"libc": name})
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Return free heap pages to the OS (glibc's malloc_trim(0)); False when the C library cannot."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
