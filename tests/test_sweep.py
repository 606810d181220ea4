"""`rtgen-opt sweep`: the sweep file, the engines, the cache, resumption, the report."""

from __future__ import annotations

import copy
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from rtgen_opt.sweep.compute import compute, flatten
from rtgen_opt.sweep.engines import ENGINES, run_local
from rtgen_opt.sweep.run import (
    ResultCache,
    code_fingerprint,
    expand,
    plan,
    run_key,
    run_sweep,
)
from rtgen_opt.sweep.spec import Command, load_sweep
from tests.conftest import BASE_SCENARIO, run_cli
from tests.test_sweep_report import check_plotly_page

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny(tmp_path) -> Path:
    """The shared tiny scenario (60 FPS detector, a RAG + LLM request every 50 ms)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(BASE_SCENARIO))
    return path


def write_sweep(tmp_path: Path, **fields) -> str:
    data = {"name": "small", "scenario": "tiny.yaml", "horizon": "100ms",
            "grid": {"llm.input_tokens": [32, 64], "od.fps": [30, 60]},
            "run": {"simulate": {"policies": ["fcfs-dyn", "ftf"]}}}
    data.update(fields)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def sweep_cli(args: list[str], capsys) -> tuple[int, dict, str]:
    code, out, err = run_cli(["sweep", *args, "--format", "json"], capsys)
    return code, (json.loads(out) if out.strip() else {}), err


def table(path) -> pd.DataFrame:
    """A results table without the wall-clock columns (the only ones that may differ)."""
    frame = pd.read_csv(path) if str(path).endswith(".csv") else pd.read_parquet(path)
    frame = frame.astype({c: float for c in frame.columns if frame[c].isna().all()})
    return frame[[c for c in frame.columns if not c.endswith("wall_s")]]


# ----------------------------------------------------------------------------- the file


def test_grid_is_the_cartesian_product_then_the_zipped_axes(tiny, tmp_path):
    path = write_sweep(tmp_path, grid={"llm.input_tokens": [32, 64, 128], "od.fps": [30, 60]},
                       zip=[{"llm.output_tokens": [2, 4], "llm.ttft": ["1s", "2s"]}])
    spec = load_sweep(path)
    points = expand(spec)
    want = [{"llm.input_tokens": t, "od.fps": f, "llm.output_tokens": o, "llm.ttft": tt}
            for t, f, (o, tt) in itertools.product([32, 64, 128], [30, 60],
                                                   [(2, "1s"), (4, "2s")])]
    assert [dict(combo) for _, _, _, combo in points] == want
    assert [index for index, *_ in points] == list(range(12)) and spec.num_points == 12
    runs = plan(spec)  # every point's scenario carries its overrides
    ts = build_taskset(load_scenario(runs[7].scenario_path, runs[7].overrides))
    llm = next(t for t in ts.tasks if t.name == "llm")
    assert llm.output_tokens == want[7]["llm.output_tokens"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=3),
       st.lists(st.integers(1, 3), min_size=0, max_size=2), st.integers(1, 3))
def test_points_are_every_combination_once(grid_sizes, zip_sizes, num_scenarios):
    with tempfile.TemporaryDirectory() as folder:
        _check_points(Path(folder), grid_sizes, zip_sizes, num_scenarios)


def _check_points(tmp: Path, grid_sizes, zip_sizes, num_scenarios) -> None:
    for k in range(num_scenarios):
        (tmp / f"s{k}.yaml").write_text(yaml.safe_dump(BASE_SCENARIO))
    grid = {f"axis{a}": list(range(n)) for a, n in enumerate(grid_sizes)}
    zips = [{f"zip{z}a": list(range(n)), f"zip{z}b": [f"v{v}" for v in range(n)]}
            for z, n in enumerate(zip_sizes)]
    data = {"scenarios": [f"s{k}.yaml" for k in range(num_scenarios)],
            "run": {"simulate": None}, **({"grid": grid} if grid else {}),
            **({"zip": zips} if zips else {})}
    (tmp / "p.yaml").write_text(yaml.safe_dump(data))
    points = expand(load_sweep(str(tmp / "p.yaml")))
    size = num_scenarios
    for n in grid_sizes + zip_sizes:
        size *= n
    combos = {(scenario, tuple(combo)) for _, scenario, _, combo in points}
    assert len(points) == len(combos) == size
    for _, _, _, combo in points:  # zipped keys move together
        values = dict(combo)
        for z in range(len(zip_sizes)):
            assert values[f"zip{z}b"] == f"v{values[f'zip{z}a']}"


_KEYS = st.text("abcdef_", min_size=1, max_size=4)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                     st.floats(allow_nan=False, allow_infinity=False))
_NESTED = st.recursive(_SCALARS, lambda inner: st.dictionaries(_KEYS, inner, min_size=1),
                       max_leaves=12)


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(_KEYS, _NESTED))
def test_flatten_keeps_every_leaf_under_its_dotted_path(data):
    flat = flatten(data)
    rebuilt: dict = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = rebuilt
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    assert rebuilt == data


def test_flatten_writes_lists_as_json_and_drops_non_finite_numbers():
    flat = flatten({"a": [1, {"b": 2}], "c": float("nan"), "d": {"e": float("inf")}})
    assert flat == {"a": '[1, {"b": 2}]', "c": None, "d.e": None}


def test_an_empty_mapping_still_has_its_column():
    """`check -f csv` without jitter keeps `assumptions.jitter_ms` (empty)."""
    assert flatten({"a": {"jitter_ms": {}, "x": 1}}) == {"a.jitter_ms": None, "a.x": 1}


BAD_FILES = [  # (change to the sweep file, the field the one-line message must name)
    ({"grdi": {"x": [1]}}, "grdi"),
    ({"run": None}, "run"),
    ({"run": {"simulat": None}}, "run.simulat"),
    ({"grid": {"llm.input_tokens": 32}}, "grid.llm.input_tokens"),
    ({"grid": {"llm.input_tokens": []}}, "grid.llm.input_tokens"),
    ({"grid": {"llm.input_tokens": [32, 32]}}, "grid.llm.input_tokens"),
    ({"zip": [{"llm.input_tokens": [32, 64], "od.fps": [30]}]}, "zip[0]"),
    ({"zip": [{"llm.input_tokens": [32, 32], "od.fps": [30, 30]}]}, "zip[0]"),
    ({"run": {"simulate": {"policies": ["ftf", "lifo"]}}}, "run.simulate.policies"),
    ({"run": {"simulate": {"polices": "all"}}}, "run.simulate.polices"),
    ({"run": {"simulate": {"policies": ["nofile.py:Mine"]}}}, "run.simulate.policies"),
    ({"run": {"check": {"time_limit": "10"}}}, "run.check.time_limit"),
    ({"run": {"check": {"max_fps": "llm"}}}, "run.check.max_fps"),
    ({"run": {"solve": {"workers": -1}}}, "run.solve.workers"),
    ({"run": {"gap": {"time_limit": "2 parsecs"}}}, "run.gap.time_limit"),
    ({"scenario": "no_such_scenario"}, "scenario"),
    ({"scenarios": ["tiny.yaml"]}, "scenario"),
    ({"horizon": "-1s"}, "horizon"),
    ({"grid": {"horizon": ["1s", "2s"]}}, "horizon"),
    ({"set": {"od.fps": 30}}, "od.fps"),
    ({"grid": {"llm.input_tokens": [32, 999999]}}, "point 1"),
    ({"grid": {"nosuchtask.fps": [30]}}, "point 0"),
    ({"horizon": None, "grid": {"horizon": ["100ms", "100000s"]}}, "point 1"),  # memory
    ({"plots": 3}, "plots"),
    ({"name": "../up"}, "name"),
]


@pytest.mark.parametrize("change, field", BAD_FILES, ids=[f for _, f in BAD_FILES])
def test_bad_sweep_file_exits_2_with_one_line_naming_the_field(tiny, tmp_path, capsys,
                                                               change, field):
    path = write_sweep(tmp_path, **change)
    code, out, err = run_cli(["sweep", path, "--cache", str(tmp_path / "c"), "--out",
                              str(tmp_path / "t.csv")], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtgen-opt: error: ") and "Traceback" not in err
    assert f"{path}: {field}" in lines[0]
    assert not (tmp_path / "t.csv").exists() and not list((tmp_path / "c").rglob("*.json"))


def test_a_scenario_without_horizon_needs_one_from_the_sweep(tmp_path, capsys):
    data = copy.deepcopy(BASE_SCENARIO)
    del data["horizon"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(data))
    path = write_sweep(tmp_path, horizon=None)
    code, _, err = run_cli(["sweep", path, "--no-cache", "--dry-run"], capsys)
    assert code == 2 and f"{path}: horizon: expected a horizon for tiny.yaml" in err
    code, data, _ = sweep_cli([write_sweep(tmp_path, horizon=None,
                                           grid={"horizon": ["50ms", "100ms"]}),
                               "--no-cache", "--dry-run"], capsys)
    assert code == 0 and data["points"] == 2


@pytest.mark.parametrize("args, option", [
    (["--engine", "spark"], "--engine"), (["--out", "t.xlsx"], "--out"),
    (["--workers", "-2"], "--workers"), (["--engine", "local", "--address", "auto"], "--address"),
])
def test_bad_options_exit_2(tiny, tmp_path, capsys, args, option):
    code, _, err = run_cli(["sweep", write_sweep(tmp_path), "--no-cache", *args], capsys)
    assert code == 2 and err.startswith(f"rtgen-opt: error: {option}")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("module, args, extra", [
    ("ray", ["--engine", "ray"], "rtgen-opt[ray]"),
    ("pyarrow", ["--out", "t.parquet"], "rtgen-opt[sweep]"),
])
def test_a_missing_extra_exits_2_naming_it(tiny, tmp_path, capsys, monkeypatch, module, args,
                                           extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails
    code, out, err = run_cli(["sweep", write_sweep(tmp_path), "--no-cache", *args], capsys)
    assert code == 2 and err.count("\n") == 1 and extra in err and not out


# ----------------------------------------------------------------------------- running


@pytest.mark.usefixtures("without_plotly")  # the SVG: its rects counted below
def test_one_and_two_local_workers_give_the_same_table_as_direct_calls(tiny, tmp_path, capsys):
    path = write_sweep(tmp_path)
    tables = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.csv"
        code, data, err = sweep_cli([path, "--no-cache", "--workers", str(workers), "--out",
                                     str(out)], capsys)
        assert code == 0, err
        assert data["computed"] == data["runs"] == 4 and data["failed"] == 0
        assert "[sweep] small: 4/4 runs" in err
        tables.append(table(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    # two axes: a 2 x 2 heatmap per policy for each of simulate's 4 headline metrics
    page = (tmp_path / "w1.html").read_text()
    assert page.count("<rect") == 4 * 2 * 4 and page.count("<svg") == 2 * 4
    frame = tables[0]
    assert list(frame.columns[:6]) == ["point", "scenario", "llm.input_tokens", "od.fps",
                                       "command", "policy"]
    # The oracle: the library called directly, point by point.
    expected = []
    for tokens, fps in itertools.product([32, 64], [30, 60]):
        ts = build_taskset(load_scenario(str(tiny), ["horizon=100ms",
                                                     f"llm.input_tokens={tokens}",
                                                     f"od.fps={fps}"]))
        for policy in ("fcfs-dyn", "ftf"):
            metrics = flatten(evaluate(ts, simulate(ts, policy).schedule))
            expected.append((tokens, fps, policy, metrics))
    assert len(frame) == len(expected)
    for (_, row), (tokens, fps, policy, metrics) in zip(frame.iterrows(), expected,
                                                        strict=True):
        assert (row["llm.input_tokens"], row["od.fps"], row["policy"]) == (tokens, fps, policy)
        for column in ("violation_rate", "tasks.od.released", "llm.llm.ttft_ms.mean",
                       "utilization.npu"):
            assert row[column] == pytest.approx(metrics[column], nan_ok=True)


def test_ray_engine_gives_the_same_table_as_the_local_one(tiny, tmp_path, capsys):
    pytest.importorskip("ray")
    path = write_sweep(tmp_path)
    code, _, err = sweep_cli([path, "--no-cache", "--workers", "1", "--out",
                              str(tmp_path / "local.csv")], capsys)
    assert code == 0, err
    code, data, err = sweep_cli([path, "--no-cache", "--engine", "ray", "--workers", "2",
                                 "--out", str(tmp_path / "ray.parquet")], capsys)
    assert code == 0, err
    assert data["computed"] == 4
    pd.testing.assert_frame_equal(table(tmp_path / "local.csv"), table(tmp_path / "ray.parquet"),
                                  check_dtype=False)


def test_resume_after_an_interruption_computes_only_the_rest(tiny, tmp_path, capsys):
    path = write_sweep(tmp_path)
    cache = str(tmp_path / "cache")
    out = str(tmp_path / "t.csv")
    code, data, err = sweep_cli([path, "--cache", cache, "--workers", "2", "--out", out,
                                 "--stop-after", "3"], capsys)
    assert code == 130 and data["interrupted"] and "interrupted" in err
    assert data["computed"] == 3 and data["missing"] == 1
    assert table(out)["point"].nunique() == 3  # the finished points are kept
    code, data, err = sweep_cli([path, "--cache", cache, "--workers", "2", "--out", out],
                                capsys)
    assert code == 0 and (data["cached"], data["computed"]) == (3, 1)
    code, data, _ = sweep_cli([path, "--no-cache", "--workers", "1", "--out",
                               str(tmp_path / "whole.csv")], capsys)
    assert code == 0 and data["computed"] == 4
    pd.testing.assert_frame_equal(table(out), table(tmp_path / "whole.csv"))
    code, data, _ = sweep_cli([path, "--cache", cache, "--out", out], capsys)
    assert (data["cached"], data["computed"]) == (4, 0)


def test_a_failing_run_is_recorded_not_cached_and_retried(tiny, tmp_path, monkeypatch):
    """The sweep's bookkeeping, with an engine whose run 1 fails."""
    spec = load_sweep(write_sweep(tmp_path))
    runs = plan(spec)

    def engine(runs, ids, workers, address, on_result):
        for i, run in zip(ids, runs, strict=True):
            on_result(i, {"rows": None, "error": "boom"} if run.point == 1 else compute(run))

    monkeypatch.setitem(ENGINES, "local", engine)
    cache = ResultCache(tmp_path / "cache")
    outcome = run_sweep(spec, runs, cache=cache)
    assert (outcome.computed, outcome.failed, outcome.missing) == (3, 1, 0)
    assert [r["error"] for r in outcome.rows] == [None, None, "boom", "boom", None, None, None,
                                                  None]  # two policies per point
    assert [r["policy"] for r in outcome.rows if r["error"]] == ["fcfs-dyn", "ftf"]
    again = run_sweep(spec, runs, cache=cache)
    assert (again.cached, again.computed, again.failed) == (3, 0, 1)


