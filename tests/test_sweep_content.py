"""A sweep's workers compute from exactly the content its cache keys hashed (issue 27,
items 7 and 11): the loaded scenario — overrides, latency database, request trace — and
each user policy's source travel inside the run. A file edited while the sweep runs can
no longer leave its result cached under the original content's key, and a worker (a Ray
node) reads nothing from its own disk."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import yaml

from rtgen_opt.sweep import run as sweeps
from rtgen_opt.sweep.compute import compute
from rtgen_opt.sweep.spec import load_sweep
from tests.conftest import BASE_SCENARIO, run_cli

REPO = Path(__file__).resolve().parent.parent

POLICY = """
from pathlib import Path
Path({marker!r}).write_text({version!r})
from rtgen_opt.simulation.policies.classic import Policy

class Mine(Policy):
    name = "mine"
    dynamic = True
    def priority(self, run, job, seg):
        return ({sign} * job,)
"""


def write_policy(folder: Path, version: str, sign: int = 1) -> Path:
    path = folder / "mine.py"
    path.write_text(POLICY.format(marker=str(folder / "imported.txt"), version=version,
                                  sign=sign))
    return path


def write_sweep(folder: Path, policies: list[str], **scenario_changes) -> Path:
    data = copy.deepcopy(BASE_SCENARIO)
    data.update(scenario_changes)
    (folder / "tiny.yaml").write_text(yaml.safe_dump(data))
    path = folder / "sw.yaml"
    path.write_text(yaml.safe_dump({
        "name": "sw", "scenario": "tiny.yaml", "horizon": "100ms",
        "grid": {"llm.input_tokens": [32, 256]}, "run": {"simulate": {"policies": policies}}}))
    return path


def sweep_cli(path: Path, capsys, *args) -> dict:
    code, out, err = run_cli(["sweep", str(path), "--workers", "1", "--no-report", "--format",
                              "json", "--out", str(path.parent / "t.csv"), *args], capsys)
    assert code == 0, err
    return json.loads(out)


def strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.endswith("wall_s")} for r in rows]


def test_a_scenario_edited_after_planning_is_computed_and_cached_as_hashed(tmp_path, capsys,
                                                                         monkeypatch):
    """The scenario file is rewritten between planning and computing (od at 1000 FPS: a
    violation rate near 1). The runs keep the planned content: their rows and the records
    cached under their keys are those of the original file."""
    path = write_sweep(tmp_path, ["ftf"])
    truth = sweep_cli(path, capsys, "--no-cache")
    original = (tmp_path / "tiny.yaml").read_text()
    edited = original.replace("fps: 60", "fps: 1000")
    assert edited != original
    planned = sweeps.plan

    def plan_then_edit(spec):
        runs = planned(spec)
        (tmp_path / "tiny.yaml").write_text(edited)
        return runs

    monkeypatch.setattr(sweeps, "plan", plan_then_edit)
    cache = tmp_path / "cache"
    during = sweep_cli(path, capsys, "--cache", str(cache))
    assert strip(during["rows"]) == strip(truth["rows"])
    monkeypatch.setattr(sweeps, "plan", planned)
    (tmp_path / "tiny.yaml").write_text(original)
    served = sweep_cli(path, capsys, "--cache", str(cache))  # the original content's keys
    assert served["cached"] == 2 and strip(served["rows"]) == strip(truth["rows"])
    (tmp_path / "tiny.yaml").write_text(edited)
    changed = sweep_cli(path, capsys, "--cache", str(cache))  # the edit: other keys
    assert changed["cached"] == 0 and changed["computed"] == 2
    assert strip(changed["rows"]) != strip(truth["rows"])


def test_a_policy_edited_after_planning_runs_as_hashed(tmp_path, capsys, monkeypatch):
    write_policy(tmp_path, "planned")
    path = write_sweep(tmp_path, ["mine.py:Mine"])
    planned = sweeps.plan

    def plan_then_edit(spec):
        runs = planned(spec)
        write_policy(tmp_path, "edited", sign=-1)
        return runs

    monkeypatch.setattr(sweeps, "plan", plan_then_edit)
    sweep_cli(path, capsys, "--cache", str(tmp_path / "cache"))
    assert (tmp_path / "imported.txt").read_text() == "planned"


def test_a_worker_reads_nothing_from_disk(tmp_path):
    """As on a Ray node without the files: the scenario, its latency database, its request
    trace and the policy file are all gone when the run is computed."""
    shutil.copytree(REPO / "latency_db" / "ryzen_ai_9_365", tmp_path / "db")
    (tmp_path / "trace.csv").write_text("time\n0ms\n30ms\n70ms\n")
    write_policy(tmp_path, "planned")
    tasks = copy.deepcopy(BASE_SCENARIO["tasks"])
    tasks[1]["arrivals"] = {"file": "trace.csv"}
    path = write_sweep(tmp_path, ["ftf", "mine.py:Mine"], latency_db="db", tasks=tasks)
    spec = load_sweep(str(path))
    runs = sweeps.plan(spec)
    expected = [compute(run) for run in runs]
    assert all(result["error"] is None for result in expected)
    for name in ("tiny.yaml", "trace.csv", "mine.py", "db"):
        target = tmp_path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    again = [compute(run) for run in runs]
    assert [strip(r["rows"]) for r in again] == [strip(r["rows"]) for r in expected]


def test_runs_share_one_loaded_database_and_one_copy_of_a_trace(tmp_path):
    (tmp_path / "trace.csv").write_text("time\n" + "".join(f"{i}ms\n" for i in range(90)))
    tasks = copy.deepcopy(BASE_SCENARIO["tasks"])
    tasks[1]["arrivals"] = {"file": "trace.csv"}
    path = write_sweep(tmp_path, ["ftf"], tasks=tasks)
    runs = sweeps.plan(load_sweep(str(path)))
    assert len(runs) == 2 and runs[0].loaded.db is runs[1].loaded.db
    first, second = (run.loaded.task("rag").arrivals for run in runs)
    assert first is second and len(first.times) == 90


def test_a_sweep_of_more_runs_than_the_limit_is_refused_before_planning(tmp_path, capsys):
    """Eight axes of ten values (a 1 KB file) are 10**8 points: `--dry-run` took 3.9 GB
    and over a minute before it was stopped."""
    write_sweep(tmp_path, ["ftf"])
    keys = ["od.fps", "od.weight", "rag.input_tokens", "llm.input_tokens",
            "llm.output_tokens", "llm.weight", "rag.weight", "od.phase"]
    grid = {key: [f"{i}ms" if key == "od.phase" else i + 2 for i in range(10)] for key in keys}
    (tmp_path / "big.yaml").write_text(yaml.safe_dump({
        "name": "big", "scenario": "tiny.yaml", "grid": grid,
        "run": {"simulate": {"policies": ["ftf"]}}}))
    code, out, err = run_cli(["sweep", str(tmp_path / "big.yaml"), "--dry-run", "--no-cache"],
                             capsys)
    assert code == 2 and out == "" and "big.yaml: grid: expected at most 100,000 runs" in err
