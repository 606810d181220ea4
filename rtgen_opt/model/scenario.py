"""Scenario files: schema, loading, ``--set`` overrides and validation (docs/files-and-output.md).

Validation is strict and finishes before anything is computed: an unknown key, a wrong
type, an impossible value or a reference to something that does not exist raises one
``InputError`` naming the file, the field (``tasks.od.fps``) and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.fields import Fields
from rtgen_opt.model.latency import LatencyDB, SeqLenOutOfRange, load_db, resolve_db
from rtgen_opt.model.overrides import apply_override as _apply_override
from rtgen_opt.model.overrides import blame_override
from rtgen_opt.model.request_trace import read_request_trace
from rtgen_opt.resources import data_dir
from rtgen_opt.safeload import load_yaml, read_limited
from rtgen_opt.units import parse_duration

TOP_KEYS = ("name", "description", "latency_db", "platform", "horizon", "drain", "after_horizon",
            "granularity", "on_miss", "preemption", "execution", "mapping", "tasks")
PERIODIC_KEYS = ("name", "model", "fps", "period", "deadline", "phase", "weight", "after",
                 "input_tokens", "jitter")
REQUEST_KEYS = ("name", "model", "arrivals", "after", "input_tokens", "output_tokens", "ttft",
                "tpt", "deadline", "weight", "jitter")
MAX_EXECUTION_FACTOR = 100  # `execution: [lo, hi]`: hi at most this (a typo guard)
ARRIVAL_KINDS = ("every", "times", "poisson", "file")
ARRIVAL_KEYS = ("every", "start", "times", "poisson", "seed", "file")
MAX_DB_REF_CHARS = 4096  # `latency_db`: a name or a path
MAX_DESCRIPTION_CHARS = 4000
ON_MISS = ("drop", "continue")
PREEMPTION = ("none", "restart")
AFTER_HORIZON = ("continue", "stop")  # frames go on through the drain, or stop


@dataclass(frozen=True)
class Arrivals:
    """When a request task's jobs arrive: every ``every`` from ``start``, at explicit
    ``times``, or as a Poisson process of ``rate`` per second drawn with ``seed``."""

    kind: str
    start: Fraction = Fraction(0)
    every: Fraction | None = None
    times: tuple[Fraction, ...] = ()
    rate: float | None = None
    seed: int | None = None
    file: str | None = None  # the request trace the ``times`` were read from, as written


@dataclass(frozen=True)
class TaskSpec:
    """One task as written in the scenario (times in exact seconds)."""

    name: str
    model: str
    kind: str  # "periodic" | "request"
    period: Fraction | None = None
    deadline: Fraction | None = None  # relative; periodic default = period
    phase: Fraction = Fraction(0)
    weight: float = 1.0
    arrivals: Arrivals | None = None
    after: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    ttft: Fraction | None = None
    tpt: Fraction | None = None
    jitter: Fraction = Fraction(0)  # ready anywhere in [arrival, arrival + jitter]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario."""

    name: str
    description: str
    source: str  # file path (or built-in name) used in messages
    db: LatencyDB
    platform: dict[str, int]  # backend -> instances, in latency-database order
    tasks: tuple[TaskSpec, ...]
    horizon: Fraction | None = None
    drain: Fraction | None = None
    after_horizon: str = "continue"
    granularity: str = "layer"
    on_miss: str = "drop"
    preemption: str = "none"
    mapping: dict[tuple[str, str], str] = field(default_factory=dict)
    execution: tuple[float, float] = (1.0, 1.0)  # actual durations in [lo, hi] x nominal

    def layers_per_segment(self, layers: int) -> int:
        """How many consecutive layers one segment groups under this granularity."""
        if self.granularity == "layer":
            return 1
        if self.granularity == "model":
            return layers
        return int(self.granularity.split(":")[1])

    def task(self, name: str) -> TaskSpec:
        return next(t for t in self.tasks if t.name == name)


# ---------------------------------------------------------------------------- loading


def builtin_scenarios() -> dict[str, Path]:
    """Built-in scenarios by name."""
    return {p.stem: p for p in sorted(data_dir("instances").glob("*.yaml"))}


