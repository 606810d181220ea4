"""Security: data files run no code and cannot loosen a check, every reader is bounded,
outputs are inert and never follow planted links, workers import nothing from the working
folder, the cache is honest (SECURITY.md). Each test reproduces a finding of issue 27."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from rtgen_opt.errors import InputError
from rtgen_opt.output import csv_cell, csv_text, write_file, write_files, write_with
from rtgen_opt.report.tables import md_escape, to_csv
from rtgen_opt.safeload import read_limited
from rtgen_opt.sweep.spec import load_sweep
from tests.conftest import BASE_SCENARIO, run_cli

REPO = Path(__file__).resolve().parent.parent

MARKER_POLICY = """
from pathlib import Path
Path({marker!r}).write_text("imported")
from rtgen_opt.simulation.policies.classic import Policy

class Mine(Policy):
    name = "mine"
    dynamic = True
    def priority(self, run, job, seg):
        return (job,)
"""


def scenario_file(folder: Path, **changes) -> Path:
    data = copy.deepcopy(BASE_SCENARIO)
    data.update(changes)
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def sweep_file(folder: Path, policies: list[str], **extra) -> Path:
    scenario_file(folder)
    data = {"name": "s", "scenario": "tiny.yaml", "horizon": "50ms",
            "run": {"simulate": {"policies": policies}}, **extra}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ----------------------------------------------------------------- 1. a sweep file runs no code


@pytest.mark.parametrize("where", ["parent", "absolute", "link"])
def test_a_sweep_file_names_a_policy_file_only_in_its_own_folder(tmp_path, capsys, where):
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    elsewhere.mkdir(), here.mkdir()
    marker = tmp_path / "imported.txt"
    (elsewhere / "x.py").write_text(MARKER_POLICY.format(marker=str(marker)))
    spec = {"parent": "../elsewhere/x.py:Mine", "absolute": f"{elsewhere / 'x.py'}:Mine",
            "link": "x.py:Mine"}[where]
    if where == "link":  # a link inside the folder to a file outside: resolved, refused
        (here / "x.py").symlink_to(elsewhere / "x.py")
    path = sweep_file(here, ["ftf", spec])
    for args in (["--dry-run"], ["--out", str(tmp_path / "t.csv")]):
        code, _, err = run_cli(["sweep", str(path), "--no-cache", *args], capsys)
        assert code == 2 and f"{path}: run.simulate.policies" in err, err
    assert not marker.exists()


def test_validation_and_dry_run_import_nothing_the_run_imports_the_policy(tmp_path, capsys):
    marker = tmp_path / "imported.txt"
    (tmp_path / "mine.py").write_text(MARKER_POLICY.format(marker=str(marker)))
    path = sweep_file(tmp_path, ["ftf", "mine.py:Mine"])
    spec = load_sweep(str(path))
    assert spec.commands[0].options["policy_files"]["mine.py:Mine"].endswith("mine.py:Mine")
    code, out, err = run_cli(["sweep", str(path), "--no-cache", "--dry-run", "--format",
                              "json"], capsys)
    assert code == 0 and json.loads(out)["runs"] == 1, err
    assert not marker.exists()  # validated and estimated: nothing imported
    code, _, err = run_cli(["sweep", str(path), "--no-cache", "--workers", "1", "--out",
                            str(tmp_path / "t.csv"), "--no-report"], capsys)
    assert code == 0, err
    assert marker.read_text() == "imported"  # the sweep ran it, as SECURITY.md says


def test_a_missing_policy_file_is_refused_at_validation(tmp_path, capsys):
    path = sweep_file(tmp_path, ["nofile.py:Mine"])
    code, _, err = run_cli(["sweep", str(path), "--no-cache", "--dry-run"], capsys)
    assert code == 2 and "run.simulate.policies" in err


# ------------------------------------------------------ 2. a schedule cannot loosen its check


def overlapping_schedule(tmp_path: Path, capsys) -> tuple[Path, Path]:
    """Two frames overlapping on the only GPU, in a file whose metadata says gpu: 2."""
    scenario = scenario_file(tmp_path, platform={"gpu": 1}, horizon="20ms", tasks=[
        {"name": "a", "model": "yolov3", "fps": 60},
        {"name": "b", "model": "yolov3", "fps": 60}])
    trace = tmp_path / "two_gpus.csv"
    code, _, err = run_cli(["simulate", str(scenario), "--policy", "edf-dyn", "--set",
                            "platform.gpu=2", "--schedule-out", str(trace)], capsys)
    assert code == 0, err
    meta = json.loads(trace.read_text().splitlines()[0].split(" ", 3)[3])
    assert meta["set"] == ["platform.gpu=2"]
    rows = list(csv.DictReader(io.StringIO(trace.read_text().split("\n", 1)[1])))
    firsts = [r for r in rows if r["segment"] == "0"]
    assert firsts[0]["start_us"] == firsts[1]["start_us"] == "0"  # overlapping at 0
    return scenario, trace


def test_a_schedule_metadata_line_cannot_loosen_the_check(tmp_path, capsys):
    scenario, trace = overlapping_schedule(tmp_path, capsys)
    code, out, err = run_cli(["replay", str(scenario), "--schedule", str(trace)], capsys)
    assert code == 2 and "valid schedule" not in out
    assert "metadata set" in err and "platform.gpu=2" in err  # both sides named
    # the command line's own settings: the overlap on the one GPU is found
    code, out, _ = run_cli(["replay", str(scenario), "--schedule", str(trace), "--set",
                            "platform.gpu=2", "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["valid"] is True


def test_settings_from_the_schedule_only_when_asked_and_then_shown(tmp_path, capsys):
    scenario, trace = overlapping_schedule(tmp_path, capsys)
    code, out, _ = run_cli(["replay", str(scenario), "--schedule", str(trace),
                            "--settings-from-schedule", "--format", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["settings_from_schedule"]["set"] == ["platform.gpu=2"]
    code, out, _ = run_cli(["replay", str(scenario), "--schedule", str(trace),
                            "--settings-from-schedule"], capsys)
    assert code == 0 and "platform.gpu=2" in out
    code, _, err = run_cli(["replay", str(scenario), "--schedule", str(trace),
                            "--settings-from-schedule", "--set", "platform.gpu=1"], capsys)
    assert code == 2 and "--settings-from-schedule" in err


@pytest.mark.parametrize("assignment, field", [
    ("b.nosuch=1", "metadata set, b.nosuch: expected a known key"),
    ("granularity=fine", "metadata set, granularity: expected layer"),
    ("nosuchkey", "metadata set, nosuchkey: expected KEY=VALUE"),
])
def test_a_bad_setting_from_the_schedule_names_the_file_and_its_field(tmp_path, capsys,
                                                                      assignment, field):
    """The metadata's overrides were blamed on "--set llm.nosuch", an option the user never
    typed, without naming the file they came from."""
    scenario, trace = overlapping_schedule(tmp_path, capsys)
    lines = trace.read_text().splitlines()
    magic, meta = lines[0].split(" ", 3)[:3], json.loads(lines[0].split(" ", 3)[3])
    meta["set"] = [assignment]
    lines[0] = " ".join([*magic, json.dumps(meta)])
    trace.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(["replay", str(scenario), "--schedule", str(trace),
                              "--settings-from-schedule"], capsys)
    assert code == 2 and not out
    assert f"{trace}: {field}" in err and "--set" not in err, err
    assert len(err.strip().splitlines()) == 1


# --------------------------------------------------------------- 3. one strict, bounded reader


def billion_laughs(levels: int, width: int) -> str:
    lines = ["a0: &a0 [x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


def test_a_sweep_file_alias_bomb_is_refused_in_milliseconds(tmp_path):
    scenario_file(tmp_path)
    bomb = billion_laughs(7, 10)  # 10**6 values once expanded, from ~400 bytes
    text = ("name: s\nscenario: tiny.yaml\nhorizon: 50ms\nrun: {simulate: {policies: all}}\n"
            "set:\n  " + bomb.replace("\n", "\n  ") + "\n")
    (tmp_path / "bomb.yaml").write_text(text)
    started = time.perf_counter()
    with pytest.raises(InputError, match="aliases are expanded"):
        load_sweep(str(tmp_path / "bomb.yaml"))
    assert time.perf_counter() - started < 2


def test_a_sweep_file_key_given_twice_is_refused(tmp_path):
    path = sweep_file(tmp_path, ["ftf"])
    path.write_text(path.read_text() + "horizon: 1h\n")
    with pytest.raises(InputError, match="each key once"):
        load_sweep(str(path))


def test_a_huge_sweep_file_is_refused_before_parsing(tmp_path):
    path = sweep_file(tmp_path, ["ftf"])
    with path.open("a") as f:
        f.truncate(10 * 2**20)
    with pytest.raises(InputError, match="at most 256.0 KiB"):
        load_sweep(str(path))


def test_readers_refuse_devices_and_do_not_block_on_named_pipes(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    outcome = []

    def read():
        try:
            read_limited(fifo, str(fifo), "a file", 1000)
        except InputError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the old behaviour so the test ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert outcome and "regular file" in outcome[0]
    with pytest.raises(InputError, match="regular file"):
        read_limited(Path("/dev/zero"), "/dev/zero", "a file", 1000)


def test_a_folder_given_as_an_input_file_is_bad_input_not_an_internal_error(tmp_path, capsys):
    """os.fdopen refuses a folder (IsADirectoryError) before the regular-file check could:
    every reader said "internal error", exit 70."""
    folder = tmp_path / "dir"
    folder.mkdir()
    with pytest.raises(InputError, match="regular file") as caught:
        read_limited(folder, str(folder), "a schedule file", 1000)
    assert "a readable a " not in str(caught.value)
    data = copy.deepcopy(BASE_SCENARIO)
    data["tasks"][1]["arrivals"] = {"file": str(folder)}
    (tmp_path / "arrivals.yaml").write_text(yaml.safe_dump(data))
    scenario = str(tmp_path / "arrivals.yaml")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(copy.deepcopy(BASE_SCENARIO)))
    tiny = str(tmp_path / "tiny.yaml")
    for args in (["replay", tiny, "--schedule", str(folder)],
                 ["replay", tiny, "--schedule", str(folder), "--settings-from-schedule"],
                 ["verify-bound", str(folder), tiny],
                 ["simulate", tiny, "--policy", "edf-dyn", "--realization", str(folder)],
                 ["taskset", scenario]):
        code, _, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and str(folder) in err, (args, err)
        assert "internal error" not in err and "regular file" in err, (args, err)


def test_a_readable_file_message_has_one_article(tmp_path):
    with pytest.raises(InputError) as caught:
        read_limited(tmp_path / "missing.json", "missing.json", "a schedule file", 1000)
    assert "expected a readable schedule file" in str(caught.value)


def test_replay_reads_only_the_head_of_a_json_schedule_before_the_task_set(tmp_path, capsys):
    import tracemalloc

    path = tmp_path / "big.json"
    meta = {"format": "rtgen-opt schedule", "version": 1, "scenario": "tiny"}
    path.write_text(json.dumps({"meta": meta, "columns": [], "rows": []})[:-1] + ", ")
    with path.open("a") as f:
        f.truncate(300 * 2**20)  # a sparse 300 MB file
    scenario = scenario_file(tmp_path)
    tracemalloc.start()
    try:
        code, _, err = run_cli(["replay", str(scenario), "--schedule", str(path)], capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "at most" in err, err
    assert peak < 150 * 2**20  # imports included; reading the file would be 300 MB


def test_llm_architecture_files_go_through_the_strict_reader(tmp_path):
    from rtgen_opt.profile.architecture import load_architecture

    path = tmp_path / "arch.yaml"
    path.write_text("name: x\nname: y\n")
    with pytest.raises(InputError, match="each key once"):
        load_architecture(str(path))


# ----------------------------------------------------------------- 4. user text is literal


def test_names_are_not_terminal_markup(tmp_path, capsys):
    tasks = copy.deepcopy(BASE_SCENARIO["tasks"])
    tasks[0]["name"] = "[/x]"
    scenario = scenario_file(tmp_path, name="[link=https://x]scenario_a[/link]", tasks=tasks)
    for args in (["simulate", str(scenario), "--policy", "edf-dyn"],
                 ["taskset", str(scenario)], ["scenarios", "show", str(scenario)]):
        code, out, err = run_cli(args, capsys)
        assert code == 0, (args, err)
        assert "[/x]" in out, args
    code, out, _ = run_cli(["taskset", str(scenario)], capsys)
    assert "[link=https://x]scenario_a[/link]" in out  # shown, not a hidden link


FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-cmd", "@SUM(A1)", "\tx", "\rx", "'=x",
            "'", "ok", "-", "-2", "1e3", "+5", "-inf"]


def test_csv_text_cells_are_neutralised_and_read_back_exactly():
    for text in FORMULAS:
        cell = csv_cell(text)
        assert csv_text(cell) == text
        if cell != text:
            assert cell.startswith("'")
        else:  # left alone: harmless text, or a number a spreadsheet reads as one
            assert not text.startswith(("=", "@", "\t", "\r", "'")) and (
                not text.startswith(("+", "-")) or text == "-" or text in ("-2", "+5"))
    assert csv_cell(-3) == -3 and csv_cell(2.5) == 2.5
    out = to_csv(["task", "x"], [[FORMULAS[0], -1], ["b", 2]])
    cells = list(csv.reader(io.StringIO(out)))
    assert cells[1] == ["'" + FORMULAS[0], "-1"] and cells[2] == ["b", "2"]


def test_every_csv_the_tool_writes_keeps_a_formula_name_inert(tmp_path, capsys):
    tasks = copy.deepcopy(BASE_SCENARIO["tasks"])
    evil = "=HYPERLINK(\"http://x\",\"y\")"
    tasks[0]["name"] = evil
    scenario = scenario_file(tmp_path, tasks=tasks)
    trace = tmp_path / "t.csv"
    code, out, err = run_cli(["simulate", str(scenario), "--policy", "edf-dyn", "--format",
                              "csv", "--schedule-out", str(trace)], capsys)
    assert code == 0, err
    for text in (out, trace.read_text().split("\n", 1)[1]):
        cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
        assert not any(c.startswith(("=", "+", "@")) for c in cells)
        # the trace has the name in cells; simulate's CSV inside its columns (tasks.NAME.*)
        assert any(c == "'" + evil or c.startswith(("'" + evil, "tasks." + evil))
                   for c in cells)
    code, out, err = run_cli(["replay", str(scenario), "--schedule", str(trace), "--format",
                              "json"], capsys)
    assert code == 0 and json.loads(out)["valid"], err  # the name reads back exactly
    tasks[0]["name"] = evil = "@cmd"  # an axis key is TASK.FIELD: no "=" in it
    (tmp_path / "sw").mkdir()
    scenario_file(tmp_path / "sw", tasks=tasks)
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump({
        "name": "sw", "scenario": "sw/tiny.yaml", "horizon": "50ms",
        "grid": {f"{evil}.fps": [30]}, "run": {"simulate": {"policies": ["ftf"]}}}))
    table = tmp_path / "sw.csv"
    code, _, err = run_cli(["sweep", str(tmp_path / "sw.yaml"), "--no-cache", "--workers", "1",
                            "--out", str(table), "--no-report"], capsys)
    assert code == 0, err
    cells = [c for row in csv.reader(io.StringIO(table.read_text())) for c in row]
    assert "'" + f"{evil}.fps" in cells and not any(c.startswith("@") for c in cells)


def test_markdown_escapes_names():
    assert md_escape("[x](http://y) <b>|*") == "\\[x\\](http://y) \\<b\\>\\|\\*"
    assert md_escape("a & b\nc") == "a &amp; b c"


# -------------------------------------------------------------- 5. one atomic writer, no links


def test_a_link_planted_at_an_output_path_is_replaced_not_followed(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o600)
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    code, _, err = run_cli(["simulate", str(scenario_file(tmp_path)), "--policy", "edf-dyn",
                            "--schedule-out", str(link)], capsys)
    assert code == 0, err
    assert victim.read_text() == "precious" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not link.is_symlink() and "rtgen-opt schedule" in link.read_text()


def test_modes_are_kept_never_widened_and_temporaries_are_unpredictable(tmp_path):
    target = tmp_path / "private.csv"
    target.write_text("old")
    target.chmod(0o600)
    write_file(str(target), "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "new"
    seen = []
    write_with({str(tmp_path / "m.pbtxt"): seen.append})
    name = Path(seen[0]).name
    assert name.startswith(".rtgen-opt-") and name.endswith(".pbtxt") and str(os.getpid()) \
        not in name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pbtxt", "private.csv"]


def test_the_sweep_table_replaces_a_planted_link(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = sweep_file(tmp_path, ["ftf"])
    for name in ("s.csv", "s.html"):
        (tmp_path / name).symlink_to(victim)
    code, _, err = run_cli(["sweep", str(path), "--no-cache", "--workers", "1", "--out",
                            str(tmp_path / "s.csv")], capsys)
    assert code == 0, err
    assert victim.read_text() == "precious"
    assert not (tmp_path / "s.csv").is_symlink() and not (tmp_path / "s.html").is_symlink()


def test_write_files_is_all_or_nothing_through_links_too(tmp_path):
    (tmp_path / "b.csv").mkdir()
    (tmp_path / "a.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(InputError):
        write_files({str(tmp_path / "a.csv"): "a", str(tmp_path / "b.csv"): "b"})
    assert (tmp_path / "a.csv").is_symlink() and not (tmp_path / "elsewhere.csv").exists()


# ------------------------------------------------- 6. workers import nothing from the cwd


PLANTED = "import pathlib; pathlib.Path({marker!r}).write_text('ran'); raise SystemExit(9)\n"


def run_in_folder(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    """The CLI as a console script runs it: the working folder is not on the parent's
    sys.path (the checkout is put there by path instead)."""
    boot = (f"import sys; sys.path[0] = {str(REPO)!r}; from rtgen_opt.cli.app import main; "
            "sys.argv[0] = 'rtgen-opt'; main()")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-c", boot, *args], cwd=folder, env=env, check=False,
                          capture_output=True, text=True, timeout=300)


def test_the_milp_worker_does_not_import_from_the_working_folder(tmp_path):
    marker = tmp_path / "planted.txt"
    (tmp_path / "pulp.py").write_text(PLANTED.format(marker=str(marker)))
    # the detector alone: the MILP worker starts and solves as for any scenario, in about a
    # second (with the LLM's 1.6 s drain, CBC took ~13 s on the same question)
    scenario = scenario_file(tmp_path, horizon="20ms", tasks=BASE_SCENARIO["tasks"][:1])
    out = run_in_folder(tmp_path, ["solve", str(scenario), "--solver", "milp",
                                   "--time-limit", "20s", "--format", "json",
                                   "--model-out", str(tmp_path / "m.lp")])
    assert not marker.exists()
    assert out.returncode == 0, out.stderr  # --model-out with the MILP works too
    assert json.loads(out.stdout)["status"] in ("OPTIMAL", "FEASIBLE")
    assert (tmp_path / "m.lp").read_text().startswith("\\*")


def test_the_sweep_pool_does_not_import_from_the_working_folder(tmp_path):
    marker = tmp_path / "planted.txt"
    (tmp_path / "socket.py").write_text(PLANTED.format(marker=str(marker)))
    path = sweep_file(tmp_path, ["ftf"])
    out = run_in_folder(tmp_path, ["sweep", str(path), "--no-cache", "--workers", "1",
                                   "--no-report", "--out", str(tmp_path / "t.csv")])
    assert not marker.exists()
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------- 7. the cache is honest


def test_swapped_cache_records_are_ignored_recomputed_and_counted(tmp_path, capsys):
    scenario_file(tmp_path)
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump({
        "name": "sw", "scenario": "tiny.yaml", "horizon": "50ms",
        "grid": {"llm.input_tokens": [32, 1024]}, "run": {"simulate": {"policies": ["ftf"]}}}))
    cache = tmp_path / "cache"

    def sweep(*args):
        code, out, err = run_cli(["sweep", str(tmp_path / "sw.yaml"), "--workers", "1",
                                  "--no-report", "--format", "json", "--out",
                                  str(tmp_path / "t.csv"), *args], capsys)
        assert code == 0, err
        return json.loads(out), err

    truth, _ = sweep("--no-cache")
    sweep("--cache", str(cache))
    first, second = sorted(cache.rglob("*.json"))
    a, b = first.read_text(), second.read_text()
    first.write_text(b), second.write_text(a)  # each run now finds the other's record
    served, err = sweep("--cache", str(cache))
    assert (served["cached"], served["computed"], served["cache_ignored"]) == (0, 2, 2)
    assert "2 cache records ignored" in err
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("wall_s")}
                          for r in rows]
    assert strip(served["rows"]) == strip(truth["rows"])
    again, _ = sweep("--cache", str(cache))  # replaced by honest records
    assert (again["cached"], again["cache_ignored"]) == (2, 0)


def test_a_cache_folder_others_can_write_is_refused_unless_shared(tmp_path, capsys):
    path = sweep_file(tmp_path, ["ftf"])
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    args = ["sweep", str(path), "--cache", str(cache), "--dry-run"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--cache" in err and "--shared-cache" in err
    code, _, err = run_cli([*args, "--shared-cache"], capsys)
    assert code == 0, err
    cache.chmod(0o700)
    (cache / "ab").mkdir(mode=0o777)
    (cache / "ab").chmod(0o777)
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "ab" in err


# ------------------------------------------------------------------------- 9. smaller ones


@pytest.mark.parametrize("option, value", [("seed", 2**80), ("workers", 10**6),
                                           ("seed", -1)])
def test_sweep_options_are_bounded_like_the_command_line(tmp_path, capsys, option, value):
    path = sweep_file(tmp_path, ["ftf"])
    data = yaml.safe_load(path.read_text())
    data["run"] = {"solve": {option: value}}
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(["sweep", str(path), "--no-cache", "--dry-run"], capsys)
    assert code == 2 and f"run.solve.{option}" in err
