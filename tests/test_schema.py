"""The JSON Schemas validate every built-in scenario, example and database row, and refuse
a typo'd key — which the loader refuses too (the two must agree on the key sets)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from rtgen_opt.model.schema import database_schema, scenario_schema
from rtgen_opt.sweep.schema import sweep_schema
from tests.conftest import run_cli

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "instances").glob("*.yaml"))
SWEEPS = [p for p in sorted((ROOT / "examples").glob("*.yaml"))
          if "run" in yaml.safe_load(p.read_text())]


def _validator(schema: dict):
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_built_in_scenario_validates(path):
    _validator(scenario_schema()).validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_example_sweep_validates(path):
    _validator(sweep_schema()).validate(yaml.safe_load(path.read_text()))


def test_every_database_row_validates():
    validator = _validator(database_schema())
    rows = list(csv.DictReader((ROOT / "latency_db" / "ryzen_ai_9_365" / "latency.csv")
                               .open(encoding="utf-8")))
    assert rows
    for row in rows:
        validator.validate({k: v for k, v in row.items() if k is not None})


@pytest.mark.parametrize("where", ["top", "task"])
def test_a_typo_is_refused_by_the_schema_and_by_the_loader(tmp_path, capsys, where):
    data = yaml.safe_load((ROOT / "instances" / "scenario_a.yaml").read_text())
    if where == "top":
        data["granularty"] = "layer"
    else:
        data["tasks"][0]["fsp"] = 30
    assert not _validator(scenario_schema()).is_valid(data)
    data["latency_db"] = "ryzen_ai_9_365"
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _out, err = run_cli(["scenarios", "show", str(path)], capsys)
    assert code == 2 and ("granularty" in err or "fsp" in err)


def test_the_command_prints_each_schema(capsys):
    for kind in ("scenario", "sweep", "database"):
        code, out, _err = run_cli(["schema", kind], capsys)
        assert code == 0 and json.loads(out)["$schema"].endswith("2020-12/schema")
    code, _out, err = run_cli(["schema", "scenarios"], capsys)
    assert code == 2 and "scenario or sweep or database" in err
