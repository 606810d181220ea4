"""An example policy: FTF's order, but never start a frame where it would be dropped."""
from rtgen_opt.simulation.policies.classic import Ftf, Policy


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
        late = best is not None and now + run.dur_on[best][seg] > run.job_deadline[job]
        if late and run.ts.on_miss == "drop":
            return None  # it would be dropped at its deadline: leave the backend to others
        return best
