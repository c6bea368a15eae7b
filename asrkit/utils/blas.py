"""Best-effort limit on numpy's OpenBLAS threads (what threadpoolctl does, without the dependency).

Tree building and GMM accumulation do thousands of small matrix products; OpenBLAS threading them costs more than it gives
(and is much worse when other processes share the cores). A no-op where the library is not found.
"""
from __future__ import annotations

import contextlib
import ctypes
from typing import Iterator, Optional, Tuple

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")
_cache: Optional[Tuple[object, object]] = None


def _functions():
    global _cache
    if _cache is not None:
        return _cache
    _cache = (None, None)
    try:
        import numpy  # noqa: F401  (loads its BLAS)

        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
        for path in paths:
            lib = ctypes.CDLL(path)
            setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
            getter = next((getattr(lib, g) for g in _GETTERS if hasattr(lib, g)), None)
            if setter is not None and getter is not None:
                getter.restype = ctypes.c_int
                _cache = (setter, getter)
                break
    except Exception:  # pragma: no cover - platform without /proc or a different BLAS
        pass
    return _cache


@contextlib.contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    setter, getter = _functions()
    if setter is None:
        yield
        return
    old = int(getter())
    setter(ctypes.c_int(n))
    try:
        yield
    finally:
        setter(ctypes.c_int(old))