def resolve_scenario(ref: str) -> Path:
    """A scenario path from a built-in name (``scenario_c``) or a path."""
    path = Path(ref)
    try:
        if path.is_file():
            return path
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file
        pass
    builtin = builtin_scenarios()
    if ref in builtin:
        return builtin[ref]
    names = ", ".join(builtin)
    looks_like_a_path = "/" in ref or ref.endswith((".yaml", ".yml"))
    raise InputError(ref, "", f"a built-in scenario ({names}) or the path of a YAML file"
                     + (": no such file" if looks_like_a_path else ""))


def load_scenario(ref: str, overrides: list[str] | tuple[str, ...] = (),
                  latency: str = "median") -> Scenario:
    """Load, override (``--set key=value``) and validate a scenario.

    ``latency`` picks the database statistic the scenario is scheduled with (median, p99).
    """
    path = resolve_scenario(ref)
    source = str(path)
    text = read_limited(path, source, "a YAML scenario file", limits.MAX_SCENARIO_BYTES)
    raw = load_yaml(text, source)
    if raw is None:
        raise InputError(source, "", "a mapping of scenario keys (the file is empty)")
    if not isinstance(raw, dict):
        raise InputError(source, "", "a mapping of scenario keys", type(raw).__name__)
    for assignment in overrides:
        apply_override(raw, assignment)
    try:
        return _validate(raw, source, path, latency)
    except InputError as exc:
        raise blame_override(exc, source, overrides) from None


def apply_override(raw: dict, assignment: str) -> None:
    """Apply one ``--set key=value`` to the raw scenario mapping (overrides.py)."""
    _apply_override(raw, assignment, TOP_KEYS)


# ---------------------------------------------------------------------------- validation


class _Fields(Fields):
    """A scenario file's mapping: texts are printable and bounded; durations, numbers and
    integers besides."""

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] = (),
             max_chars: int = limits.MAX_NAME_CHARS, lines: bool = False) -> str:
        """A non-empty text of printable characters (``lines``: newlines and tabs too)."""
        value = super().text(key, default, choices)
        if key not in self.mapping:
            return value  # the default
        if len(value) > max_chars:
            raise self.error(key, f"a text of at most {max_chars} characters",
                             f"{len(value)} characters")
        if not all(c.isprintable() or (lines and c in "\n\t") for c in value):
            raise self.error(key, "printable text (no control characters)", value)
        return value

    def duration(self, key: str, *, positive: bool = True) -> Fraction | None:
        if key not in self.mapping:
            return None
        return self._duration_value(key, self.mapping[key], positive)

    def _duration_value(self, key: str, value: object, positive: bool) -> Fraction:
        try:
            seconds = parse_duration(value, positive)
        except ValueError as exc:
            raise self.error(key, str(exc), value) from None
        if positive and seconds <= 0:
            raise self.error(key, "a positive duration", value)
        return seconds

    def number(self, key: str, minimum: float = 0, maximum: float = math.inf) -> float | None:
        """A positive number (YAML int or float, not a bool or a string) within
        [minimum, maximum], compared as the decimal written (``1e-6`` is 1/10**6 exactly,
        as a JSON Schema validator compares it, not the float just below)."""
        if key not in self.mapping:
            return None
        value = self.mapping[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                value > 0 and (isinstance(value, int) or math.isfinite(value))):
            raise self.error(key, "a positive number", value)
        if not minimum <= Fraction(str(value)) <= maximum:
            raise self.error(key, f"a number from {float(minimum):g} to {float(maximum):g}",
                             value)
        return float(value) if isinstance(value, int) else value

    def integer(self, key: str, minimum: int = 1, maximum: int | None = None) -> int | None:
        """An integer; a float with no fraction counts (``1e3``, ``64.0``: JSON, and so the
        schema, make no difference between 64 and 64.0)."""
        if key not in self.mapping:
            return None
        value = self.mapping[key]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"an integer >= {minimum}", value)
        if maximum is not None and value > maximum:
            raise self.error(key, f"an integer from {minimum} to {maximum:,}", value)
        return value


