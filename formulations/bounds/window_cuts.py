"""The window bound's rows between frames and requests (steps 3-5 of ``windows``).

3. **Segments longer than a frame's slack.** On a single-instance backend b, take the
   frames of one task whose single segment can run on b, with disjoint windows of length
   L_k, slack σ (the largest window length less the duration on b) and span S (first
   window start to last window end), and the request classes whose shortest duration on
   b is at least D > 2σ (W: their work on b inside S). Such a segment cannot lie inside
   the window of a frame kept on b (it would leave less than the frame's duration), so
   it covers no such window and meets one only at its two ends, using at most σ of it at
   each; the segments meeting S are those inside it (at most W / D) and one at each edge
   of S that a class's window crosses (c ≤ 2 edges). Hence W ≤ |S| − Σ_k L_k·on_b(k) +
   2σ (W / D + c), written (1 − 2σ/D) W + Σ_k L_k·on_b(k) ≤ |S| + 2σc. It sees that a
   34 ms prefill layer cannot use the 2.7 ms each SR frame leaves on the NPU. The frames
   taken are those meeting the windows of the segments at least D long (a frame moved off
   b seconds later frees no time for a prefill layer).
4. **Whole segments between kept frames.** The same frames (those meeting the windows of
   the classes at least D long on b; K of them), P the longest of their windows and of the
   distances between consecutive window starts, σ' = P − their shortest duration on b, and
   D > 2σ'. A counted segment (of a class whose window lies in S) runs between two frames
   kept on b that are consecutive among the kept ones, or before the first, or after the
   last. Kept frames k and k' with r frames between them leave at most (e_k' − d) −
   (a_k + d) ≤ (r + 2)P − 2d ≤ rP + 2σ' between them (a: window start, e: end, d: the
   duration); before the first or after the last kept frame at most rP + σ'; with none
   kept, |S| ≤ KP. Such a stretch holds at most ⌊(rP + 2σ')/D⌋ ≤ α r whole segments, α =
   max over 1 ≤ r ≤ K of ⌊(rP + 2σ')/D⌋ / r (r = 0 holds none as D > 2σ'), so Σ n_b ≤
   α Σ_k (1 − on_b(k)) (n_b: the class's segments on b). Where step 3 charges a 34 ms
   layer 1.7 SR frames (the slack counted fluidly), this charges 2.
5. **Frames sharing a window.** Two one-segment frames whose windows overlap are never
   both on a single-instance backend where their durations exceed the hull of their
   windows: on_b(i) + on_b(j) ≤ 1. And a request (with the jobs it waits for: one backend
   at a time) that works R in a window W which frames F all have as their window: if all
   of F are kept, each on one backend, every backend the request may use there (U) is busy
   at once for at least Σ_{b∈U} busy_b − (|U| − 1)|W| of W (busy_b ≥ the frames' time on
   b less (instances − 1)|W|), so R ≤ free, the most |W| less that leaves over the ways
   to place F; else R ≤ |W|. Hence R ≤ free + (|W| − free) Σ_{f∈F} (1 − keep_f). In
   scenario_c an SR frame (NPU only, 14 ms) and an OD frame (13.6 ms on the GPU, 7.6 on
   the NPU) share each 16.7 ms window: kept, they leave a request 5.7 ms of it, while
   fractional keeps and backend choices gave it the whole window for 0.6 of a frame
   (kill-aware-fast's groups: root LP 40 -> 46 frames a request).

Each holds for every schedule of the problem (with on_b, keep and n_b read off it).
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import pairwise, product


class FrameCuts:
    """Steps 3-5 for ``windows._GroupMilp``, which holds what they read: ``placed``
    (task, backend) -> (on_b, window start, end, duration) of one-segment frames; ``long``
    backend -> (shortest, interval, work); ``spans`` backend -> (shortest, lo, hi);
    ``counts`` backend -> (shortest, lo, hi, n_b); ``own``/``reach`` (owner, interval) ->
    work variables / backends; ``windows`` window -> (keep, durations) of its frames."""

    def add_long_segments(self) -> None:
        """Segments too long for the slack a frame leaves in its window (module docstring,
        3.): one constraint per task, single-instance backend and duration threshold, over
        the frames that meet the windows of the segments at least that long."""
        for b, threshold, frames in self._thresholds(_window_slack):
            slack = _window_slack(frames)
            lo, hi = frames[0][1], frames[-1][2]
            inside = set(self.inside(lo, hi))
            # (1 - 2 slack / D) W + Σ_k L_k on_b(k) <= |S| + 2 slack × edges crossed
            crossed = sum(any(d >= threshold and p_lo < x < p_hi
                              for d, p_lo, p_hi in self.spans[b]) for x in (lo, hi))
            row = self.solver.Constraint(-self.solver.infinity(), hi - lo + 2 * slack * crossed)
            for d, e, w in self.long[b]:
                if d >= threshold and e in inside:
                    row.SetCoefficient(w, 1 - 2 * slack / threshold)
            for on_b, f_lo, f_hi, _ in frames:
                row.SetCoefficient(on_b, f_hi - f_lo)

    def add_gap_counts(self) -> None:
        """Whole segments between kept frames (module docstring, 4.): at most α of them
        per frame not kept on b, over the frames that meet the segments' windows."""
        for b, threshold, frames in self._thresholds(_period_slack):
            period, slack = _period(frames), _period_slack(frames)
            lo, hi = frames[0][1], frames[-1][2]
            counted = [n for d, p_lo, p_hi, n in self.counts[b]
                       if d >= threshold and lo <= p_lo and p_hi <= hi]
            alpha = max((period * r + 2 * slack) // threshold / r
                        for r in range(1, len(frames) + 1))
            # Σ n_b <= α Σ_k (1 - on_b(k))
            row = self.solver.Constraint(-self.solver.infinity(), alpha * len(frames))
            for n in counted:
                row.SetCoefficient(n, 1)
            for on_b, _, _, _ in frames:
                row.SetCoefficient(on_b, alpha)

    def _thresholds(self, slack) -> list[tuple[int, int, list[tuple]]]:
        """(backend b, duration D, frames) for each task on a single-instance backend and
        each request class duration D on b: the task's frames that meet the windows of the
        request segments at least D long on b, where D > 2 × ``slack``(those frames)."""
        ts, made = self.problem.ts, []
        for (_, b), placed in sorted(self.placed.items(), key=lambda item: item[0]):
            every = _disjoint(placed)
            if ts.instances[b] != 1 or not every:
                continue
            for threshold in sorted({d for d, _, _ in self.long.get(b, ())}):
                spans = [(lo, hi) for d, lo, hi in self.spans[b] if d >= threshold]
                lo, hi = min(x for x, _ in spans), max(y for _, y in spans)
                frames = [f for f in every if f[1] < hi and f[2] > lo]
                if frames and threshold > 2 * slack(frames):
                    made.append((b, threshold, frames))
        return made

    def add_conflicts(self) -> None:
        """Two frame segments whose windows' hull is shorter than their durations on a
        single-instance backend are never both on it: on_b(i) + on_b(j) <= 1."""
        ts = self.problem.ts
        for b in range(len(ts.instances)):
            if ts.instances[b] != 1:
                continue
            tasks = sorted(t for t, c in self.placed if c == b)
            for n, t1 in enumerate(tasks):
                for t2 in tasks[n + 1:]:
                    self._conflict_pairs(self.placed[(t1, b)], self.placed[(t2, b)])

    def _conflict_pairs(self, first: list[tuple], second: list[tuple]) -> None:
        """The conflicts between two tasks' frames on one backend (sorted by window)."""
        second = sorted(second, key=lambda f: f[1])
        starts = [f[1] for f in second]
        longest = max(hi - lo for _, lo, hi, _ in second)
        for on_i, lo_i, hi_i, dur_i in first:
            for on_j, lo_j, hi_j, dur_j in second[bisect_left(starts, lo_i - longest):]:
                if lo_j >= hi_i:
                    break
                if hi_j > lo_i and dur_i + dur_j > max(hi_i, hi_j) - min(lo_i, lo_j):
                    row = self.solver.Constraint(-self.solver.infinity(), 1)
                    row.SetCoefficient(on_i, 1)
                    row.SetCoefficient(on_j, 1)

    def add_shared_windows(self) -> None:
        """A request shares a window with frames (module docstring, 5.): R <= free +
        (|W| - free) Σ_f (1 - keep_f), per window and path."""
        owners = {owner for owner, _ in self.own if owner[0] == "path"}
        for (lo, hi), frames in sorted(self.windows.items(), key=lambda item: item[0]):
            intervals = list(self.inside(lo, hi))
            for owner in sorted(owners):
                terms = [w for e in intervals for w in self.own.get((owner, e), ())]
                if not terms:
                    continue
                usable = set().union(*(self.reach[(owner, e)] for e in intervals
                                       if (owner, e) in self.reach))
                free = _free_time(self.problem.ts.instances, hi - lo, usable,
                                  [dur for _, dur in frames])
                if free >= hi - lo:
                    continue
                # R + (|W| - free) Σ_f keep_f <= free + (|W| - free) × frames
                row = self.solver.Constraint(-self.solver.infinity(),
                                             free + (hi - lo - free) * len(frames))
                for w in terms:
                    row.SetCoefficient(w, 1)
                for keep, _ in frames:
                    row.SetCoefficient(keep, hi - lo - free)


