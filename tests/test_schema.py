"""The JSON Schemas validate every built-in scenario, example and database row, and refuse
a typo'd key — which the loader refuses too; the scenario schema and the loader agree
field by field (required keys, types, ranges, exclusive keys, durations), and on every
scenario example in the docs."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from rtgen_opt.errors import InputError
from rtgen_opt.model.scenario import (
    ARRIVAL_KEYS,
    PERIODIC_KEYS,
    REQUEST_KEYS,
    TOP_KEYS,
    load_scenario,
)
from rtgen_opt.model.schema import database_schema, scenario_schema
from rtgen_opt.sweep.schema import sweep_schema
from tests.conftest import BASE_SCENARIO, run_cli

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


# ------------------------------------------------------------ schema and loader agree
# Each file is written as YAML text and judged twice: by the JSON Schema on what PyYAML
# reads (`yaml.safe_load`, as a user's CI would) and by the loader. Texts like 3e1 are
# written unquoted, as a user writes them (PyYAML reads them as text, the tool as numbers).

DEL = object()  # a case removes the key
_EXPONENT_TEXT = re.compile(r"""(['"])([-+]?[0-9.]+[eE][-+]?[0-9]+)\1""")


def _verdicts(text: str, path: Path) -> tuple[bool, bool, str]:
    """(schema accepts, loader accepts, the loader's message) for a scenario file's text."""
    path.write_text(text, encoding="utf-8")
    errors = [e.message for e in _validator(scenario_schema()).iter_errors(
        yaml.safe_load(text))]
    try:
        load_scenario(str(path))
        loader, message = True, ""
    except InputError as exc:
        loader, message = False, str(exc)
    return not errors, loader, message or "; ".join(errors)[:300]


def _text(data: dict) -> str:
    return _EXPONENT_TEXT.sub(r"\2", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _apply(target: dict, updates: dict) -> None:
    for key, value in updates.items():
        if value is DEL:
            target.pop(key, None)
        else:
            target[key] = value


# (where: "top" or a task of BASE_SCENARIO, the keys set (DEL: removed), the loader's verdict)
MANY_TASKS = [{"name": f"t{i}", "model": "yolov3", "fps": 1} for i in range(1001)]
CASES = [
    # top level
    ("top", {"latency_db": DEL}, False),  # review 1: required
    ("top", {"latency_db": ""}, False), ("top", {"latency_db": "  "}, False),
    ("top", {"name": "x" * 200}, True), ("top", {"name": "x" * 201}, False),
    ("top", {"name": ""}, False), ("top", {"name": " "}, False),
    ("top", {"name": "a\tb"}, False), ("top", {"name": "a\u00a0b"}, False),
    ("top", {"name": 5}, False),
    ("top", {"description": "two\nlines\tand a tab"}, True), ("top", {"description": ""}, False),
    ("top", {"description": "x" * 4000}, True), ("top", {"description": "x" * 4001}, False),
    ("top", {"description": "bell\x07"}, False),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": 1024}}, True),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": 1025}}, False),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": 0}}, False),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": 2.0}}, True),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": 1.5}}, False),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": "2e0"}}, True),
    ("top", {"platform": {"cpu": 1, "gpu": 1, "npu": True}}, False),
    ("top", {"platform": {}}, False),
    ("top", {"horizon": "1.5h"}, True), ("top", {"horizon": ".5s"}, True),
    ("top", {"horizon": "16.67 ms"}, True), ("top", {"horizon": "0s"}, False),
    ("top", {"horizon": "0.0ms"}, False), ("top", {"horizon": 0}, False),
    ("top", {"horizon": 60}, False), ("top", {"horizon": "1e3ms"}, False),
    ("top", {"horizon": "100msec"}, False), ("top", {"horizon": "-1s"}, False),
    ("top", {"horizon": "100ms\n"}, False), ("top", {"horizon": "x" * 38 + "1s"}, False),
    ("top", {"drain": "5s"}, True), ("top", {"drain": "0s"}, False),
    ("top", {"after_horizon": "stop"}, True), ("top", {"after_horizon": "halt"}, False),
    ("top", {"granularity": "model"}, True), ("top", {"granularity": "group:4"}, True),
    ("top", {"granularity": "group:01"}, True), ("top", {"granularity": "group:100000"}, True),
    ("top", {"granularity": "group:0"}, False), ("top", {"granularity": "group:100001"}, False),
    ("top", {"granularity": "group:0000001"}, False), ("top", {"granularity": "group:"}, False),
    ("top", {"on_miss": "continue"}, True), ("top", {"on_miss": "skip"}, False),
    ("top", {"preemption": "restart"}, True), ("top", {"preemption": "pause"}, False),
    ("top", {"execution": [0.9, 1.1]}, True), ("top", {"execution": [0.5, 100]}, True),
    ("top", {"execution": [1, 1]}, True), ("top", {"execution": ["9e-1", "1.1e0"]}, True),
    ("top", {"execution": [0, 1]}, False), ("top", {"execution": [1.1, 1.2]}, False),
    ("top", {"execution": [0.5, 101]}, False), ("top", {"execution": [0.9]}, False),
    ("top", {"execution": [0.9, 1, 1.1]}, False),
    ("top", {"mapping": {"llama3.2-1b/prefill": "npu"}}, True), ("top", {"mapping": {}}, True),
    ("top", {"mapping": {"yolov3": 3}}, False),
    ("top", {"tasks": []}, False), ("top", {"tasks": MANY_TASKS}, False),
    ("top", {"unknown": 1}, False),
    # a periodic task
    ("od", {"fps": "3e1"}, True),  # review 3: an exponent (text to PyYAML)
    ("od", {"fps": "1.5e1"}, True), ("od", {"fps": 1e6}, True), ("od", {"fps": 1e-6}, True),
    ("od", {"fps": 0}, False), ("od", {"fps": -30}, False), ("od", {"fps": 1000001}, False),
    ("od", {"fps": 9e-7}, False), ("od", {"fps": "fast"}, False), ("od", {"fps": True}, False),
    ("od", {"fps": "0e1"}, False), ("od", {"fps": "-3e1"}, False),
    ("od", {"fps": DEL, "period": "16ms"}, True), ("od", {"period": "16ms"}, False),
    ("od", {"fps": DEL, "period": "0ms"}, False), ("od", {"fps": DEL}, False),
    ("od", {"deadline": "10ms"}, True), ("od", {"deadline": "0ms"}, False),
    ("od", {"phase": "5ms"}, True), ("od", {"phase": 0}, True), ("od", {"phase": 0.0}, True),
    ("od", {"phase": "0ms"}, True), ("od", {"phase": "-1ms"}, False),
    ("od", {"phase": "0"}, False), ("od", {"phase": 5}, False),
    ("od", {"weight": 2}, True), ("od", {"weight": "1e2"}, True), ("od", {"weight": 1e6}, True),
    ("od", {"weight": 0}, False), ("od", {"weight": 1000001}, False),
    ("od", {"jitter": "1ms"}, True), ("od", {"jitter": 0}, True),
    ("od", {"jitter": "-1ms"}, False),
    ("od", {"arrivals": {"every": "1s"}}, False), ("od", {"output_tokens": 3}, False),
    ("od", {"name": ""}, False), ("od", {"name": "x" * 201}, False), ("od", {"name": DEL}, False),
    ("od", {"model": ""}, False), ("od", {"model": DEL}, False),
    # a periodic task whose latency depends on the input length, and one after another
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": 128}, True),
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": "1e2"}, True),
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": 128.0}, True),
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": "1.28e2"}, True),
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": 12.5}, False),
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": 0}, False),
    ("new", {"name": "enc", "model": "gte-base", "fps": 1, "input_tokens": 10**7 + 1}, False),
    ("new", {"name": "od2", "model": "yolov3", "fps": 60, "after": "od"}, True),
    ("new", {"name": "od2", "model": "yolov3", "fps": 60, "after": ""}, False),
    # a request task
    ("rag", {"arrivals": {"poisson": 0.2}}, False),  # review 2: a seed is required
    ("rag", {"arrivals": {"poisson": 0.2, "seed": 7}}, True),
    ("rag", {"arrivals": {"poisson": "2e-1", "seed": 7, "start": "1s"}}, True),
    ("rag", {"arrivals": {"poisson": 0.2, "seed": 2**63 - 1}}, True),
    ("rag", {"arrivals": {"poisson": 0.2, "seed": 0}}, True),
    ("rag", {"arrivals": {"poisson": 0.2, "seed": 2**63}}, False),
    ("rag", {"arrivals": {"poisson": 0.2, "seed": -1}}, False),
    ("rag", {"arrivals": {"poisson": 0, "seed": 1}}, False),
    ("rag", {"arrivals": {"poisson": 2e6, "seed": 1}}, False),
    ("rag", {"arrivals": {"every": "1s", "start": "1s"}}, True),
    ("rag", {"arrivals": {"every": "1s", "start": 0}}, True),
    ("rag", {"arrivals": {"every": "1s", "seed": 1}}, False),
    ("rag", {"arrivals": {"every": "0s"}}, False), ("rag", {"arrivals": {"start": "1s"}}, False),
    ("rag", {"arrivals": {"times": ["0s", "1s"]}}, True),
    ("rag", {"arrivals": {"times": [0, "1s"]}}, True),
    ("rag", {"arrivals": {"times": []}}, False), ("rag", {"arrivals": {"times": "1s"}}, False),
    ("rag", {"arrivals": {"times": ["-1s"]}}, False),
    ("rag", {"arrivals": {"times": ["0s"], "start": "1s"}}, False),
    ("rag", {"arrivals": {"times": ["0s"], "seed": 1}}, False),
    ("rag", {"arrivals": {"every": "1s", "times": ["0s"]}}, False),
    ("rag", {"arrivals": {}}, False), ("rag", {"arrivals": "every 1s"}, False),
    ("rag", {"arrivals": {"file": "requests.csv"}}, True),
    ("rag", {"arrivals": {"file": "requests.csv", "seed": 1}}, False),
    ("rag", {"arrivals": {"file": ""}}, False),
    ("rag", {"arrivals": DEL}, False),
    ("rag", {"deadline": "1s"}, True), ("rag", {"deadline": "0s"}, False),
    ("rag", {"weight": 3}, True), ("rag", {"jitter": "2ms"}, True),
    ("rag", {"fps": 3}, False), ("rag", {"phase": "1ms"}, False),
    ("llm", {"arrivals": {"every": "1s"}}, False),  # both arrivals and after
    ("llm", {"after": DEL, "arrivals": {"every": "1s"}}, True),
    ("llm", {"output_tokens": 8}, True), ("llm", {"output_tokens": "1e1"}, True),
    ("llm", {"output_tokens": 8.0}, True), ("llm", {"output_tokens": 0}, False),
    ("llm", {"output_tokens": 10**6 + 1}, False), ("llm", {"input_tokens": "6.4e1"}, True),
    ("llm", {"ttft": "2s"}, True), ("llm", {"ttft": "0s"}, False),
    ("llm", {"tpt": "50ms"}, True), ("llm", {"tpt": "50"}, False),
]


