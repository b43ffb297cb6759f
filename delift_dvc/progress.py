"""What a user sees while a stage runs: one line per phase, and steady progress with a rate and
an ETA. On a terminal the progress is a tqdm bar; in a log file (stderr not a terminal) it is a
plain line every `interval` seconds (30, or $DELIFT_DVC_PROGRESS_SECONDS), so logs hold no
carriage returns or escape codes. Progress moves with every forward batch, not every block."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Reporter"]


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


INTERVAL_ENV = "DELIFT_DVC_PROGRESS_SECONDS"  # seconds between progress lines in a log file


class Reporter:
    """Phase lines and a progress counter for one stage, on stderr (quiet: nothing)."""

    def __init__(self, stage: str, quiet: bool = False, interval: float | None = None, stream=None) -> None:
        self.stage = stage
        self.quiet = quiet
        self.stream = stream or sys.stderr
        if interval is None:
            try:
                interval = float(os.environ.get(INTERVAL_ENV, "30"))
            except ValueError:
                interval = 30.0
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        self._total = self._done = 0
        self._unit = ""
        self._start = self._last = 0.0

    def phase(self, text: str) -> None:
        """One line: '<stage>: <text>'."""
        if not self.quiet:
            print(f"{self.stage}: {text}", file=self.stream, flush=True)

    def start(self, total: int, unit: str) -> None:
        """Begin counting `total` units (e.g. pairs)."""
        self._total, self._done, self._unit = total, 0, unit
        self._start = self._last = time.monotonic()
        if self.quiet or total == 0:
            return
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, desc=self.stage, file=self.stream, dynamic_ncols=True,
                             smoothing=0.05)

    def update(self, n: int) -> None:
        """`n` more units done."""
        self._done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if not self.quiet and self._total and now - self._last >= self.interval and self._done < self._total:
            self._last = now
            self.phase(self._status(now))

    def _status(self, now: float) -> str:
        elapsed = now - self._start
        rate = self._done / elapsed if elapsed > 0 else 0.0
        eta = (self._total - self._done) / rate if rate > 0 else float("nan")
        left = _duration(eta) if rate > 0 else "unknown"
        share = 100.0 * self._done / self._total
        return (f"{self._done:,}/{self._total:,} {self._unit}s ({share:.0f} %), "
                f"{rate:.2f} {self._unit}s/s, ETA {left}")

    def finish(self) -> float:
        """Close the counter; the seconds it ran."""
        elapsed = time.monotonic() - self._start
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        return elapsed
