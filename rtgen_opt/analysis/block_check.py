"""The block bound's dual value, recomputed from its certificate by plain code.

The certificate lists blocks (start, type) and per type its frames, quantum, levels, the
prices λ of its touches on each touched backend and the damages it claims. Here: every
block is checked to be a block of the task set (a connected component of frame windows
with exactly the recorded frames), every damage is recomputed by brute force (a recorded
damage above the true one is a discrepancy), and the dual value

    Σ_blocks min over columns (damage − λ·column) + Σ served paths cheapest λ·touches

is recomputed with ``dual_check``'s paths and placements (docs/optimum.md,
*Certificates*). Only single-instance platforms carry block certificates.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from rtgen_opt.analysis.dual_check import (
    INF,
    CertificateInvalid,
    build_paths,
    cheapest,
)
from rtgen_opt.errors import InputError
from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet


def frame_blocks(ts: TaskSet) -> dict[int, tuple[int, list[int]]]:
    """start -> (end, frame jobs) of every connected component of frame windows."""
    frames = sorted((int(ts.job_release_us[j]), j) for j in range(ts.num_jobs)
                    if int(ts.job_deadline_us[j]) != NO_DEADLINE)
    blocks: dict[int, tuple[int, list[int]]] = {}
    start, end, members = None, None, []
    for release, job in frames:
        if start is not None and release >= end:
            blocks[start] = (end, members)
            start = None
        if start is None:
            start, end, members = release, release, []
        end = max(end, int(ts.job_deadline_us[job]))
        members.append(job)
    if start is not None:
        blocks[start] = (end, members)
    return blocks


# The brute force below grows as (backends + 1)^frames x frames! per block type and as
# columns^touched backends: bounded near what `solve --bound-out` writes (4 frames, 60,000
# LP rows), so that a certificate cannot ask for hours or gigabytes.
MAX_FRAMES = 4
MAX_LEVELS = 16  # prefix/suffix levels per block type, at most
MAX_CELLS = 240_000  # damages recomputed: the sum over types of columns^touched backends


def _check_sizes(tick: int, types: list[dict], touched: list[int], path: str) -> None:
    if not 1 <= tick <= 2**62:
        raise InputError(path, "blocks.tick_us", "a tick from 1 to 2**62 µs", tick)
    if len(set(touched)) != len(touched):
        raise InputError(path, "blocks.touched", "each backend once", len(touched))
    cells = 0
    for number, t in enumerate(types):
        length = t.get("length")
        if type(length) is not int or not 1 <= length <= 2**62 or len(t["frames"]) > MAX_FRAMES:
            raise InputError(path, f"blocks.types[{number}]", "a length from 1 to 2**62 µs "
                             f"and at most {MAX_FRAMES} frames")
        quantum = _least_quantum(length)  # the finest a type may say (checked after)
        cells += len(columns(length, quantum, math.ceil(length / quantum))) ** len(touched)
        if cells > MAX_CELLS:
            raise InputError(path, "blocks", f"at most {MAX_CELLS:,} damages to recompute "
                             "(block types x columns^touched backends)", f"{cells:,} or more")


def _least_quantum(length: int) -> int:
    """The finest quantum a block type may use: at most ``MAX_LEVELS`` levels (any quantum
    gives a valid bound; this only bounds the damages to recompute)."""
    return max(1, math.ceil(length / MAX_LEVELS))


def columns(length: int, quantum: int, levels: int) -> list[tuple[int, int, int, int]]:
    """(prefix level or -1 when covered, suffix level, free from, free until) on one
    backend: every prefix/suffix pair a schedule can leave in a block."""
    out = [(-1, levels, 0, 0)]
    for a in range(levels):
        for c in range(max(a, 1), levels + 1):
            out.append((a, c, a * quantum, min(length, c * quantum)))
    return out


def fits(frames, chosen, backend: int, lo: int, hi: int) -> bool:
    """Can ``chosen`` frames all run on one instance of ``backend`` inside [lo, hi)?"""
    for order in itertools.permutations(chosen):
        t = lo
        for i in order:
            release, due, durations, _ = frames[i]
            if durations[backend] == INELIGIBLE:
                return False
            t = max(t, release) + durations[backend]
            if t > min(due, hi):
                break
        else:
            return True
    return False


def damages(frames, touched: list[int], num_backends: int, cols) -> np.ndarray:
    """The least weight of frames dropped, for every combination of columns: every
    assignment of the frames to a backend or to the dropped, kept where every backend
    fits its frames in the room its column leaves."""
    n = len(frames)
    room = {b: [col[2:] for col in cols] if b in touched else [(0, 10**18)]
            for b in range(num_backends)}
    best = np.full([len(cols)] * len(touched), INF)
    for assignment in itertools.product(range(-1, num_backends), repeat=n):
        dropped = sum(frames[i][3] for i in range(n) if assignment[i] == -1)
        ok = np.ones(best.shape, dtype=bool)
        for b in range(num_backends):
            chosen = [i for i in range(n) if assignment[i] == b]
            fit = np.array([fits(frames, chosen, b, lo, hi) for lo, hi in room[b]])
            if b in touched:
                axis = touched.index(b)
                ok &= fit.reshape([-1 if k == axis else 1 for k in range(len(touched))])
            elif not fit[0]:
                ok[...] = False
        best[ok] = np.minimum(best[ok], dropped)
    return best


def touch_cost(blocks: list[tuple[int, int, dict]], b: int):
    """λ of the touches of a segment surely occupying [s_max, s_min + dur) on ``b``."""
    starts = np.array([s for s, _, _ in blocks], dtype=np.int64)
    ends = np.array([e for _, e, _ in blocks], dtype=np.int64)
    full = np.concatenate([[0.0], np.cumsum([t["full"][b] for _, _, t in blocks])])

    def cost(_b, cells, s_min, s_max, dur):
        u, v = s_max, s_min + dur
        sure = u < v
        first_inside = np.searchsorted(starts, u, "left")  # blocks starting at/after u
        covered = np.searchsorted(ends, v, "right")  # blocks ending at/before v
        value = np.where(sure & (covered > first_inside), full[np.maximum(covered,
                                                                          first_inside)]
                         - full[first_inside], 0.0)
        for k in range(len(u)):  # the prefix and suffix touches: plain per-start checks
            if not sure[k]:
                continue
            p = covered[k]  # the first block ending after v
            if p < len(blocks) and u[k] <= starts[p] < v[k]:
                t = blocks[p][2]
                level = min((v[k] - starts[p]) // t["quantum"], t["levels"] - 1)
                value[k] += t["prefix"][b][level] if level > 0 else 0.0
            s = first_inside[k] - 1  # the last block starting before u
            if s >= 0 and u[k] < ends[s] <= v[k]:
                t = blocks[s][2]
                level = math.ceil((u[k] - starts[s]) / t["quantum"])
                value[k] += t["suffix"][b][level] if level < t["levels"] else 0.0
        return value

    return cost


def block_dual(ts: TaskSet, data: dict, path: str) -> float:
    """The block bound's dual value at the certificate's λ (CertificateInvalid where a
    block or a damage is not what the task set gives)."""
    spec = data.get("blocks")
    try:
        tick, touched_names = int(spec["tick_us"]), list(spec["touched"])
        types, placed = [dict(t) for t in spec["types"]], [(int(s), int(t)) for s, t in spec["blocks"]]
        touched = [ts.backends.index(name) for name in touched_names]
        for t in types:
            t["frames"] = [(int(r), int(d), tuple(int(x) for x in dur), float(w))
                           for r, d, dur, w in t["frames"]]
            for key in ("full", "prefix", "suffix"):
                t[key] = {ts.backends.index(name): value for name, value in t[key].items()}
    except (TypeError, KeyError, ValueError, AttributeError):
        raise InputError(path, "blocks", "tick_us, touched backends, types and blocks as "
                         "written by solve --bound-out") from None
    _check_sizes(tick, types, touched, path)
    if any(k != 1 for k in ts.instances):
        raise CertificateInvalid("a block certificate needs one instance per backend")
    real = frame_blocks(ts)
    value, seen, blocks = 0.0, set(), []
    for number, t in enumerate(types):
        if type(t["quantum"]) is not int or t["quantum"] < _least_quantum(t["length"]) \
                or t["levels"] != math.ceil(t["length"] / t["quantum"]):
            raise CertificateInvalid(f"block type {number}: quantum or levels off")
        cols = columns(t["length"], t["quantum"], t["levels"])
        true = damages(t["frames"], touched, len(ts.backends), cols)
        claimed = np.array(t["damage"], dtype=float).reshape(true.shape)
        if (claimed > true + 1e-9).any():
            where = tuple(int(i) for i in np.argwhere(claimed > true + 1e-9)[0])
            raise CertificateInvalid(f"block type {number}: damage {claimed[where]:g} "
                                     f"claimed for column {where}, {true[where]:g} true")
        priced = np.zeros(true.shape)
        for axis, b in enumerate(touched):
            row = np.array([t["full"][b] if a == -1 else
                            (t["prefix"][b][a] if a > 0 else 0.0)
                            + (t["suffix"][b][c] if c < t["levels"] else 0.0)
                            for a, c, _, _ in cols])
            priced = priced + row.reshape([-1 if k == axis else 1 for k in range(len(touched))])
        t["side"] = float((true - priced).min())
    for start, number in placed:
        t = types[number]
        end, members = real.get(start, (None, []))
        frames = sorted((int(ts.job_release_us[j]) - start, int(ts.job_deadline_us[j]) - start,
                         tuple(int(x) for x in ts.seg_dur_us[ts.job_segments(j).start]),
                         ts.tasks[int(ts.job_task[j])].weight) for j in members
                        if len(ts.job_segments(j)) == 1)
        if start in seen or end != start + t["length"] or frames != sorted(t["frames"]) \
                or len(frames) != len(members):
            raise CertificateInvalid(f"the block at {start} µs is not a block of the "
                                     "task set with the frames of its type")
        seen.add(start)
        value += t["side"]
        blocks.append((start, end, t))
    blocks.sort(key=lambda x: x[0])
    _, served = build_paths(ts)
    costs = {b: touch_cost(blocks, b) for b in touched}
    zero = lambda b, cells, s_min, s_max, dur: np.zeros(len(cells))  # noqa: E731
    for p in served:
        v = cheapest(ts, p, tick, lambda b, *rest: costs.get(b, zero)(b, *rest))
        value += v if v < INF else 0.0
    return value
