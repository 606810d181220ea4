"""Hostile input, answered: every malformed scenario, database, schedule or command line
ends with exit code 0, 1, 2 or 3 — never a traceback, never an internal error (70) — and
exit 2 comes with one line on stderr of at most ~300 characters.

Two parts: a corpus of the cases once seen to break (each must give exit 2 and name its
field, or a correct answer), and hypothesis strategies that mutate valid inputs. The
default suite runs a few hundred generated cases; ``-m slow`` runs thousands.

The memory limit is lowered for these tests (``limits.set_max_memory``), so that a
generated horizon or rate that would build a huge task set is refused by the size
estimate instead of being built: the peak memory of the whole run is asserted at the end.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import resource
import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtgen_opt import limits
from tests.conftest import BASE_SCENARIO, run_cli

MEMORY_LIMIT = "200MiB"
MAX_ERROR_CHARS = 300
FAST = settings(max_examples=70, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
LONG = settings(max_examples=1500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def small_memory_limit():
    limits.set_max_memory(limits.parse_size(MEMORY_LIMIT, "test"))
    yield
    limits.set_max_memory(None)


def assert_answered(code: int, out: str, err: str) -> None:
    """The promise: a known exit code, no traceback, one short line for bad input."""
    assert code in (0, 1, 2, 3), (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, err[:2000]
        assert len(lines[0]) <= MAX_ERROR_CHARS + 200, lines[0][:600]  # path + message
        assert lines[0].startswith("rtgen-opt: error: "), lines[0][:300]
        assert out == ""


# ---------------------------------------------------------------------------- the corpus

BILLION_LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)])


def write(tmp_path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def scenario_text(**changes) -> str:
    data = copy.deepcopy(BASE_SCENARIO)
    for key, value in changes.items():
        if "." in key:
            task, field = key.split(".", 1)
            next(t for t in data["tasks"] if t["name"] == task)[field] = value
        else:
            data[key] = value
    return yaml.safe_dump(data)


DB_HEADER = "model,stage,backend,seq_len,layers,latency_ms,layer,source\n"
DB_ROW = "yolov3,frame,npu,,1,4.0,,derived\n"


def db_scenario(tmp_path, latency: str, transfers: str | None = None) -> str:
    folder = tmp_path / "db"
    folder.mkdir(exist_ok=True)
    (folder / "latency.csv").write_text(latency)
    if transfers is not None:
        (folder / "transfers.csv").write_text(transfers)
    else:
        (folder / "transfers.csv").unlink(missing_ok=True)
    data = {"latency_db": "db", "horizon": "100ms",
            "tasks": [{"name": "od", "model": "yolov3", "fps": 30}]}
    return write(tmp_path, "s.yaml", yaml.safe_dump(data))


def chain(n: int) -> str:
    """A scenario of n frame tasks, each `after` the previous one."""
    tasks = "".join(f"- {{name: t{i}, model: yolov3, fps: 30{f', after: t{i - 1}' if i else ''}}}\n"
                    for i in range(n))
    return f"latency_db: ryzen_ai_9_365\nhorizon: 10ms\ntasks:\n{tasks}"


# (case, how to make the command line from tmp_path, text the one line must contain)
CORPUS = [
    ("latency of 1e16 ms", lambda p: ["taskset", db_scenario(p, DB_HEADER + DB_ROW.replace(
        "4.0", "1e16"))], "latency_ms"),
    ("negative workers", lambda p: ["check", "scenario_a", "--optimal", "--workers", "-1"],
     "--workers"),
    ("20000 workers", lambda p: ["gap", "scenario_a", "--workers", "20000"], "--workers"),
    ("2**31 workers", lambda p: ["solve", "scenario_a", "--workers", str(2**31)], "--workers"),
    ("seed 1e20", lambda p: ["solve", "scenario_a", "--seed", "1e20"], "--seed"),
    ("seed 2**40", lambda p: ["solve", "scenario_a", "--seed", str(2**40)], "--seed"),
    ("duplicate YAML key", lambda p: ["taskset", write(p, "d.yaml", scenario_text().replace(
        "fps: 60", "fps: 30\n  fps: 1000000"))], "each key once"),
    ("replay of an empty file", lambda p: ["replay", "scenario_a", "--horizon", "100ms",
                                           "--schedule", write(p, "e.csv", "")], "schedule"),
    ("replay of foo,bar", lambda p: ["replay", "scenario_a", "--horizon", "100ms",
                                     "--schedule", write(p, "f.csv", "foo,bar\n")], "schedule"),
    ("JSON schedule with 0.9 as a time", lambda p: ["replay", "scenario_a", "--horizon",
                                                    "100ms", "--schedule", write(
        p, "s.json", json.dumps({"columns": ["job", "task", "segment", "stage", "backend",
                                             "start_us", "end_us"],
                                 "rows": [[0, "seg", 0, "frame", "npu", 0.9, 5]]}))],
     "start_us"),
    ("JSON schedule with false as a time", lambda p: ["replay", "scenario_a", "--horizon",
                                                      "100ms", "--schedule", write(
        p, "s.json", json.dumps({"columns": ["job", "task", "segment", "stage", "backend",
                                             "start_us", "end_us"],
                                 "rows": [[0, "seg", 0, "frame", "npu", False, 5]]}))],
     "start_us"),
    ("binary schedule", lambda p: ["replay", "scenario_a", "--horizon", "100ms", "--schedule",
                                   write(p, "b.csv", bytes(range(256)) * 4)], "b.csv"),
    ("oversized schedule field", lambda p: ["replay", "scenario_a", "--horizon", "100ms",
                                            "--schedule", write(p, "o.csv", "job,task\n"
                                                                + "x" * 300_000 + "\n")],
     "o.csv"),
    ("a database row with an extra cell", lambda p: ["taskset", db_scenario(
        p, DB_HEADER + DB_ROW.strip() + ",extra\n")], "cells"),
    ("transfers naming an unknown backend", lambda p: ["taskset", db_scenario(
        p, DB_HEADER + DB_ROW, "from_backend,to_backend,latency_ms\nnpu,tpu,1\n")],
     "to_backend"),
    ("a NUL byte in a model name", lambda p: ["taskset", db_scenario(
        p, DB_HEADER + DB_ROW + "yo\x00lo,frame,npu,,1,4.0,,derived\n")], "NUL"),
    ("Arabic-Indic digit horizon", lambda p: ["taskset", "scenario_a", "--horizon", "١s"],
     "--horizon"),
    ("billion laughs in a rejected field", lambda p: ["taskset", write(
        p, "bl.yaml", BILLION_LAUGHS + "\n" + scenario_text())], "aliases are expanded"),
    ("horizon 100000s", lambda p: ["taskset", "scenario_c", "--horizon", "100000s"],
     "--max-memory"),
    ("horizon 1000000s", lambda p: ["simulate", "scenario_c", "--horizon", "1000000s"],
     "--max-memory"),
    ("horizon beyond the representable", lambda p: ["simulate", "scenario_c", "--horizon",
                                                    "10000000s"], "--horizon"),
    ("fps 1e9", lambda p: ["taskset", write(p, "f.yaml", scenario_text(**{"od.fps": 1e9}))],
     "tasks.od.fps"),
    ("fps of 400 digits", lambda p: ["taskset", "scenario_a", "--set",
                                     f"seg.fps={10**400}"], "seg.fps"),
    ("weight of 400 digits", lambda p: ["taskset", "scenario_a", "--set",
                                        f"seg.weight={10**400}"], "seg.weight"),
    ("fps 1e-300", lambda p: ["taskset", write(p, "f.yaml", scenario_text(
        **{"od.fps": 1e-300}))], "tasks.od.fps"),
    ("arrivals every 1us", lambda p: ["taskset", write(p, "a.yaml", scenario_text(
        horizon="60s", **{"rag.arrivals": {"every": "1us"}}))], "--max-memory"),
    ("platform npu 1e12", lambda p: ["taskset", "scenario_a", "--set", "platform.npu=1e12"],
     "platform.npu"),
    ("platform npu 10**12", lambda p: ["taskset", "scenario_a", "--set",
                                       "platform.npu=1000000000000"], "platform.npu"),
    ("seq_len of 400 digits", lambda p: ["taskset", db_scenario(
        p, DB_HEADER + "yolov3,frame,npu," + "1" * 400 + ",1,4.0,,derived\n")], "seq_len"),
    ("latency of 400 digits", lambda p: ["taskset", db_scenario(
        p, DB_HEADER + DB_ROW.replace("4.0", "9" * 400))], "latency_ms"),
    ("layers 1e9", lambda p: ["taskset", db_scenario(p, DB_HEADER + DB_ROW.replace(
        ",1,4.0", ",1000000000,4.0"))], "layers"),
    ("poisson 1e9", lambda p: ["taskset", write(p, "p.yaml", scenario_text(
        **{"rag.arrivals": {"poisson": 1e9, "seed": 1}}))], "poisson"),
    ("poisson 1e5 over 60 s", lambda p: ["taskset", write(p, "p.yaml", scenario_text(
        horizon="60s", **{"rag.arrivals": {"poisson": 1e5, "seed": 1}}))], "--max-memory"),
    ("a 10,000-task after chain", lambda p: ["taskset", write(p, "c.yaml", chain(10_000))],
     "KiB"),
    ("a 1,001-task after chain", lambda p: ["taskset", write(p, "c.yaml", chain(1001))],
     "tasks"),
    ("--set value that is bad YAML", lambda p: ["taskset", "scenario_a", "--set",
                                                "llm.input_tokens=[1, 2"], "--set"),
    ("--set alias bomb", lambda p: ["taskset", "scenario_a", "--set",
                                    "llm.input_tokens=" + "[" * 5000], "--set"),
    ("deeply nested YAML", lambda p: ["taskset", write(p, "n.yaml", "tasks: " + "[" * 100_000
                                                       + "]" * 100_000)], "nesting"),
    ("deeply nested JSON schedule", lambda p: ["replay", "scenario_a", "--horizon", "100ms",
                                               "--schedule", write(p, "n.json", "[" * 100_000
                                                                   + "]" * 100_000)],
     "n.json"),
    ("a huge duration", lambda p: ["taskset", write(p, "h.yaml", scenario_text(
        horizon="9" * 30 + "h"))], "horizon"),
    ("a huge drain", lambda p: ["taskset", write(p, "h.yaml", scenario_text(
        drain="99999999999s"))], "drain"),
    ("--time-limit huge", lambda p: ["check", "scenario_a", "--time-limit", "1e300s"],
     "--time-limit"),
    ("--export-model into a missing folder", lambda p: [
        "solve", "scenario_a", "--horizon", "100ms", "--export-model",
        str(p / "missing" / "m.pb")], "--model-out"),  # the option's current name
    ("--schedule-out is a folder", lambda p: [
        "solve", "scenario_a", "--horizon", "100ms", "--schedule-out", str(p)],
     "--schedule-out"),
    ("--trace into a missing folder", lambda p: [
        "simulate", "scenario_a", "--horizon", "100ms", "--trace",
        str(p / "missing" / "t.csv")], "--schedule-out"),  # the option's current name
    ("--max-memory nonsense", lambda p: ["--max-memory", "lots", "taskset", "scenario_a"],
     "--max-memory"),
    ("a task name with a control character", lambda p: ["taskset", write(
        p, "c.yaml", scenario_text().replace("name: od", 'name: "o\\x1bd"'))], "name"),
    ("unknown subcommand", lambda p: ["frobnicate"], "frobnicate"),
    ("missing option value", lambda p: ["taskset", "scenario_a", "--horizon"], "--horizon"),
]


@pytest.mark.parametrize("case, make_args, needle", CORPUS, ids=[c[0] for c in CORPUS])
def test_the_corpus_of_hostile_inputs_gets_exit_2_and_one_line(tmp_path, capsys, case,
                                                                make_args, needle):
    code, out, err = run_cli(make_args(tmp_path), capsys)
    assert_answered(code, out, err)
    assert code == 2, err
    assert needle in err, err


def test_a_chain_of_the_most_tasks_allowed_is_answered(tmp_path, capsys):
    code, out, err = run_cli(["taskset", write(tmp_path, "c.yaml", chain(limits.MAX_TASKS)),
                              "--format", "json"], capsys)
    assert code == 0 and json.loads(out)["jobs"] > limits.MAX_TASKS, err


def test_a_directory_as_output_leaves_nothing_beside_it(tmp_path, capsys):
    target = tmp_path / "out"
    target.mkdir()
    code, out, err = run_cli(["taskset", "scenario_a", "--horizon", "100ms", "--export",
                              str(target)], capsys)
    assert code == 2 and "folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_traces_of_all_policies_are_written_all_or_none(tmp_path, capsys):
    blocker = tmp_path / "t.edf-dyn.csv"  # one of the five targets is a folder
    blocker.mkdir()
    code, _, err = run_cli(["simulate", "scenario_a", "--horizon", "100ms", "--trace",
                            str(tmp_path / "t.csv")], capsys)
    assert code == 2 and "--schedule-out" in err  # --trace is its older alias
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.edf-dyn.csv"]


def test_replay_takes_horizon_and_overrides_from_the_schedule_file_when_asked(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    code, _, _ = run_cli(["simulate", "scenario_a", "--horizon", "150ms", "--policy", "ftf",
                          "--set", "llm.output_tokens=3", "--trace", str(trace)], capsys)
    assert code == 0
    code, out, err = run_cli(["replay", "scenario_a", "--schedule", str(trace), "--format",
                              "json", "--settings-from-schedule"], capsys)
    assert code == 0 and json.loads(out)["valid"] is True, err
    assert json.loads(out)["settings_from_schedule"] == {"horizon_s": 0.15,
                                                         "set": ["llm.output_tokens=3"]}
    code, _, err = run_cli(["replay", "scenario_a", "--schedule", str(trace)], capsys)
    assert code == 2 and "set" in err  # without the flag the command line's settings rule
    code, _, err = run_cli(["replay", "scenario_a", "--horizon", "300ms", "--schedule",
                              str(trace)], capsys)
    assert code == 2 and "horizon" in err and "0.15s" in err


# ---------------------------------------------------------------------------- strategies

NUMBERS = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 10**12, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e300, -1e300, 1e-300, 5e-324, 0.5, 1e9, 1e16]),
)
TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "1s", "0", "0s", "-1s", "1e16ms", "١s", "5ms\n", "9" * 50 + "s",
                     "1_000ms", "nan", "inf", "16.67 msec", "2min", "group:0", "group:١",
                     "group:99999999999", "model", "layer", "stop", "continue", "\x00",
                     "a\x1bb", "x" * 5000, "npu", "gpu", "yolov3", "llama3.2-1b"]),
)
LEAVES = st.one_of(NUMBERS, TEXTS, st.booleans(), st.none())
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXTS, inner, max_size=4)), max_leaves=8)

TOP_FIELDS = ["name", "description", "latency_db", "platform", "horizon", "drain",
              "after_horizon", "granularity", "on_miss", "preemption", "mapping", "tasks",
              "bogus"]
TASK_FIELDS = ["name", "model", "fps", "period", "deadline", "phase", "weight", "after",
               "input_tokens", "output_tokens", "arrivals", "ttft", "tpt", "bogus"]
ARRIVAL_FIELDS = ["every", "start", "times", "poisson", "seed"]


@st.composite
def mutated_scenarios(draw) -> dict:
    """The base scenario with a few fields replaced, added or removed."""
    data = copy.deepcopy(BASE_SCENARIO)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "task", "arrivals", "platform"]))
        value = draw(VALUES)
        remove = draw(st.booleans()) and draw(st.booleans())
        if where == "top":
            target, key = data, draw(st.sampled_from(TOP_FIELDS))
        elif where == "task":
            tasks = data.get("tasks")
            target = draw(st.sampled_from(tasks)) if isinstance(tasks, list) and tasks else data
            target = target if isinstance(target, dict) else data
            key = draw(st.sampled_from(TASK_FIELDS))
        elif where == "arrivals":
            target = data["tasks"][1] if isinstance(data.get("tasks"), list) and len(
                data["tasks"]) > 1 and isinstance(data["tasks"][1], dict) else data
            target = target.setdefault("arrivals", {}) if isinstance(
                target.get("arrivals", {}), dict) else data
            key = draw(st.sampled_from(ARRIVAL_FIELDS))
        else:
            target = data.setdefault("platform", {}) if isinstance(
                data.get("platform", {}), dict) else data
            key = draw(st.sampled_from(["cpu", "gpu", "npu", "tpu"]))
        if remove:
            target.pop(key, None)
        else:
            target[key] = value
    return data


def dump(data: object) -> str:
    return yaml.safe_dump(data, allow_unicode=True)


@st.composite
def scenario_texts(draw) -> str:
    """YAML text: a mutated scenario, sometimes with its text damaged."""
    text = dump(draw(mutated_scenarios()))
    damage = draw(st.sampled_from(["none", "none", "cut", "insert", "duplicate", "alias"]))
    if damage == "cut":
        text = text[:draw(st.integers(0, len(text)))]
    elif damage == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(alphabet=string.printable + "\x00\t[]{}&*!|>:-#",
                                        max_size=10)) + text[at:]
    elif damage == "duplicate":
        line = draw(st.sampled_from(text.splitlines() or [""]))
        text = text + line + "\n"
    elif damage == "alias":
        text = BILLION_LAUGHS + "\n" + text
    return text


COMMANDS = [["taskset", "--format", "json"], ["scenarios", "show", "--format", "json"],
            ["simulate", "--policy", "fcfs-aot", "--format", "json"]]


@FAST
@given(text=scenario_texts(), command=st.sampled_from(COMMANDS))
def test_fuzzed_scenarios_are_answered(tmp_path, capsys, text, command):
    path = write(tmp_path, "fuzz.yaml", text)
    args = command[:2] + [path] + command[2:] if command[0] == "scenarios" else \
        command[:1] + [path] + command[1:]
    assert_answered(*run_cli(args, capsys))


DB_COLUMNS = ["model", "stage", "backend", "seq_len", "layers", "latency_ms", "layer",
              "source"]
DB_ROWS = [["yolov3", "frame", "npu", "", "2", "4.0", "", "derived"],
           ["yolov3", "frame", "gpu", "", "2", "6.0", "", "derived"],
           ["gte", "frame", "npu", "128", "2", "3.0", "", "derived"],
           ["gte", "frame", "npu", "512", "2", "9.0", "", "derived"]]
CELLS = st.one_of(TEXTS, NUMBERS.map(str))


@st.composite
def databases(draw) -> tuple[str, str | None]:
    """latency.csv (and sometimes transfers.csv) with cells, rows or the header damaged."""
    header = list(DB_COLUMNS)
    rows = [list(r) for r in DB_ROWS]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["cell", "cell", "extra", "short", "header", "drop"]))
        row = draw(st.sampled_from(rows)) if rows else header
        if kind == "cell":
            row[draw(st.integers(0, len(row) - 1))] = draw(CELLS)
        elif kind == "extra":
            row.append(draw(CELLS))
        elif kind == "short" and row:
            row.pop()
        elif kind == "header":
            header[draw(st.integers(0, len(header) - 1))] = draw(CELLS)
        elif rows:
            rows.remove(row)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    transfers = None
    if draw(st.booleans()):
        transfers = "from_backend,to_backend,latency_ms\n" + ",".join(
            draw(st.lists(st.one_of(st.sampled_from(["npu", "gpu", "cpu", "1.5"]), CELLS),
                          min_size=1, max_size=4))) + "\n"
    return out.getvalue(), transfers


@FAST
@given(db=databases(), show=st.booleans())
def test_fuzzed_databases_are_answered(tmp_path, capsys, db, show):
    latency, transfers = db
    scenario = db_scenario(tmp_path, latency, transfers)
    args = ["db", "show", "--db", str(tmp_path / "db"), "--format", "json"] if show else \
        ["taskset", scenario, "--format", "json"]
    assert_answered(*run_cli(args, capsys))


_TRACE_CACHE: dict[str, str] = {}


def real_trace(tmp_path_factory, capsys) -> str:
    """A valid CSV trace of scenario_a over 100 ms (made once)."""
    if "csv" not in _TRACE_CACHE:
        path = tmp_path_factory.mktemp("trace") / "t.csv"
        code, _, err = run_cli(["simulate", "scenario_a", "--horizon", "100ms", "--policy",
                                "ftf", "--trace", str(path)], capsys)
        assert code == 0, err
        _TRACE_CACHE["csv"] = path.read_text()
    return _TRACE_CACHE["csv"]


@st.composite
def schedule_damage(draw):
    return draw(st.lists(st.tuples(st.sampled_from(["cell", "row", "meta", "header", "cut",
                                                    "json"]),
                                   st.integers(0, 10**6), CELLS), min_size=1, max_size=3))


def damaged(text: str, damage) -> tuple[str, str]:
    """Apply the damage to a CSV trace; returns (file name, text)."""
    meta, body = text.split("\n", 1)
    rows = list(csv.reader(io.StringIO(body)))
    name = "s.csv"
    for kind, at, cell in damage:
        if kind == "cell" and len(rows) > 1 and rows[1 + at % (len(rows) - 1)]:
            row = rows[1 + at % (len(rows) - 1)]
            row[at % len(row)] = cell
        elif kind == "row":
            rows.insert(at % (len(rows) + 1), [cell] * (at % 12))
        elif kind == "meta":
            meta = meta[:at % (len(meta) + 1)] + cell
        elif kind == "header" and rows and rows[0]:
            rows[0][at % len(rows[0])] = cell
        elif kind == "cut":
            body = "\n".join(",".join(r) for r in rows)
            return name, (meta + "\n" + body)[:at % (len(body) + 1)]
        elif kind == "json":
            name = "s.json"
    if name == "s.json":
        columns, *cells = rows or [[]]
        as_json = [[int(c) if c.lstrip("-").isdigit() else c for c in r] for r in cells]
        return name, json.dumps({"columns": columns, "rows": as_json})
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return name, meta + "\n" + out.getvalue()


@FAST
@given(damage=schedule_damage(), with_horizon=st.booleans())
def test_fuzzed_schedules_are_answered(tmp_path_factory, capsys, damage, with_horizon):
    name, text = damaged(real_trace(tmp_path_factory, capsys), damage)
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_text(text)
    args = ["replay", "scenario_a", "--schedule", str(path), "--format", "json"]
    assert_answered(*run_cli(args + (["--horizon", "100ms"] if with_horizon else []), capsys))


OPTION_VALUES = st.one_of(TEXTS, NUMBERS.map(str))


@st.composite
def command_lines(draw) -> list[str]:
    """A cheap command with a few options set to arbitrary values."""
    command = draw(st.sampled_from([["taskset", "scenario_a"], ["simulate", "scenario_a",
                                                                "--policy", "edf-dyn"],
                                    ["check", "scenario_a", "--policy", "ftf"],
                                    ["db", "show"], ["scenarios", "list"]]))
    args = list(command)
    if command[0] in ("taskset", "simulate", "check"):
        args += ["--horizon", draw(st.sampled_from(["50ms", "100ms"]))]
    for _ in range(draw(st.integers(1, 3))):
        option = draw(st.sampled_from(["--horizon", "--format", "--set", "--policy",
                                       "--time-limit", "--workers", "--model", "--backend",
                                       "--bogus", "--max-memory", "--slo"]))
        args += [option, draw(OPTION_VALUES)] if option != "--slo" else [option]
    if draw(st.booleans()):
        args = ["--max-memory", draw(st.sampled_from(["150MiB", MEMORY_LIMIT,
                                                      "x"]))] + args
    return args


@FAST
@given(args=command_lines())
def test_fuzzed_command_lines_are_answered(capsys, args):
    assert_answered(*run_cli(args, capsys))


# the long run (-m slow): the same properties, thousands of cases each

@pytest.mark.slow
@LONG
@given(text=scenario_texts(), command=st.sampled_from(COMMANDS))
def test_fuzzed_scenarios_long(tmp_path, capsys, text, command):
    test_fuzzed_scenarios_are_answered.hypothesis.inner_test(tmp_path, capsys, text, command)


@pytest.mark.slow
@LONG
@given(db=databases(), show=st.booleans())
def test_fuzzed_databases_long(tmp_path, capsys, db, show):
    test_fuzzed_databases_are_answered.hypothesis.inner_test(tmp_path, capsys, db, show)


@pytest.mark.slow
@LONG
@given(damage=schedule_damage(), with_horizon=st.booleans())
def test_fuzzed_schedules_long(tmp_path_factory, capsys, damage, with_horizon):
    test_fuzzed_schedules_are_answered.hypothesis.inner_test(tmp_path_factory, capsys, damage,
                                                             with_horizon)


@pytest.mark.slow
@LONG
@given(args=command_lines())
def test_fuzzed_command_lines_long(capsys, args):
    test_fuzzed_command_lines_are_answered.hypothesis.inner_test(capsys, args)


def test_memory_stayed_bounded_over_the_fuzz_run():
    """After every case above (same process): the peak resident memory stayed far below
    what an unchecked task set would take (gigabytes)."""
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert peak_kib < 2 * 2**20, f"peak {peak_kib / 2**20:.1f} GiB"


# ---------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("error, code, words", [
    (RuntimeError("boom"), 70, "internal error (RuntimeError: boom)"),
    (KeyError("x"), 70, "report it"),
    (MemoryError(), 2, "out of memory"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_every_way_a_command_can_fail_is_one_line_and_an_exit_code(monkeypatch, capsys,
                                                                    error, code, words):
    from rtgen_opt.cli import common as cli

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli, "build_taskset", fail)
    got, _, err = run_cli(["taskset", "scenario_a", "--horizon", "100ms"], capsys)
    assert got == code and "Traceback" not in err
    if code != 130:
        assert words in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback_of_an_internal_error(monkeypatch, capsys):
    from rtgen_opt.cli import common as cli

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "build_taskset", fail)
    code, _, err = run_cli(["--debug", "taskset", "scenario_a", "--horizon", "100ms"], capsys)
    assert code == 70 and "Traceback" in err and "RuntimeError: boom" in err


def test_a_solver_crash_is_one_line_naming_the_engine(monkeypatch, capsys):
    from rtgen_opt.errors import SolverCrash

    def crash(*args, **kwargs):
        raise SolverCrash("the MILP engine CBC crashed twice (killed by SIGSEGV; then "
                          "killed by SIGSEGV); try --mip-solver highs or --solver cpsat")

    monkeypatch.setattr("rtgen_opt.optimisation.solve.solve", crash)
    code, _, err = run_cli(["solve", "scenario_a", "--horizon", "100ms", "--solver",
                              "milp"], capsys)
    assert code == 70 and "CBC" in err and "SIGSEGV" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
