"""Users' own policies: loaded from a file or an entry point, run by simulate and check,
and every way a policy file can be wrong reported as bad input (exit 2)."""

from __future__ import annotations

import json
import re
import shutil
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from rtgen_opt.simulation.policies import loader as policy_loader
from rtgen_opt.simulation.policies.classic import Policy
from tests.conftest import run_cli
from tests.test_gap_check import small_scenario

EXAMPLE = Path(__file__).parent.parent / "examples" / "ftf_no_hopeless.py"
README = Path(__file__).parent.parent / "docs" / "guide.md"  # the policy example


class ShortestFirst(Policy):  # the target of the entry-point test
    name, dynamic = "shortest-first", True

    def priority(self, run, job, seg):
        return (min(d[seg] for d in run.dur_on if d[seg] >= 0), job)


def test_a_policy_from_a_file_runs_and_is_reported_by_its_name(tmp_path, capsys):
    shutil.copy(EXAMPLE, tmp_path / "mine.py")
    code, out, err = run_cli(["simulate", "scenario_c", "--horizon", "1s", "--format", "json",
                              "--policy", f"{tmp_path}/mine.py:FtfNoHopeless"], capsys)
    assert code == 0, err
    [run] = json.loads(out)["runs"]
    assert run["policy"] == "ftf-no-hopeless" and run["llm"]["llm"]["starved"] == 0


def test_check_takes_a_policy_from_a_file(tmp_path, capsys):
    shutil.copy(EXAMPLE, tmp_path / "mine.py")
    code, out, _ = run_cli(["check", "scenario_a", "--horizon", "1s", "--format", "json",
                            "--policy", f"{tmp_path}/mine.py:FtfNoHopeless"], capsys)
    data = json.loads(out)
    assert code in (0, 1) and data["method"] == "policy:ftf-no-hopeless"


def test_a_policy_from_a_file_appears_in_the_gap_analysis(tmp_path, capsys):
    shutil.copy(EXAMPLE, tmp_path / "mine.py")
    code, out, err = run_cli(["gap", small_scenario(tmp_path), "--workers", "1",
                              "--time-limit", "30s", "--format", "json",
                              "--policy", f"{tmp_path}/mine.py:FtfNoHopeless"], capsys)
    assert code == 0, err
    rows = {p["policy"]: p for p in json.loads(out)["policies"]}
    assert {"ftf", "kill-aware", "ftf-no-hopeless"} <= set(rows)
    ours = rows["ftf-no-hopeless"]
    assert ours["matched_optimum"]["violations_lower_bound"] <= ours["violations"]
    assert ours["gap_violations"] >= 0


def test_an_entry_point_names_a_packaged_policy(monkeypatch, capsys):
    entry = EntryPoint("shortest-first", "tests.test_policy_loader:ShortestFirst",
                       policy_loader.ENTRY_POINT_GROUP)
    monkeypatch.setattr(policy_loader, "entry_points", lambda group: [entry])
    code, out, err = run_cli(["simulate", "scenario_a", "--horizon", "1s", "--format", "json",
                              "--policy", "shortest-first"], capsys)
    assert code == 0, err
    assert json.loads(out)["runs"][0]["policy"] == "shortest-first"


def test_the_readme_shows_the_example_file_verbatim():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert EXAMPLE.read_text() in blocks


BROKEN = {  # file body -> what the one-line error must mention
    "": "a class named 'P'",
    "class P:\n    name = 'p'\n": "a subclass of rtgen_opt.simulation.policies.classic.Policy",
    "import nonexistent_module_xyz\n": "imports without error",
    "def broken(:\n": "imports without error",
    "from rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n    name, dynamic = 'ftf', True\n"
    "    def priority(self, run, job, seg):\n        return (job,)\n": "a name of its own",
    "from rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n    name, dynamic = 'p', True\n":
        "priority",
    "from rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n    name, dynamic = 'p', True\n"
    "    def priority(self, run, job, seg):\n        return 1 / 0\n":
        "P.py:P: priority: expected a method that runs without error, got 'ZeroDivisionError",
    "from rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n    name, dynamic = 'p', True\n"
    "    def __init__(self, x):\n        pass\n"
    "    def priority(self, run, job, seg):\n        return (job,)\n": "without arguments",
    "from rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n    name, dynamic = 'p', True\n"
    "    def priority(self, run, job, seg):\n        return (job,)\n"
    "    def placement(self, run):\n        return self\n"
    "    def place(self, now, job, seg):\n        return 99\n":
        "place: expected None or the index of a backend with an idle instance",
    # a policy that exits: not the command's exit code, silently (3 or 1), but bad input
    "import sys\nsys.exit(3)\n": "imports without error, got 'SystemExit(3)",
    "from rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n    name, dynamic = 'p', True\n"
    "    def priority(self, run, job, seg):\n        raise SystemExit('bye')\n":
        "P.py:P: priority: expected a method that runs without error, got \"SystemExit('bye')",
    "import sys\nfrom rtgen_opt.simulation.policies.classic import Policy\nclass P(Policy):\n"
    "    name, dynamic = 'p', True\n"
    "    def __init__(self):\n        sys.exit()\n"
    "    def priority(self, run, job, seg):\n        return (job,)\n": "without arguments",
}


@pytest.mark.parametrize("body", list(BROKEN))
def test_a_broken_policy_file_is_bad_input_naming_the_file(tmp_path, capsys, body):
    path = tmp_path / "P.py"
    path.write_text(body)
    code, _, err = run_cli(["simulate", "scenario_a", "--horizon", "200ms",
                            "--policy", f"{path}:P"], capsys)
    assert code == 2
    assert "Traceback" not in err and str(path) in err and BROKEN[body] in err
    assert len(err.strip().splitlines()) == 1


def test_a_policy_cannot_swallow_the_sigterm_exit():
    from rtgen_opt.errors import Terminated

    class Stubborn(Policy):
        name, dynamic = "stubborn", True

        def priority(self, run, job, seg):
            raise Terminated(143)  # SIGTERM arrived while the policy ran

    with pytest.raises(Terminated):
        policy_loader.GuardedPolicy(Stubborn(), "stubborn.py:Stubborn").priority(None, 0, 0)


def test_an_unknown_policy_name_lists_the_choices(capsys):
    code, _, err = run_cli(["simulate", "scenario_a", "--policy", "nope"], capsys)
    assert code == 2 and "kill-aware" in err and "FILE.py:CLASS" in err


def test_a_missing_policy_file_is_bad_input(tmp_path, capsys):
    code, _, err = run_cli(["check", "scenario_a", "--policy", f"{tmp_path}/none.py:P"],
                           capsys)
    assert code == 2 and "none.py" in err and "an existing Python file" in err


def test_gap_runs_a_users_policy_before_any_solve(tmp_path, capsys):
    """A policy that fails is reported at once, not after the optimum (nor dropped when
    the time limit comes first)."""
    path = tmp_path / "P.py"
    path.write_text(next(b for b in BROKEN if "1 / 0" in b))
    code, _, err = run_cli(["gap", "scenario_a", "--horizon", "1s", "--time-limit", "2s",
                            "--policy", f"{path}:P"], capsys)
    assert code == 2 and "ZeroDivisionError" in err and "optimum:" not in err
