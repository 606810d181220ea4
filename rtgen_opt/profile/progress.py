"""Progress of a profile on stderr: a bar with ETA on a terminal, one line per point else.

Points differ in cost by orders of magnitude (a 1024-token prefill against one decode
token), so the ETA is not runs-left x average-run: each remaining point is estimated from
the measured points of the same model and stage (scaled by length for prefill and
encoders, whose work grows with it), falling back to the mean of all measured runs.
"""

from __future__ import annotations

import sys
import time


class ProfileProgress:
    """Counts timed runs (warm-up included) and shows the ETA the profiler estimates."""

    def __init__(self, total_runs: int, enabled: bool = True):
        self.total, self.done, self.started = total_runs, 0, time.monotonic()
        self.enabled = enabled and total_runs > 0
        self.finish_at: float | None = None  # monotonic time the estimate points to
        self._bar = self._task = None
        if self.enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("runs"),
                                 TimeElapsedColumn(), _eta_column(self),
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

    def set_eta(self, seconds: float | None) -> None:
        self.finish_at = None if seconds is None else time.monotonic() + seconds

    def eta_text(self) -> str:
        if self.finish_at is None:
            return "ETA estimating"
        left = max(0.0, self.finish_at - time.monotonic())
        return f"ETA {int(left // 60)}:{int(left % 60):02d}"

    def point_done(self, text: str) -> None:
        """A measured point: logged as a line when there is no bar (logs, CI)."""
        if self.enabled and self._bar is None:
            print(f"[profile] {self.done}/{self.total} runs, {self.eta_text()}: {text}",
                  file=sys.stderr, flush=True)
        elif self._bar is not None:
            self._bar.console.print(f"[profile] {text}", highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _eta_column(progress: ProfileProgress):
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(progress.eta_text(), style="progress.remaining")

    return EtaColumn()
