"""The chain-block bound (``formulations/bounds/chain_blocks.py``) against independent
oracles: CP-SAT-proven optima on the random small scenarios of ``test_bounds.py`` (frames
with slack, two-instance backends, RAG chains, `after` forests with fan-out, overlapping
requests, fractional weights, TTFT caps, service-matched problems), with the costs the
bound chooses and with random ones; its chain program against a brute-force enumeration
of placements; and one request of scenario_c at OD 30 FPS, where the block bound proves
24 and every schedule found loses 32."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.bounds import lower_bound
from rtgen_opt.formulations.bounds.blocks import block_bound
from rtgen_opt.formulations.bounds.chain_blocks import (
    Costs,
    _blocks,
    chain_block_bound,
    chain_block_value,
    chain_cost,
    chain_setup,
)
from rtgen_opt.formulations.bounds.lagrangian import INF, _cells
from rtgen_opt.formulations.problem import Problem

from rtgen_opt.model.taskset import INELIGIBLE
from tests.test_bounds import (
    TICKS,
    after_scenarios,
    proven_optimum,
    shaped,
    slack_scenarios,
    tight_scenarios,
)

ANY = st.one_of(slack_scenarios(), tight_scenarios())
PROBLEMS = st.sampled_from(["plain", "matched", "capped"])
FEW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def bound_below_optimum(problem: Problem, tick: int) -> None:
    bound = chain_block_bound(problem, tick)
    assume(bound is not None)
    assert bound.value <= proven_optimum(problem) + 1e-6


@FEW
@given(ts=ANY, tick=TICKS)
def test_chain_block_bound_never_exceeds_the_proven_optimum(ts, tick):
    bound_below_optimum(Problem(ts), tick)


@FEW
@given(ts=after_scenarios(), tick=TICKS, kind=PROBLEMS, cap=st.integers(8, 30))
def test_chain_block_bound_with_after_forests_never_exceeds_the_optimum(ts, tick, kind, cap):
    bound_below_optimum(shaped(ts, kind, cap), tick)


@pytest.mark.slow
@MANY
@given(ts=ANY, tick=TICKS)
def test_chain_block_bound_never_exceeds_the_proven_optimum_many(ts, tick):
    bound_below_optimum(Problem(ts), tick)


@pytest.mark.slow
@MANY
@given(ts=after_scenarios(), tick=TICKS, kind=PROBLEMS, cap=st.integers(8, 30))
def test_chain_block_bound_with_after_forests_never_exceeds_the_optimum_many(ts, tick, kind,
                                                                            cap):
    bound_below_optimum(shaped(ts, kind, cap), tick)


def random_costs(setup, rng) -> list[Costs]:
    """Any real g per class: singles, fulls and own pairs drawn independently."""
    t, w = len(setup.base.touched), setup.width
    return [Costs(rng.normal(0, 1, (t, w)), rng.normal(0, 1, (t, w)), rng.normal(0, 2, t),
                  rng.normal(0, 1.5, (t, w, t, w))) for _ in setup.classes]


def random_costs_valid(problem: Problem, seed: int) -> None:
    setup = chain_setup(problem)
    assume(setup is not None)
    value = chain_block_value(problem, setup, random_costs(setup, np.random.default_rng(seed)))
    assert value <= proven_optimum(problem) + 1e-6


@FEW
@given(ts=ANY, seed=st.integers(0, 2**32 - 1))
def test_chain_block_bound_is_valid_for_any_costs(ts, seed):
    random_costs_valid(Problem(ts), seed)


@FEW
@given(ts=after_scenarios(), kind=PROBLEMS, cap=st.integers(8, 30),
       seed=st.integers(0, 2**32 - 1))
def test_chain_block_bound_with_after_forests_is_valid_for_any_costs(ts, kind, cap, seed):
    random_costs_valid(shaped(ts, kind, cap), seed)


@pytest.mark.slow
@MANY
@given(ts=st.one_of(ANY, after_scenarios()), seed=st.integers(0, 2**32 - 1))
def test_chain_block_bound_is_valid_for_any_costs_many(ts, seed):
    random_costs_valid(Problem(ts), seed)


# ------------------------------------------------------------------ the chain program


def touches(kept, u: int, v: int):
    """(block index, kind, level) of a sure interval [u, v), by the definition (blocks.py
    step 2), one block at a time."""
    if u >= v:
        return
    for index, (start, end, bt) in enumerate(kept):
        if u <= start and v >= end:
            yield index, "full", 0
        elif u <= start < v < end:
            level = min((v - start) // bt.quantum, bt.levels - 1)
            if level > 0:
                yield index, "prefix", level
        elif start < u < end <= v:
            level = -((start - u) // bt.quantum)
            if level < bt.levels:
                yield index, "suffix", level


def brute_chain_cost(problem: Problem, chain, d: int, setup, costs) -> float:
    """min over every grid placement (each segment's backend and cell, the order kept as
    in the program) of Σ_B g_B(the chain's own column in B)."""
    ts = problem.ts
    durations = ts.seg_dur_us[list(chain.segments)]
    fastest = np.where(durations == INELIGIBLE, np.iinfo(np.int64).max, durations).min(axis=1)
    latest_end = chain.latest_ends(fastest)
    touched = setup.base.touched
    options = []
    for i, row in enumerate(durations.tolist()):
        mine = []
        for b, dur in enumerate(row):
            latest = int(latest_end[i]) - dur
            if dur == INELIGIBLE or latest < chain.earliest[i]:
                continue
            cells, s_min, s_max = _cells(chain.earliest[i], latest, d)
            mine += [(b, dur, int(c), int(lo), int(hi)) for c, lo, hi in zip(cells, s_min, s_max)]
        options.append(mine)
    best = INF
    for placement in itertools.product(*options):
        ok = True
        for i in range(1, len(placement)):
            b0, dur0, _, lo0, _ = placement[i - 1]
            gap = 0 if chain.job_breaks[i] else int(ts.transfer_us[chain.task][b0][placement[i][0]])
            if placement[i][2] < (lo0 + dur0 + gap) // d:
                ok = False
                break
        if not ok:
            continue
        own: dict = {}
        for b, dur, _, lo, hi in placement:
            if b not in touched:
                continue
            for block, kind, level in touches(setup.kept, hi, lo + dur):
                own.setdefault(block, []).append((kind, touched.index(b), level))
        total = 0.0
        for block, items in own.items():
            g = costs[setup.cls[block]]
            pre = [(k, a) for kind, k, a in items if kind == "prefix"]
            suf = [(k, c) for kind, k, c in items if kind == "suffix"]
            total += sum(g.full[k] for kind, k, _ in items if kind == "full")
            if pre and suf and pre[0][1] <= suf[0][1]:
                total += g.pair[pre[0][0], pre[0][1], suf[0][0], suf[0][1]]
            else:
                total += sum(g.pre[k, a] for k, a in pre) + sum(g.suf[k, c] for k, c in suf)
        best = min(best, total)
    return best


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=slack_scenarios(), seed=st.integers(0, 2**32 - 1), d=st.sampled_from([2500, 5000]))
def test_chain_program_is_at_most_the_brute_force_minimum(ts, seed, d):
    """Validity needs the program never above the cost of the true placement (it may go
    below only where a cell leaves a block ambiguous); here it is checked against every
    placement, with random costs, where the program's pair state matters."""
    problem = Problem(ts)
    setup = chain_setup(problem)
    assume(setup is not None)
    costs = random_costs(setup, np.random.default_rng(seed))
    blocks = _blocks(setup, costs)
    chain = setup.base.served[0]
    assume(len(chain.segments) <= 3)
    program = chain_cost(problem, chain, d, blocks, setup.base.touched, setup.width)
    brute = brute_chain_cost(problem, chain, d, setup, costs)
    assert program <= brute + 1e-9
    assert program >= brute - 1e-9  # and here, equal