def _disjoint(placed: list[tuple]) -> list[tuple]:
    """Frames of one task whose windows do not overlap, in time order (all of them when
    the deadline is at most the period)."""
    kept: list[tuple] = []
    for f in sorted(placed, key=lambda f: (f[1], f[2])):
        if not kept or f[1] >= kept[-1][2]:
            kept.append(f)
    return kept


def _window_slack(frames: list[tuple]) -> int:
    """The largest window length less the duration (step 3's σ)."""
    return max(hi - lo - dur for _, lo, hi, dur in frames)


def _period(frames: list[tuple]) -> int:
    """The longest window or distance between consecutive window starts."""
    return max([hi - lo for _, lo, hi, _ in frames]
               + [g[1] - f[1] for f, g in pairwise(frames)])


def _period_slack(frames: list[tuple]) -> int:
    """The period less the shortest duration (step 4's σ')."""
    return _period(frames) - min(dur for _, _, _, dur in frames)


def _free_time(instances: tuple, length: int, usable: set[int],
               frames: list[dict[int, int]]) -> float:
    """The most time a request on the ``usable`` backends can work in a window of
    ``length`` that also holds every one of ``frames`` (durations per backend), each on one
    backend: at least Σ_b busy_b - (|usable| - 1) × length of it has every usable backend
    busy (busy_b: the time all of b's instances are), over every way to place the frames."""
    best = 0.0
    for placing in product(*(sorted(f.items()) for f in frames)):
        load = dict.fromkeys(range(len(instances)), 0)
        for b, dur in placing:
            load[b] += dur
        if any(load[b] > instances[b] * length for b in load):
            continue  # the frames do not fit side by side on b
        busy = sum(max(0, load[b] - (instances[b] - 1) * length) for b in usable)
        best = max(best, length - max(0, busy - (len(usable) - 1) * length))
    return best
