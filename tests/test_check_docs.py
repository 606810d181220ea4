"""The worked example of docs/check.md runs as written (horizons shortened to 2 s, the
margin's time limit to 120 s), and `check`'s JSON carries its question and assumptions.
The margin line (about 50 s: seven exact analyses) runs under ``-m slow``; the default suite
brackets the margin through the same CLI path on a one-task scenario whose critical factor
is known in closed form (test_margin_brackets_the_critical_factor_of_one_frame_task)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "check.md"
EXPECTED = [0, 0, 0, 1, 0, 0]  # yes, yes, yes, no (fcfs-dyn), the replay, the margin
MARGIN_LINE = 5  # the last command: --margin


def example_commands() -> list[list[str]]:
    text = DOC.read_text().split("## Worked example", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.startswith("    rtgen-opt ")]
    commands = []
    for line in lines:
        line = line.replace("--horizon 10s", "--horizon 2s").replace("300s", "120s")  # ample: a busy CI machine
        commands.append(shlex.split(line)[1:])
    return commands


def _run_example(tmp_path, capsys, args: list[str], expected: int) -> None:
    code, out, err = run_cli([*args, "-f", "json"], capsys)
    assert code == expected, (args, err[-500:])
    data = json.loads(out)
    if args[0] == "check":
        assert data["question"] == re.search(r"--policy (\S+)", " ".join(args)).expand(
            r"policy \1, every realization")
        assert data["assumptions"]["arrivals"] == "as declared"
    if "--witness-out" in args:
        assert data["witness"] == "fcfs.json" and (tmp_path / "fcfs.json").is_file()
    if "--realization" in args:
        assert data["runs"][0]["tasks"]["od"]["violations"] > 0  # the replayed miss
    if "--margin" in args:
        margin = data["margin"]
        assert margin is not None, "no bracket within 120 s"
        assert margin["scaling_proven"] is None or margin["scaling_refuted"] is None \
            or margin["scaling_proven"] < margin["scaling_refuted"]


def test_the_worked_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    commands = example_commands()
    assert len(commands) == len(EXPECTED)
    assert "--margin" in commands[MARGIN_LINE]
    assert not any("--margin" in args for args in commands[:MARGIN_LINE])
    for args, expected in zip(commands[:MARGIN_LINE], EXPECTED[:MARGIN_LINE]):
        _run_example(tmp_path, capsys, args, expected)


@pytest.mark.slow  # ~50 s; the default suite: test_margin_brackets_the_critical_factor_...
def test_the_worked_examples_margin_line_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _run_example(tmp_path, capsys, example_commands()[MARGIN_LINE], EXPECTED[MARGIN_LINE])


def test_margin_brackets_the_critical_factor_of_one_frame_task(tmp_path, capsys):
    """`check --policy P --margin` through the CLI: one frame task, 3 ms on its fastest
    backend every 4 ms, at execution=[0.9,1.1] meets its deadline exactly while
    3.3 ms x factor <= 4 ms: the bracket must hold 4 / 3.3 between its ends, and no factor
    above a "no" may be a "yes"."""
    from tests.test_gap_check import small_scenario

    path = small_scenario(tmp_path, tasks=[{"name": "v", "model": "v", "period": "4ms"}])
    code, out, err = run_cli(["check", path, "--policy", "ftf", "--set", "execution=[0.9,1.1]",
                              "--margin", "--time-limit", "10s", "-f", "json"], capsys)
    assert code == 0, err[-500:]
    margin = json.loads(out)["margin"]
    assert margin is not None
    assert margin["scaling_proven"] <= 4 / 3.3 < margin["scaling_refuted"]
    probes = sorted((p["factor"], p["verdict"]) for p in margin["probes"])
    assert probes[0] == (1.0, "yes") and len(probes) >= 3
    refuted = min(f for f, v in probes if v == "no")
    assert all(v != "yes" for f, v in probes if f > refuted)


@pytest.mark.parametrize("flag", [["--witness-out", "w.json"], ["--margin"]])
def test_witness_and_margin_need_a_policy(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_cli(["check", "scenario_a", "--horizon", "1s", *flag], capsys)
    assert code == 2 and "--policy" in err and err.count("\n") == 1


def test_optimal_mode_says_which_question_it_answered(capsys):
    code, out, _err = run_cli(["check", "scenario_a", "--horizon", "1s", "--set",
                               "execution=[0.9,1.1]", "--time-limit", "20s", "-f", "json"],
                              capsys)
    data = json.loads(out)
    assert data["question"] == "time-triggered table, these arrivals"
    assert data["assumptions"]["execution"] == [0.9, 1.1]
    assert code in (0, 1, 3)


@pytest.mark.parametrize("policy, verdict", [("edf-dyn", "no"), ("fcfs-dyn", "yes")])
def test_junit_output_parses_and_carries_the_verdict(tmp_path, monkeypatch, capsys, policy,
                                                     verdict):
    import xml.etree.ElementTree as ET

    monkeypatch.chdir(tmp_path)
    sets = ["--set", "platform.npu=2"] if verdict == "yes" else []
    code, out, _err = run_cli(["check", "scenario_c", "--horizon", "1s", "--policy", policy,
                               *sets, "--junit", "r.xml", "-f", "json"], capsys)
    assert json.loads(out)["verdict"] == verdict
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    case = suite.find("testcase")
    assert suite.get("tests") == "1"
    assert (case.find("failure") is not None) == (verdict == "no")
    assert code == (1 if verdict == "no" else 0)