# ------------------------------------------------------------------ one request


def test_one_request_among_30_fps_detection_pays_what_it_costs_alone():
    """One request of scenario_c at OD 30 FPS: its 34 ms NPU layers straddle 33.3 ms
    blocks; the block bound's per-touch prices prove 24 (test_bounds.py), every schedule
    found loses 32. Alone in every block, the request pays each block's exact damage."""
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset

    scenario = load_scenario("scenario_c", ["od.fps=30", "rag.arrivals={times: [0s]}",
                                            "drain=2.6s"])
    problem = Problem(build_taskset(scenario, Fraction(1, 100)))
    old = block_bound(problem).value
    bound = chain_block_bound(problem)
    assert old == pytest.approx(24)
    assert bound.single == bound.blocks
    assert 24 + 1 <= bound.value <= 32 + 1e-6
    assert lower_bound(problem).value == pytest.approx(round(bound.value))


def test_solve_reports_it_without_a_certificate_and_writes_the_block_bounds(tmp_path,
                                                                           capsys):
    """Where the chain-block bound is the best, `solve` names it "no certificate",
    --bound-out writes the block bound's certificate (which verify-bound accepts) and says
    on stderr what it proves."""
    import json

    from tests.conftest import run_cli

    cert = tmp_path / "cert.json"
    code, out, err = run_cli(["solve", "scenario_c", "--horizon", "10ms", "--set", "od.fps=30",
                              "--set", "rag.arrivals={times: [0s]}", "--set", "drain=2.6s",
                              "--time-limit", "20s", "--workers", "1", "--bound-out",
                              str(cert), "-f", "json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["violations_lower_bound"] == 32 and data["violations"] == 32
    assert "chain-block bound" in data["lower_bound_method"]
    assert "no certificate" in data["lower_bound_method"]
    assert "certifies 24" in err
    written = json.loads(cert.read_text())
    assert written["kind"] == "blocks" and written["violations_lower_bound"] == 24
    assert run_cli(["verify-bound", str(cert)], capsys)[0] == 0


# ------------------------------------------------------------------ the block side


def set_partitions(items: list):
    if not items:
        yield []
        return
    head, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[head]] + partition
        for i in range(len(partition)):
            yield partition[:i] + [[head] + partition[i]] + partition[i + 1:]


def own_cost(part: list, g: Costs) -> float | None:
    """g of a part, or None where no chain can hold it (two prefixes, two suffixes, a full
    beside anything, a prefix after the suffix)."""
    pres = [(k, a) for kind, k, a in part if kind == "prefix"]
    sufs = [(k, c) for kind, k, c in part if kind == "suffix"]
    fulls = [k for kind, k, _ in part if kind == "full"]
    if len(pres) > 1 or len(sufs) > 1 or (fulls and len(part) > 1):
        return None
    if fulls:
        return float(g.full[fulls[0]])
    if pres and sufs:
        (k, a), (k2, c) = pres[0], sufs[0]
        return float(g.pair[k, a, k2, c]) if a <= c else None
    return float(g.pre[pres[0]] if pres else g.suf[sufs[0]])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=slack_scenarios(), seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4))
