"""Progress of a profile on stderr: a bar with ETA on a terminal, one line per point else."""

from __future__ import annotations

import sys
import time


class ProfileProgress:
    """Counts timed runs (warm-up included); the ETA assumes the remaining runs cost the same
    on average as the finished ones, so it settles once each kind of point has run."""

    def __init__(self, total_runs: int, enabled: bool = True):
        self.total, self.done, self.started = total_runs, 0, time.monotonic()
        self.enabled = enabled and total_runs > 0
        self._bar = self._task = None
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(),
                                 console=Console(stderr=True), transient=True)
            self._task = self._bar.add_task("profiling", total=total_runs)
            self._bar.start()

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)

    def point_done(self, text: str) -> None:
        """A measured point: logged as a line when there is no bar (logs, CI)."""
        if self.enabled and self._bar is None:
            elapsed = time.monotonic() - self.started
            eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
            print(f"[profile] {self.done}/{self.total} runs, ETA {eta:.0f} s: {text}",
                  file=sys.stderr, flush=True)
        elif self._bar is not None:
            self._bar.console.print(f"[profile] {text}", highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
