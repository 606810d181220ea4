"""One function per command builds its result: the CLI's JSON and a one-point sweep's row
agree on every key the command reports (flattened the way the sweep table flattens)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from rtgen_opt.sweep.compute import flatten
from tests.conftest import BASE_SCENARIO, run_cli

VOLATILE = ("wall_s", "interrupted", "time_limit_s", "events")  # clocks, and run-level keys


def _sweep_row(tmp_path, capsys, run: dict) -> dict:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(BASE_SCENARIO))
    sweep = {"name": "one", "scenario": "tiny.yaml", "horizon": "100ms", "run": run}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    out = tmp_path / "t.csv"
    code, _out, err = run_cli(["sweep", str(tmp_path / "sweep.yaml"), "--no-cache", "--out",
                               str(out), "--workers", "1"], capsys)
    assert code == 0, err
    return pd.read_csv(out).iloc[0].to_dict()


def _cli(tmp_path, capsys, args: list[str]) -> dict:
    command, options = args[0], args[1:]
    code, out, err = run_cli([command, str(tmp_path / "tiny.yaml"), *options, "--horizon",
                              "100ms", "--format", "json"], capsys)
    assert code in (0, 1, 3), err
    return json.loads(out)


def _agree(cli: dict, row: dict, skip: tuple = ()) -> None:
    keys = {k for k in flatten(cli) if not k.endswith(VOLATILE) and not k.startswith(skip)}
    missing = sorted(k for k in keys if k not in row)
    assert not missing, f"the sweep row lacks {missing[:10]}"


@pytest.mark.parametrize("command, args, run", [
    ("solve", ["solve", "--time-limit", "5s", "--workers", "1"],
     {"solve": {"time_limit": "5s", "workers": 1}}),
    ("check", ["check", "--policy", "ftf", "--time-limit", "5s"],
     {"check": {"policy": "ftf", "time_limit": "5s"}}),
])
def test_the_cli_and_the_sweep_report_the_same_keys(tmp_path, capsys, command, args, run):
    row = _sweep_row(tmp_path, capsys, run)
    cli = _cli(tmp_path, capsys, args)
    _agree(cli, row, skip=("scenario",))


def test_simulate_rows_carry_every_key_of_a_cli_run(tmp_path, capsys):
    row = _sweep_row(tmp_path, capsys, {"simulate": {"policy": "ftf"}})
    cli = _cli(tmp_path, capsys, ["simulate", "--policy", "ftf"])
    _agree(cli["runs"][0], row)


def test_gap_rows_carry_every_key_of_a_cli_policy_row(tmp_path, capsys):
    row = _sweep_row(tmp_path, capsys, {"gap": {"time_limit": "20s", "workers": 1}})
    cli = _cli(tmp_path, capsys, ["gap", "--time-limit", "20s", "--workers", "1"])
    _agree(cli["policies"][0], row)