def test_block_side_is_the_minimum_over_every_partition_into_k_chains(ts, seed, k):
    from dataclasses import replace

    from rtgen_opt.formulations.bounds.blocks import _options, damage_table
    from rtgen_opt.formulations.bounds.chain_blocks import block_side

    setup = chain_setup(Problem(ts))
    assume(setup is not None)
    base = setup.base
    bt = replace(base.types[0], divisions=4)  # few levels: every partition enumerated
    base = replace(base, types=[bt], tables={bt: damage_table(bt, base.touched,
                                                              len(ts.backends))})
    g = random_costs(setup, np.random.default_rng(seed))[0]
    options = _options(bt)
    want = INF
    for column in itertools.product(range(len(options)), repeat=len(base.touched)):
        items = []
        for axis, o in enumerate(column):
            a, c, _, _ = options[o]
            if a == -1:
                items.append(("full", axis, 0))
                continue
            if a > 0:
                items.append(("prefix", axis, a))
            if c < bt.levels:
                items.append(("suffix", axis, c))
        for partition in set_partitions(items):
            costs = [own_cost(part, g) for part in partition]
            if len(partition) <= k and None not in costs:
                want = min(want, float(base.tables[bt][column]) - sum(costs))
    assert block_side(base, bt, g, k) == pytest.approx(want)


def test_two_requests_released_together_share_every_block_of_their_windows(tmp_path):
    """Each block's K counts the chains whose window meets it; blocks of two requests'
    common window may hold touches of both (the block side keeps what they save
    together), the others of at most one."""
    from rtgen_opt.formulations.cpsat import CpSatModel
    from rtgen_opt.formulations.result import SolveStatus

    from tests.tiny import taskset

    rows = ["f1,frame,a,,1,4", "f2,frame,a,,1,4", "llm,prefill,a,8,1,13",
            "llm,prefill,a,64,1,13", "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks = [{"name": "f1", "model": "f1", "period": "10ms"},
             {"name": "f2", "model": "f2", "period": "10ms"}] + [
        {"name": f"r{i}", "model": "llm", "input_tokens": 8, "output_tokens": 1,
         "arrivals": {"times": [f"{at}ms"]}} for i, at in enumerate((0, 0, 50))]
    problem = Problem(taskset(tmp_path, rows, tasks, "60ms", platform={"a": 1}, drain="40ms"))
    setup = chain_setup(problem)
    k = np.array([setup.classes[z][1] for z in setup.cls])
    starts = np.array([s for s, _, _ in setup.kept])
    assert (k[starts < 40_000] == 2).all() and (k[starts >= 40_000] == 1).all()
    result = CpSatModel(problem).solve(60, workers=1, stages=("violations",))
    assert result.status == SolveStatus.OPTIMAL
    assert chain_block_bound(problem).value <= result.violations + 1e-6
