"""An example policy: FTF's order, but a frame is never started where it cannot finish."""
from rtgen_opt.policies import Ftf, Policy


class FtfNoHopeless(Policy):
    name, dynamic = "ftf-no-hopeless", True
    priority = Ftf.priority  # first-token work first, then earliest deadline

    def placement(self, run):  # one per run: this policy places work itself
        return NoHopelessPlacement(run)


class NoHopelessPlacement:
    def __init__(self, run):
        self.run = run

    def place(self, now, job, seg):  # the fastest idle backend, or wait (None)
        run = self.run
        idle = [b for b, n in enumerate(run.idle_count) if n and run.dur_on[b][seg] >= 0]
        best = min(idle, key=lambda b: run.dur_on[b][seg], default=None)
        if best is not None and now + run.dur_on[best][seg] > run.job_deadline[job]:
            return None  # it would miss its deadline: leave the backend to other work
        return best