def _case_id(case) -> str:
    where, updates, _ok = case
    return f"{where}:" + ",".join(f"{k}={'DEL' if v is DEL else v!r}"[:40] for k, v in
                                  updates.items())


def _case_file(case, tmp_path: Path) -> str:
    where, updates, _ok = case
    data = copy.deepcopy(BASE_SCENARIO)
    if where == "top":
        _apply(data, updates)
    elif where == "new":
        data["tasks"].append(dict(updates))
    else:
        _apply(next(t for t in data["tasks"] if t["name"] == where), updates)
    (tmp_path / "requests.csv").write_text("time\n0s\n1s\n")
    return _text(data)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_the_schema_and_the_loader_agree_on_each_field(tmp_path, case):
    schema, loader, why = _verdicts(_case_file(case, tmp_path), tmp_path / "case.yaml")
    assert loader == case[2], why
    assert schema == loader, why


def test_every_key_the_loader_takes_has_agreement_cases():
    """A key added to the loader needs cases above (and its place in the schema)."""
    top = {k for where, u, _ in CASES if where == "top" for k in u}
    task = {k for where, u, _ in CASES if where != "top" for k in u}
    arrivals = {k for _, u, _ in CASES if isinstance(u.get("arrivals"), dict)
                for k in u["arrivals"]}
    assert set(TOP_KEYS) <= top
    assert set(PERIODIC_KEYS) | set(REQUEST_KEYS) <= task
    assert set(ARRIVAL_KEYS) <= arrivals
    assert {True, False} <= {ok for *_, ok in CASES}


