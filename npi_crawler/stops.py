"""A stop (Ctrl-C, SIGTERM from systemd, cron wrappers or ``timeout``) is an input like any other.

``STOPS`` is the process's one record of the stop signals it received. The CLI installs it for
the whole command; what a signal does depends on what the command is doing:

- during a crawl (``crawl_mode``): the first signal stops Scrapy gracefully (no new request; the
  ones in flight finish or are dropped) and, if that takes longer than the grace period, stops
  it at once; a second signal stops it at once. Each article is its own transaction, so nothing
  is half-written; the run is recorded as ``interrupted``, never ``ok`` (crawl.run_crawl);
- inside ``uninterrupted()`` (a message being sent and its delivery recorded): the first signal
  waits for the block to end, so a stop never sends an alert whose delivery it then forgets;
  a second signal does not wait;
- anywhere else: ``Stopped`` is raised at once, and transactions in progress roll back.

``Stopped`` is an NpiError: one line on stderr, exit 130 for SIGINT and 143 for SIGTERM.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from npi_crawler.errors import NpiError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(NpiError):
    """The command was stopped by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int, detail: str = ""):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name}{detail}")


class StopSignals:
    def __init__(self) -> None:
        self.received: list[int] = []
        self._depth = 0  # nesting of uninterrupted() blocks
        self._on_signal: Callable[[int, int], None] | None = None  # set by crawl_mode
        self._previous: dict[int, Any] | None = None

    # -- installing ---------------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return self._previous is not None

    def install(self) -> None:
        if self._previous is None:
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}

    def restore(self) -> None:
        if self._previous is not None:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous = None

    @contextmanager
    def handling(self) -> Iterator[StopSignals]:
        """Handle SIGINT and SIGTERM for the ``with`` block (the whole command)."""
        was_installed = self.installed
        self.install()
        try:
            yield self
        finally:
            if not was_installed:
                self.restore()

    # -- what a signal does -------------------------------------------------------------------
    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self._on_signal is not None:
            self._on_signal(signum, len(self.received))
        elif self._depth and len(self.received) == 1:
            return  # raised when the uninterrupted block ends
        else:
            raise Stopped(signum)

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    def check(self, detail: str = "") -> None:
        """Raise ``Stopped`` if a stop signal arrived (after a phase that deferred it)."""
        if self.received:
            raise Stopped(self.received[0], detail)

    @contextmanager
    def uninterrupted(self) -> Iterator[None]:
        """A block a first stop signal does not cut short; the stop takes effect after it."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.check()

    @contextmanager
    def crawl_mode(self, on_signal: Callable[[int, int], None]) -> Iterator[None]:
        """While Scrapy runs: signals go to ``on_signal(signum, count)``, which stops the reactor
        (a signal handler must not raise into Twisted's loop)."""
        with self.handling():
            self._on_signal = on_signal
            try:
                yield
            finally:
                self._on_signal = None


STOPS = StopSignals()