def _validate(raw: dict, source: str, path: Path, latency: str = "median") -> Scenario:
    top = _Fields(source, "", raw, TOP_KEYS)
    db_ref = top.text("latency_db", max_chars=MAX_DB_REF_CHARS)
    db_path = resolve_db(db_ref, path.parent)
    if db_path is None:
        raise top.error("latency_db", "a built-in database name or a path to one (relative "
                        "to the scenario file)", db_ref)
    db = load_db(db_path, latency=latency)
    platform = _platform(top, db)
    granularity = top.text("granularity", "layer")
    if granularity not in ("layer", "model") and not _is_group(granularity):
        raise top.error("granularity", f"layer, model or group:N with N from 1 to "
                        f"{limits.MAX_LAYERS}", granularity)
    tasks = _tasks(top, db, platform)
    return Scenario(
        name=top.text("name", path.stem),
        description=top.text("description", "", max_chars=MAX_DESCRIPTION_CHARS, lines=True),
        source=source,
        db=db,
        platform=platform,
        tasks=tasks,
        horizon=top.duration("horizon"),
        drain=top.duration("drain"),
        after_horizon=top.text("after_horizon", "continue", AFTER_HORIZON),
        granularity=granularity,
        on_miss=top.text("on_miss", "drop", ON_MISS),
        preemption=top.text("preemption", "none", PREEMPTION),
        mapping=_mapping(top, db, platform, tasks),
        execution=_execution(top),
    )


def _execution(top: _Fields) -> tuple[float, float]:
    """`execution: [lo, hi]` with 0 < lo <= 1 <= hi <= MAX_EXECUTION_FACTOR."""
    if not top.has("execution"):
        return (1.0, 1.0)
    value = top.mapping["execution"]
    expected = (f"[lo, hi]: two numbers with 0 < lo <= 1 <= hi <= {MAX_EXECUTION_FACTOR} "
                "(actual durations within lo..hi x the nominal latency)")
    if not isinstance(value, list) or len(value) != 2 or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for x in value):
        raise top.error("execution", expected, value)
    lo, hi = (float(x) for x in value)
    if not 0 < lo <= 1 <= hi <= MAX_EXECUTION_FACTOR:
        raise top.error("execution", expected, value)
    return (lo, hi)


def _is_group(text: str) -> bool:
    kind, _, n = text.partition(":")
    return (kind == "group" and n.isascii() and n.isdigit() and len(n) <= 6
            and 1 <= int(n) <= limits.MAX_LAYERS)


def _platform(top: _Fields, db: LatencyDB) -> dict[str, int]:
    if not top.has("platform"):
        return {b: 1 for b in db.backends}
    spec = _Fields(top.source, "platform", top.mapping["platform"], db.backends)
    if not spec.mapping:
        raise top.error("platform", "at least one backend with its number of instances", {})
    return {b: spec.integer(b, maximum=limits.MAX_INSTANCES) for b in db.backends
            if spec.has(b)}


def _tasks(top: _Fields, db: LatencyDB, platform: dict[str, int]) -> tuple[TaskSpec, ...]:
    raw_tasks = top.mapping.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise top.error("tasks", "a non-empty list of tasks", raw_tasks)
    if len(raw_tasks) > limits.MAX_TASKS:
        raise top.error("tasks", f"at most {limits.MAX_TASKS} tasks", len(raw_tasks))
    names: list[str] = []
    specs = []
    for i, raw in enumerate(raw_tasks):
        where = f"tasks[{i}]"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str) and raw["name"].strip() \
                and len(raw["name"]) <= limits.MAX_NAME_CHARS and raw["name"].isprintable():
            where = f"tasks.{raw['name']}"
            if raw["name"] in names:
                raise InputError(top.source, where + ".name", "a name no other task has",
                                 raw["name"])
        spec = _task(top.source, where, raw, db, platform)
        names.append(spec.name)
        specs.append(spec)
    specs = _link_after(top.source, specs)
    return tuple(specs)


