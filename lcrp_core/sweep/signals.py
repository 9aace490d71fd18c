"""Clean stops for sweep processes: Ctrl-C, SIGTERM (a scheduler's cancel or time limit, a parent
stopping its workers) and SLURM's pre-timeout SIGUSR2.

A signal never lands in the middle of a storage write. :class:`Stop`'s handler only records the
request, except inside an :meth:`Stop.interruptible` block (an evaluation, loading models, a
wait), where it raises KeyboardInterrupt at once. Popping a trial, recording its result, failing
and re-queueing it are therefore never cut in half: a worker stops at its next interruptible
point, so a trial interrupted anywhere between its pop and its record is failed ``interrupted``
and its cell re-queued (without using a retry), every time.

A second Ctrl-C (SIGINT after any first stop signal) raises KeyboardInterrupt wherever the
process is: "exit at once". A trial cut off that way is left RUNNING; the next run's reaper (or a
PostgreSQL heartbeat) fails it and re-queues its cell.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: What stops a sweep process cleanly.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)


class Stop:
    """Records the first stop signal (``signum``); raises KeyboardInterrupt only where allowed."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._interruptible = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:  # the second Ctrl-C: exit at once
                raise KeyboardInterrupt
            return
        self.signum = signum
        if self._interruptible:
            self._interruptible = False
            raise KeyboardInterrupt

    @contextmanager
    def installed(self, signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[Stop]:
        """Handle ``signals`` while the block runs (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in signals}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block a stop signal may cut short (KeyboardInterrupt); raises at once when a stop was
        requested before it started."""
        if self.signum is not None:
            raise KeyboardInterrupt
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A block inside an interruptible one that a stop signal must not cut (a storage write
        from a callback); the interrupt is raised when it ends."""
        was = self._interruptible
        self._interruptible = False
        try:
            yield
        finally:
            self._interruptible = was
        if was and self.signum is not None:
            self._interruptible = False
            raise KeyboardInterrupt

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until a stop signal arrives (KeyboardInterrupt)."""
        with self.interruptible():
            time.sleep(seconds)