FRAGILE = """
from rtgen_opt.simulation.policies.classic import FcfsDyn


class Fragile(FcfsDyn):
    name = "fragile"

    def priority(self, run, job, seg):
        if len(run.release) > {limit}:
            raise RuntimeError("more jobs than I can take")
        return super().priority(run, job, seg)
"""


def test_a_failing_point_is_recorded_and_the_others_complete(tiny, tmp_path, capsys):
    # A user's policy that raises on the longer horizon: that run fails when it runs (not
    # when the file is read); the other commands and points complete.
    jobs = [build_taskset(load_scenario(str(tiny), [f"horizon={h}"])).num_jobs
            for h in ("20ms", "100ms")]
    (tmp_path / "fragile.py").write_text(FRAGILE.replace("{limit}", str(sum(jobs) // 2)))
    path = write_sweep(tmp_path, horizon=None, grid={"horizon": ["20ms", "100ms"]},
                       run={"simulate": {"policies": ["ftf", "fragile.py:Fragile"]},
                            "check": {"policy": "edf-dyn"}})
    cache = tmp_path / "cache"
    code, data, err = sweep_cli([path, "--cache", str(cache), "--workers", "2", "--out",
                                 str(tmp_path / "t.csv")], capsys)
    assert code == 1, err
    assert (data["runs"], data["computed"], data["failed"]) == (4, 3, 1)
    frame = pd.read_csv(tmp_path / "t.csv")
    failed = frame[frame["error"].notna()]
    assert set(failed["horizon"]) == {"100ms"} and set(failed["command"]) == {"simulate"}
    assert list(failed["policy"]) == ["ftf", "fragile.py:Fragile"]  # the run's policies
    assert failed["error"].str.contains("more jobs than I can take").all()
    ok = frame[frame["error"].isna()]
    assert len(ok) == 2 + 2 and set(ok[ok["command"] == "simulate"]["horizon"]) == {"20ms"}
    assert "rtgen-opt: sweep: point 1 simulate: " in err
    # failures are not cached: a rerun tries the failed run again, and only it
    code, data, _ = sweep_cli([path, "--cache", str(cache), "--out", str(tmp_path / "t.csv")],
                              capsys)
    assert (data["cached"], data["computed"], data["failed"]) == (3, 0, 1)
    # the policy's code is part of the key: fixed, the failed run and the run that
    # succeeded with the old code are computed again, the check is still cached
    (tmp_path / "fragile.py").write_text(FRAGILE.replace("{limit}", "10**9"))
    code, data, _ = sweep_cli([path, "--cache", str(cache), "--out", str(tmp_path / "t.csv")],
                              capsys)
    assert code == 0 and (data["cached"], data["computed"], data["failed"]) == (2, 2, 0)


def _exit_on_two(item: int) -> dict:
    """Work for the pool that kills its worker process on item 2."""
    if item == 2:
        os._exit(1)
    return {"rows": [{"item": item}], "error": None}


def test_a_dying_worker_fails_what_it_held_and_a_new_pool_takes_the_rest():
    results = {}
    run_local(list(range(5)), list(range(5)), 1, None,
              lambda i, result: results.setdefault(i, result), work=_exit_on_two)
    # one worker, two runs queued: 2 kills it, and 3 with it if 3 was queued by then;
    # the rest goes to a new pool
    assert sorted(results) == list(range(5))
    assert [results[i]["error"] is None for i in (0, 1, 2, 4)] == [True, True, False, True]
    assert "worker process died" in results[2]["error"]
    assert results[3]["error"] is None or "worker process died" in results[3]["error"]
    assert results[4]["rows"] == [{"item": 4}]


@pytest.mark.usefixtures("without_plotly")  # the SVG: its cell colours checked below
def test_check_verdicts_and_the_report(tiny, tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"od.fps": [30, 240]},
                       run={"check": {"policies": ["ftf", "optimal"], "time_limit": "5s"},
                            "solve": {"time_limit": "5s"}})
    code, data, err = sweep_cli([path, "--no-cache", "--out", str(tmp_path / "v.csv")], capsys)
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "v.csv")
    solved = frame[frame["command"] == "solve"].set_index("od.fps")
    frame = frame[frame["command"] == "check"]
    verdicts = {(r["od.fps"], r["policy"]): r["verdict"] for _, r in frame.iterrows()}
    # yolov3 needs more than the 4.2 ms period of 240 FPS on its fastest backend: no.
    assert verdicts[240, "optimal"] == "no" and verdicts[240, "ftf"] == "no"
    assert verdicts[30, "optimal"] == "yes"
    # the same question asked of solve: no violation at 30 FPS, at least one at 240
    assert solved.loc[30, "violations"] == 0 and solved.loc[240, "violations"] >= 1
    assert solved.loc[30, "replay_ok"]
    page = (tmp_path / "v.html").read_text()
    parser = _Tags()
    parser.feed(page)
    assert parser.count["svg"] >= 1 and parser.closed
    for colour in ("#59a14f", "#e15759"):  # the yes and no cells
        assert f'fill="{colour}"' in page


def test_max_fps_brackets_the_rate_per_point(tiny, tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"llm.input_tokens": [32, 128]},
                       run={"check": {"policy": "ftf", "max_fps": "od", "time_limit": "20s"}})
    code, data, err = sweep_cli([path, "--no-cache", "--out", str(tmp_path / "f.csv")], capsys)
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "f.csv")
    assert list(frame["policy"]) == ["ftf", "ftf"] and (frame["task"] == "od").all()
    for _, row in frame.iterrows():
        assert row["max_fps_proven"] > 0
        assert pd.isna(row["min_fps_refuted"]) or row["max_fps_proven"] < row["min_fps_refuted"]
        assert json.loads(row["tried"])  # the probes, as JSON text