def _task(source: str, where: str, raw: object, db: LatencyDB,
          platform: dict[str, int]) -> TaskSpec:
    if not isinstance(raw, dict):
        raise InputError(source, where, "a mapping describing a task", raw)
    periodic = "fps" in raw or "period" in raw
    request = "arrivals" in raw or ("after" in raw and not periodic)
    if not periodic and not request:
        raise InputError(source, where, "fps or period (a periodic task), or arrivals or "
                         "after (a request task)")
    own, other = (PERIODIC_KEYS, REQUEST_KEYS) if periodic else (REQUEST_KEYS, PERIODIC_KEYS)
    for key in raw:
        if key in other and key not in own:
            kind = "periodic (it has fps or period)" if periodic else "a request task"
            raise InputError(source, f"{where}.{key}", f"no {key}: this task is {kind}, and "
                             f"{key} belongs to {'request' if periodic else 'periodic'} tasks")
    f = _Fields(source, where, raw, own)
    if periodic and f.has("arrivals"):
        raise f.error("arrivals", "either fps/period (periodic) or arrivals (request), not both")
    name, model = f.text("name"), f.text("model")
    if model not in db.models:
        raise f.error("model", f"a model of latency database {db.name} "
                      f"({', '.join(db.models)})", model)
    _check_backends(f, db, model, platform)
    llm = db.is_llm(model)
    if periodic and llm:
        raise f.error("model", "a single-stage model: an LLM (prefill/decode) is a request "
                      "task, give it arrivals", model)
    common = dict(name=name, model=model,
                  weight=f.number("weight", maximum=limits.MAX_WEIGHT) or 1.0,
                  jitter=f.duration("jitter", positive=False) or Fraction(0),
                  after=f.text("after") if f.has("after") else None,
                  input_tokens=_input_tokens(f, db, model))
    if periodic:
        return TaskSpec(kind="periodic", **common, **_periodic_timing(f))
    if not llm:
        for key in ("output_tokens", "ttft", "tpt"):
            if f.has(key):
                raise f.error(key, "no such field: only an LLM task (prefill/decode) has "
                              f"{key}", f.mapping[key])
    output_tokens = f.integer("output_tokens", maximum=limits.MAX_OUTPUT_TOKENS)
    if llm and output_tokens is None:
        raise f.error("output_tokens", "the number of tokens the LLM generates (an integer "
                      ">= 1)", "nothing")
    spec = TaskSpec(kind="request", **common, arrivals=_arrivals(f), output_tokens=output_tokens,
                    ttft=f.duration("ttft"), tpt=f.duration("tpt"), deadline=f.duration("deadline"))
    if llm:
        _check_llm_lengths(f, db, spec, platform)
    return spec


def _check_backends(f: _Fields, db: LatencyDB, model: str, platform: dict[str, int]) -> None:
    for stage in db.stages(model):
        if not set(db.backends_for(model, stage)) & set(platform):
            raise f.error("model", f"a model with {stage} latency on a backend of the platform "
                          f"({', '.join(platform)}); {model} has it on "
                          f"{', '.join(db.backends_for(model, stage))}", model)


def _input_tokens(f: _Fields, db: LatencyDB, model: str) -> int | None:
    needs = any(db.depends_on_seq_len(model, s) for s in db.stages(model))
    tokens = f.integer("input_tokens", maximum=limits.MAX_SEQ_LEN)
    if needs and tokens is None:
        raise f.error("input_tokens", f"the input length ({model}'s latency depends on it)",
                      "nothing")
    if not needs and tokens is not None:
        raise f.error("input_tokens", f"no input_tokens: {model}'s latency does not depend on "
                      "a sequence length", tokens)
    if tokens is not None and not db.is_llm(model):
        for backend in db.backends_for(model, "frame"):
            _lookup(f, "input_tokens", db, model, "frame", backend, [tokens])
    return tokens


def _check_llm_lengths(f: _Fields, db: LatencyDB, spec: TaskSpec, platform) -> None:
    """Prefill at the prompt length, decode at every context it will reach, on each backend."""
    contexts = [spec.input_tokens + 1, spec.input_tokens + spec.output_tokens]
    for backend in platform:
        if (spec.model, "prefill", backend) in db.curves:
            _lookup(f, "input_tokens", db, spec.model, "prefill", backend, [spec.input_tokens])
        if (spec.model, "decode", backend) in db.curves:
            _lookup(f, "output_tokens", db, spec.model, "decode", backend, contexts)