def _doc_examples() -> list[tuple[str, str]]:
    """Every scenario in the docs and the README (a fenced yaml block with tasks) and
    under examples/ and instances/."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        blocks = re.findall(r"^```ya?ml\n(.*?)^```", doc.read_text(encoding="utf-8"),
                            re.DOTALL | re.MULTILINE)
        found += [(f"{doc.name}#{i}", b) for i, b in enumerate(blocks)
                  if isinstance(yaml.safe_load(b), dict) and "tasks" in yaml.safe_load(b)]
    files = [*sorted((ROOT / "examples").rglob("*.y*ml")), *SCENARIOS]
    found += [(p.name, p.read_text(encoding="utf-8")) for p in files
              if isinstance(yaml.safe_load(p.read_text()), dict)
              and "tasks" in yaml.safe_load(p.read_text())]
    return found


EXAMPLES = _doc_examples()


def _own_database(text: str, tmp_path: Path) -> None:
    """An example naming a database of its own (docs/guide.md: my_laptop): the built-in
    one's rows, a frame model's also under each model it names that is not there."""
    data = yaml.safe_load(text)
    if data.get("latency_db") in (None, "ryzen_ai_9_365"):
        return
    source = ROOT / "latency_db" / "ryzen_ai_9_365" / "latency.csv"
    rows = list(csv.DictReader(source.open(encoding="utf-8")))
    known = {r["model"] for r in rows}
    extra = [{**r, "model": t["model"]} for t in data["tasks"] if t["model"] not in known
             for r in rows if r["model"] == "yolov3"]
    folder = tmp_path / data["latency_db"]
    folder.mkdir()
    with (folder / "latency.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + extra)


def test_the_docs_have_scenario_examples():
    names = {n.split("#")[0] for n, _ in EXAMPLES}
    assert {"files-and-output.md", "guide.md"} <= names and len(SCENARIOS) >= 4


@pytest.mark.parametrize("name, text", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_every_example_scenario_is_valid_to_both(tmp_path, name, text):
    _own_database(text, tmp_path)
    (tmp_path / "requests.csv").write_text("time\n0s\n")
    schema, loader, why = _verdicts(text, tmp_path / "example.yaml")
    assert schema and loader, why


@pytest.mark.parametrize("where, good, bad", [
    ("top", {"latency_db": "ryzen_ai_9_365"}, {"latency_db": DEL}),  # 1: latency_db required
    ("rag", {"arrivals": {"poisson": 0.2, "seed": 7}}, {"arrivals": {"poisson": 0.2}}),  # 2
    ("od", {"fps": "3e1"}, {"fps": "3e1fps"}),  # 3: a number with an exponent
], ids=["latency_db required", "poisson needs a seed", "fps with an exponent"])
def test_the_review_findings_hold_both_ways(tmp_path, where, good, bad):
    for updates, ok in ((good, True), (bad, False)):
        schema, loader, why = _verdicts(_case_file((where, updates, ok), tmp_path),
                                        tmp_path / "case.yaml")
        assert schema == loader == ok, why


def test_the_command_prints_the_schema_the_tests_check(capsys):
    code, out, _err = run_cli(["schema", "scenario"], capsys)
    assert code == 0 and json.loads(out) == json.loads(json.dumps(scenario_schema()))