@pytest.mark.parametrize("plotly", [True, False])
def test_report_plots_each_metric_against_the_axis(tiny, tmp_path, capsys, request, plotly):
    if not plotly:
        request.getfixturevalue("without_plotly")
    path = write_sweep(tmp_path, grid={"llm.input_tokens": [32, 64, 128]},
                       plots=["violation_rate", "llm.*.ttft_ms.mean"])
    code, data, err = sweep_cli([path, "--no-cache", "--out", str(tmp_path / "r.csv"),
                                 "--report", str(tmp_path / "r.html")], capsys)
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert "violation_rate (%)" in page and "llm.llm.ttft_ms.mean" in page
    if plotly:  # 2 metrics, a line per policy in each
        figures = check_plotly_page(page, 2)
        assert [len(traces) for traces, _ in figures.values()] == [2, 2]
        return
    parser = _Tags()
    parser.feed(page)
    assert parser.count["svg"] == 2 and parser.count["polyline"] == 4  # 2 metrics x 2 policies


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.count: dict[str, int] = {}
        self.open: list[str] = []
        self.closed = True

    def handle_starttag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        if tag not in ("meta", "circle", "rect", "line", "polyline", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("circle", "rect", "line", "polyline"):
            return
        if not self.open or self.open.pop() != tag:
            self.closed = False


def test_dry_run_counts_points_and_runs_nothing(tiny, tmp_path, capsys):
    path = write_sweep(tmp_path, run={"simulate": None, "check": {"time_limit": "3s"}})
    cache = tmp_path / "cache"
    code, data, _ = sweep_cli([path, "--cache", str(cache), "--dry-run"], capsys)
    assert code == 0
    assert (data["points"], data["runs"], data["to_compute"]) == (4, 8, 8)
    assert data["simulations"] == 4 * len(POLICIES)
    assert data["solver_budget_s"] == pytest.approx(4 * 3)
    assert data["segments"] > 0 and not list(cache.rglob("*.json"))
    assert not (tmp_path / "small.csv").exists()


# ----------------------------------------------------------------------------- cache key


def test_run_key_follows_content_not_names(tiny, tmp_path):
    copy_path = tmp_path / "elsewhere.yaml"
    copy_path.write_text(tiny.read_text())
    sim = Command("simulate", {"policies": ["ftf"]})
    fp = code_fingerprint()
    key = run_key(load_scenario(str(tiny)), sim, fp)
    assert run_key(load_scenario(str(copy_path)), sim, fp) == key
    assert run_key(load_scenario(str(tiny), ["llm.input_tokens=65"]), sim, fp) != key
    assert run_key(load_scenario(str(tiny)), Command("simulate", {"policies": ["edf-dyn"]}),
                   fp) != key
    assert run_key(load_scenario(str(tiny)), sim, "other code") != key
    # the same names with other latencies: a database copied, one figure changed
    db_dir = tmp_path / "db"
    db_dir.mkdir()
    src = REPO / "latency_db" / "ryzen_ai_9_365" / "latency.csv"
    text = src.read_text()
    (db_dir / "latency.csv").write_text(text)
    data = copy.deepcopy(BASE_SCENARIO)
    data["latency_db"] = str(db_dir)
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(data))
    same = run_key(load_scenario(str(other)), sim, fp)
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("yolov3,"))
    cells = lines[row].split(",")
    header = lines[0].split(",")
    at = header.index("latency_ms")
    cells[at] = str(float(cells[at]) * 1.01)
    lines[row] = ",".join(cells)
    (db_dir / "latency.csv").write_text("\n".join(lines) + "\n")
    assert run_key(load_scenario(str(other)), sim, fp) != same