def _lookup(f: _Fields, key: str, db: LatencyDB, model, stage, backend, lengths) -> None:
    try:
        db.layer_ms(model, stage, backend, lengths)
    except SeqLenOutOfRange as exc:
        raise f.error(key, f"a length the latency database covers ({exc})",
                      f.mapping.get(key)) from None


def _periodic_timing(f: _Fields) -> dict:
    if f.has("fps") and f.has("period"):
        raise f.error("period", "either fps or period, not both", f.mapping["period"])
    if f.has("fps"):
        fps = f.number("fps", minimum=limits.MIN_RATE_HZ, maximum=limits.MAX_RATE_HZ)
        period = 1 / Fraction(str(fps))  # str() keeps 29.97 exact
    else:
        period = f.duration("period")
    return dict(period=period, deadline=f.duration("deadline") or period,
                phase=f.duration("phase", positive=False) or Fraction(0))


def _arrivals(f: _Fields) -> Arrivals | None:
    if not f.has("arrivals"):
        return None  # inherited through `after`, checked when linking
    spec = _Fields(f.source, f.path("arrivals"), f.mapping["arrivals"], ARRIVAL_KEYS)
    kinds = [k for k in ARRIVAL_KINDS if spec.has(k)]
    if len(kinds) != 1:
        raise f.error("arrivals", "exactly one of every, times, poisson or file",
                      kinds or f.mapping["arrivals"])
    kind = kinds[0]
    if kind == "file":
        if spec.has("start") or spec.has("seed"):
            raise spec.error("file", "a request trace alone (no start or seed)")
        return Arrivals("times", times=_trace_file(spec), file=str(spec.mapping["file"]))
    start = spec.duration("start", positive=False) or Fraction(0)
    if kind == "every":
        if spec.has("seed"):
            raise spec.error("seed", "a seed only with poisson arrivals")
        return Arrivals("every", start=start, every=spec.duration("every"))
    if kind == "times":
        times = spec.mapping["times"]
        if not isinstance(times, list) or not times:
            raise spec.error("times", "a non-empty list of durations", times)
        if len(times) > limits.MAX_ARRIVAL_TIMES:
            raise spec.error("times", f"at most {limits.MAX_ARRIVAL_TIMES:,} times", len(times))
        if spec.has("start") or spec.has("seed"):
            raise spec.error("times", "explicit times alone (no start or seed)")
        values = tuple(sorted(spec._duration_value(f"times[{i}]", t, positive=False)
                              for i, t in enumerate(times)))
        return Arrivals("times", times=values)
    seed = spec.integer("seed", minimum=0, maximum=limits.MAX_SEED)
    if seed is None:
        raise spec.error("seed", "an integer seed for the Poisson arrivals (runs are "
                         "reproducible)", "nothing")
    rate = spec.number("poisson", minimum=limits.MIN_RATE_HZ, maximum=limits.MAX_RATE_HZ)
    return Arrivals("poisson", start=start, rate=rate, seed=seed)


def _trace_file(spec: _Fields) -> tuple[Fraction, ...]:
    """``arrivals: {file: requests.csv}``: the path relative to the scenario file."""
    name = spec.mapping["file"]
    if not isinstance(name, str) or not name.strip():
        raise spec.error("file", "the path of a CSV request trace", name)
    base = Path(spec.source).parent if Path(spec.source).is_file() else Path.cwd()
    return read_request_trace(base / name)


