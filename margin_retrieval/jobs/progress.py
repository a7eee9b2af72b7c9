"""Progress lines for long jobs: done/total, rate and ETA, written to the job log at a rate a person can read.

Snakemake jobs write to log files (``margin_retrieval.jobs.logs.setup_job_logging``), where a tqdm bar would leave
carriage-return noise and one line per update. ``Progress`` logs plain lines instead: the first update, then at
most one line per ``interval`` seconds unless another ``step`` of the total has been done since the last line
(so a fast job logs about 100 / step_percent lines, a slow one one line per interval), and always the last.
"""

from __future__ import annotations

import logging
import time
from typing import Callable


def format_duration(seconds: float) -> str:
    """``'42s'``, ``'3m05s'`` or ``'2h07m'``: short enough for a log line, exact enough for an ETA."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts work done out of ``total`` and logs ``label: done/total unit (pct), rate, elapsed, ETA`` lines.

    ``extra`` appends job-specific numbers, e.g. the current loss; pass a callable to compute them only when a line
    is written (reading a GPU loss synchronises the device).
    """

    def __init__(self, total: int, label: str, unit: str = "items", logger: logging.Logger | None = None,
                 interval: float = 10.0, step_percent: float = 10.0, start: int = 0,
                 clock: Callable[[], float] = time.perf_counter):
        if total < 0:
            raise ValueError(f"total must be non-negative, got {total}")
        self.total = total
        self.label = label
        self.unit = unit
        self.logger = logger or logging.getLogger("margin_retrieval.jobs.progress")
        self.interval = interval
        self.step = max(1, int(total * step_percent / 100))
        self.done = start  # a resumed job starts part-way; its rate counts only the work of this run
        self._start_done = start
        self._clock = clock
        self._started = self._clock()
        self._last_time: float | None = None
        self._last_done = start
        self.lines = 0

    @property
    def rate(self) -> float:
        """Units per second of this run so far."""
        elapsed = self._clock() - self._started
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def update(self, n: int = 1, extra: str | Callable[[], str] = "", force: bool = False) -> None:
        """Count ``n`` more units; log a line when one is due (or ``force``)."""
        self.done += n
        now = self._clock()
        due = (force or self._last_time is None or self.done >= self.total or now - self._last_time >= self.interval
               or self.done - self._last_done >= self.step)
        if due:
            self._emit(now, extra)

    def _emit(self, now: float, extra: str | Callable[[], str]) -> None:
        extra = extra() if callable(extra) else extra
        elapsed = now - self._started
        worked = self.done - self._start_done
        rate = worked / elapsed if elapsed > 0 else 0.0
        percent = 100.0 * self.done / self.total if self.total else 100.0
        remaining = self.total - self.done
        eta = format_duration(remaining / rate) if rate > 0 else "?"
        message = (f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({percent:.1f}%), "
                   f"{rate:,.1f} {self.unit}/s, elapsed {format_duration(elapsed)}, ETA {eta}")
        self.logger.info(message + (f", {extra}" if extra else ""))
        self._last_time, self._last_done = now, self.done
        self.lines += 1