def test_an_unreadable_cache_entry_is_computed_again(tiny, tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"od.fps": [30]})
    cache = tmp_path / "cache"
    code, data, _ = sweep_cli([path, "--cache", str(cache), "--out", str(tmp_path / "a.csv")],
                              capsys)
    assert code == 0 and data["computed"] == 1
    entry = next(cache.rglob("*.json"))
    entry.write_text("{not json")
    code, data, _ = sweep_cli([path, "--cache", str(cache), "--out", str(tmp_path / "b.csv")],
                              capsys)
    assert code == 0 and (data["cached"], data["computed"]) == (0, 1)
    assert ResultCache(cache).get(plan(load_sweep(path))[0].key) is not None


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_cleanly_and_keeps_finished_runs(tmp_path):
    """A real SIGINT to a real process: exit 130, finished runs in the table and the
    cache, a rerun computes only the rest."""
    path = write_sweep(tmp_path, scenario="scenario_c", horizon="20s",
                       grid={"llm.input_tokens": [64, 128, 256, 512, 768, 1024, 1536, 2048]},
                       run={"simulate": {"policies": "all"}})
    cache = tmp_path / "cache"
    command = [sys.executable, "-c", "from rtgen_opt.cli.app import main; main()", "sweep", path,
               "--cache", str(cache), "--workers", "1", "--out", str(tmp_path / "t.csv"),
               "--format", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not list(cache.rglob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["interrupted"] and 1 <= data["computed"] < 8
    done = data["computed"]
    assert len(list(cache.rglob("*.json"))) == done
    assert pd.read_csv(tmp_path / "t.csv")["point"].nunique() == done
    rerun = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads(rerun.stdout)
    assert (again["cached"], again["computed"]) == (done, 8 - done)


# ----------------------------------------------------------------------------- example


def test_the_seq_len_example_is_valid_and_covers_the_papers_lengths():
    spec = load_sweep("seq_len")  # the built-in name
    assert spec.scenarios == ("scenario_d",)
    lengths = [step[0] for step in spec.axes[0].values]
    assert lengths[0] == 32 and lengths[-1] == 2048 and {256, 1024} <= set(lengths)
    assert [c.name for c in spec.commands] == ["simulate"]
    assert spec.commands[0].options["policies"] == list(POLICIES)
    assert len(plan(spec)) == len(lengths)


def test_a_local_ray_without_authentication_is_refused(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, _, err = sweep_cli([write_sweep(tmp_path), "--no-cache", "--engine", "ray"], capsys)
    assert code == 2 and "RAY_AUTH_MODE" in err and "disabled" in err
    assert not list(tmp_path.glob("*.csv"))


def test_the_local_ray_runs_code_only_for_its_own_token(monkeypatch):
    """The local Ray listens on every interface: a client without this process's token,
    or with another one (Ray's token file under ~/.ray), cannot join it."""
    ray = pytest.importorskip("ray")
    from rtgen_opt.sweep.engines import _init_ray, local_ray_token

    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    with local_ray_token():
        token = os.environ["RAY_AUTH_TOKEN"]
        _init_ray(ray, None, 1)
        try:
            address = ray.get_runtime_context().gcs_address
            clients = {name: _join(address, extra) for name, extra in {
                "no token": {}, "another token": {"RAY_AUTH_TOKEN": "0" * 64},
                "this token": {"RAY_AUTH_TOKEN": token}}.items()}  # side by side: each takes ~15 s
            joined = {name: _ran_code(client) for name, client in clients.items()}
        finally:
            ray.shutdown()
    assert joined == {"no token": False, "another token": False, "this token": True}
    assert "RAY_AUTH_TOKEN" not in os.environ


def _join(address: str, extra: dict) -> subprocess.Popen:
    code = (f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
            "print(ray.get(ray.remote(lambda: 'ran' + ' code').remote()))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(extra, **({"RAY_AUTH_MODE": "token"} if extra else {}))
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _ran_code(client: subprocess.Popen) -> bool:
    out, _ = client.communicate(timeout=180)
    return client.returncode == 0 and "ran code" in out


def test_a_plot_pattern_matching_no_column_is_bad_input_and_nothing_is_written(
        tiny, tmp_path, capsys):
    cache, out = str(tmp_path / "c"), str(tmp_path / "t.csv")
    path = write_sweep(tmp_path, plots=["violation_rat"], grid={"od.fps": [30, 60]})
    code, _, err = run_cli(["sweep", path, "--cache", cache, "--out", out], capsys)
    assert code == 2 and f"{path}: plots: " in err and "violation_rate" in err
    errors = [line for line in err.splitlines() if line.startswith("rtgen-opt:")]
    assert len(errors) == 1 and "Traceback" not in err and not (tmp_path / "t.csv").exists()
    path = write_sweep(tmp_path, plots=["violation_*"], grid={"od.fps": [30, 60]})
    code, data, _ = sweep_cli([path, "--cache", cache, "--out", out], capsys)
    assert code == 0 and data["cached"] == data["runs"] == 2  # the runs were kept