def _link_after(source: str, specs: list[TaskSpec]) -> list[TaskSpec]:
    """Check `after` references (existing, same kind, acyclic); requests inherit arrivals."""
    by_name = {s.name: s for s in specs}
    for spec in specs:
        where = f"tasks.{spec.name}"
        if spec.after is None:
            if spec.kind == "request" and spec.arrivals is None:
                raise InputError(source, where + ".arrivals", "arrivals (every, times or "
                                 "poisson), or `after` to inherit another task's")
            continue
        other = by_name.get(spec.after)
        if other is None or other is spec:
            others = ", ".join(n for n in by_name if n != spec.name)
            raise InputError(source, where + ".after", "the name of another task ("
                             + (others or "there is none") + ")", spec.after)
        if other.kind != spec.kind:
            raise InputError(source, where + ".after", f"a {spec.kind} task (job k waits for "
                             f"job k of it)", f"{other.name}, a {other.kind} task")
        if spec.kind == "periodic" and other.period != spec.period:
            raise InputError(source, where + ".after", "a periodic task of the same period",
                             other.name)
        if spec.kind == "request" and spec.arrivals is not None:
            raise InputError(source, where + ".arrivals", "no arrivals: a task with `after` "
                             "inherits those of the task it follows")
    _check_acyclic(source, specs, by_name)
    inherited: dict[str, Arrivals] = {}
    return [_inherit_arrivals(s, by_name, inherited) for s in specs]


def _check_acyclic(source: str, specs: list[TaskSpec], by_name: dict[str, TaskSpec]) -> None:
    """No cycle of `after`; each task is walked once (a chain of thousands stays linear)."""
    done: set[str] = set()
    for spec in specs:
        path: list[str] = []
        on_path: set[str] = set()
        current = spec
        while current is not None and current.name not in done:
            if current.name in on_path:
                cycle = path[path.index(current.name):] + [current.name]
                shown = " -> ".join(cycle if len(cycle) <= 6 else cycle[:3] + ["..."]
                                    + cycle[-2:])
                raise InputError(source, f"tasks.{spec.name}.after", "no cycle of `after`",
                                 shown)
            path.append(current.name)
            on_path.add(current.name)
            current = by_name[current.after] if current.after is not None else None
        done.update(path)


def _inherit_arrivals(spec: TaskSpec, by_name: dict[str, TaskSpec],
                      inherited: dict[str, Arrivals]) -> TaskSpec:
    """A request task with `after` gets the arrivals of the root of its chain (memoised in
    ``inherited``, so resolving a whole chain stays linear)."""
    if spec.kind != "request" or spec.arrivals is not None:
        return spec
    chain, root = [], spec
    while root.arrivals is None and root.name not in inherited:
        chain.append(root.name)
        root = by_name[root.after]
    arrivals = root.arrivals if root.arrivals is not None else inherited[root.name]
    inherited.update(dict.fromkeys(chain, arrivals))
    return replace(spec, arrivals=arrivals)


def _mapping(top: _Fields, db: LatencyDB, platform: dict[str, int],
             tasks: tuple[TaskSpec, ...]) -> dict[tuple[str, str], str]:
    if not top.has("mapping"):
        return {}
    raw = top.mapping["mapping"]
    if not isinstance(raw, dict):
        raise top.error("mapping", "a mapping of model or model/stage to a backend", raw)
    used = {t.model for t in tasks}
    mapping = {}
    for key, backend in raw.items():
        where = f"mapping.{key}"
        if not isinstance(key, str):
            raise InputError(top.source, "mapping", "model or model/stage names as keys", key)
        model, _, stage = key.partition("/")
        if model not in db.models:
            raise InputError(top.source, where, f"a model of {db.name} "
                             f"({', '.join(db.models)})", model)
        stages = [stage] if stage else list(db.stages(model))
        if stage and stage not in db.stages(model):
            raise InputError(top.source, where, f"a stage of {model} "
                             f"({', '.join(db.stages(model))})", stage)
        if not isinstance(backend, str) or backend not in platform:
            raise InputError(top.source, where, f"a backend of the platform "
                             f"({', '.join(platform)})", backend)
        for s in stages:
            if backend not in db.backends_for(model, s):
                raise InputError(top.source, where, f"a backend where {model}/{s} has a "
                                 f"latency ({', '.join(db.backends_for(model, s))})", backend)
            mapping[model, s] = backend
        if model not in used:
            raise InputError(top.source, where, "a model that a task of this scenario uses",
                             model)
    return mapping
