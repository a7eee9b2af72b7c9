"""Stopping a training job cleanly on a signal, so that a rerun resumes where it stopped.

SLURM sends SIGTERM at a job's time limit (and on ``scancel`` or preemption), and SIGKILL ``KillWait`` seconds later
(30 by default); ``--signal=TERM@120`` (profiles/slurm) sends it two minutes before the limit instead. SIGUSR1 is the
signal such early warnings conventionally use, so both are caught. While ``StopSignals`` is active a signal only records
its name: the training loop reads it at the end of the current step, writes a checkpoint and raises
``TrainingInterrupted``, and the job exits with a non-zero status, so Snakemake's ``retries`` (or SLURM's requeue)
starts it again and it resumes from that step.
"""

from __future__ import annotations

import signal

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class TrainingInterrupted(RuntimeError):
    """A stop signal ended training after a checkpoint; rerunning the job resumes from it."""


class StopSignals:
    """Context manager: SIGUSR1 and SIGTERM set ``received`` (the signal's name) instead of ending the process; the
    previous handlers are back on exit. Must be entered in the main thread (Python delivers signals there)."""

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        self._previous = {number: signal.signal(number, self._handle) for number in SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number: int, frame) -> None:
        self.received = signal.Signals(number).name
