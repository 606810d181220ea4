"""What the construction did, for progress lines and the solve output."""

from __future__ import annotations

from dataclasses import dataclass

from rtgen_opt.model.schedule import Schedule


@dataclass
class ConstructionReport:
    """What the construction did, for progress lines and the solve output."""

    mapping: str = ""
    after_frames: float = 0.0  # weighted violations after step 1
    after_requests: float = 0.0  # after steps 2-3
    after_polish: float = 0.0
    plans: dict = None  # plan name -> requests placed that way
    construct_s: float = 0.0
    polish_windows: int = 0
    polish_improved: int = 0
    source: str = "construction"  # or "greedy", "floor": which schedule was returned
    constructed: Schedule | None = None  # the construction's own schedule (None: failed)


