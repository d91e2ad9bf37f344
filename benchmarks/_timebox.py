"""Time boxes for benchmarks/gpu_check.py: ``with time_box(60, "section fid_kid"): ...`` raises
:class:`TimeBoxExceeded` in the main thread once 60 s have passed (SIGALRM through
``signal.setitimer``). Boxes nest; an inner box never outlasts the one around it, and the
exception names the box whose deadline ran out.

The signal is delivered between Python bytecodes, so a box interrupts Python-level work (such as
``torch.compile``'s tracing and code generation) but not one long call into C (a single CUDA
synchronisation waits until the kernels finish). :class:`TimeBoxExceeded` derives from
BaseException so that libraries' ``except Exception`` clauses do not swallow it.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["TimeBoxExceeded", "time_box", "remaining"]


class TimeBoxExceeded(BaseException):
    """Raised when a time box's deadline passes."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what}: exceeded its time box of {seconds:.3g} s")
        self.what, self.seconds = what, seconds


_STACK: list[tuple[float, str, float]] = []  # (deadline on the monotonic clock, label, seconds), innermost last


def _handler(signum, frame) -> None:  # noqa: ANN001
    if not _STACK:
        return
    deadline, what, seconds = _STACK[-1]
    if time.monotonic() < deadline - 1e-3:  # a stale alarm: re-arm for the rest
        _arm()
        return
    raise TimeBoxExceeded(what, seconds)


def _arm() -> None:
    if not _STACK:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    signal.setitimer(signal.ITIMER_REAL, max(_STACK[-1][0] - time.monotonic(), 1e-3))


def remaining() -> float | None:
    """Seconds left in the innermost open box (None outside any box)."""
    return _STACK[-1][0] - time.monotonic() if _STACK else None


@contextmanager
def time_box(seconds: float, what: str) -> Iterator[None]:
    """Run the body with a deadline of ``seconds`` (capped by any enclosing box)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("time_box works in the main thread only (SIGALRM)")
    deadline = time.monotonic() + max(float(seconds), 0.0)
    entry = (deadline, what, float(seconds))
    if _STACK and _STACK[-1][0] < deadline:
        entry = _STACK[-1]  # the enclosing box ends first: its deadline and its name apply
    if signal.getsignal(signal.SIGALRM) is not _handler:
        signal.signal(signal.SIGALRM, _handler)
    _STACK.append(entry)
    _arm()
    try:
        yield
    finally:
        _STACK.pop()
        _arm()
