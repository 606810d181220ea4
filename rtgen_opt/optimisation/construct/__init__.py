"""Kill-aware construction: a feasible schedule for long horizons (the upper bound).

What makes a long horizon expensive is not backend capacity but non-preemption: a 34 ms
prefill layer on the NPU blocks it for two 60 FPS frame periods. The construction places
each piece of work where it drops the least frame weight, in four steps:

1. **Frame mapping with the whole task set in view.** Per periodic task, the backends on
   which its frames meet their deadline; every combination of them (a static mapping) is
   list-scheduled in deadline order, beside "each frame where it finishes first"; the
   mapping that drops the least weight is kept. A frame that misses on its mapped backend
   may fall back to another one.
2. **First-token work where it kills least, scored by repair.** Per required request in
   arrival order (its `after` predecessors first), each segment up to the first token
   is tried at its earliest start free of other requests and blocked time, at the ends
   of busy intervals shortly after, and in the first idle gap; a candidate is scored by
   taking out the frames whose windows meet its span and list-scheduling them again
   around it (they may change backend). The cheapest wins, then the earliest end (TTFT).
   Beside this per-segment plan, whole plans are tried — the same with the request's own
   segments kept on one backend (two overlapping requests then share the platform, one
   on the GPU while the other uses the NPU), its first-token segments back to back on
   one lane, and every segment in idle time (which finds "after the last frame" when the
   give-up time allows) — and the cheapest plan is kept, then the earliest first token.
3. **Decode into idle time**, never displacing a frame; where that would miss the last
   token's deadline (service-matched problems), the decode is placed like the first-token
   work, and as a last resort as early as possible.
4. **Polish**: short CP-SAT windows around the dropped frames, with the frames and the
   LLM segments inside free to move and everything else blocked, while the a-priori
   budget lasts; a window's answer is kept only when it drops less weight. (Measured: no
   gain on the 60 s instances of ``bench/bench_construct.py``, where the requests do not
   overlap; a frame or two where they do.)

Every step keeps the schedule feasible for the problem: required chains complete by their
token deadlines (latest ends computed backwards from the first- and last-token deadlines
are checked for every candidate), firm frames run inside [release, deadline] or not at
all, blocked time is never used. The work is deterministic (no wall-clock decisions) apart
from the polish, whose CP-SAT solves run on deterministic time with one worker.
"""

from rtgen_opt.optimisation.construct.board import ConstructionFailed
from rtgen_opt.optimisation.construct.driver import construct, construct_schedule, unserved
from rtgen_opt.optimisation.construct.report import ConstructionReport

__all__ = ["ConstructionFailed", "ConstructionReport", "construct", "construct_schedule",
           "unserved"]
