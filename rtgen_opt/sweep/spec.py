"""Sweep files: schema, loading and strict validation (`rtgen-opt sweep`).

A sweep file names the scenario(s), a horizon, fixed ``set`` overrides, the axes to vary
and what to run at each point::

    name: seq_len
    scenario: scenario_d            # or  scenarios: [scenario_c, scenario_d]
    horizon: 60s
    set: {llm.output_tokens: 64}    # applied to every point
    grid:                           # cartesian product, the last axis varying fastest
      llm.input_tokens: [32, 256, 1024, 2048]
    zip:                            # keys that vary together: one more factor each
      - {sr.fps: [30, 60], seg.fps: [15, 30]}
    run:
      simulate: {policies: all}
      check: {policies: [ftf, optimal], time_limit: 10s}
    plots: [violation_rate, llm.*.ttft_ms.mean]

As with scenarios, an unknown key, a wrong type or an impossible value raises one
``InputError`` naming the file and the field (``run.check.time_limit``). Overrides are
kept as ``--set`` assignments whose values read back exactly (JSON is YAML); whether the
scenario accepts them is checked per point by ``sweep.plan``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.fields import Fields
from rtgen_opt.model.scenario import resolve_scenario
from rtgen_opt.resources import data_dir
from rtgen_opt.safeload import read_yaml_file
from rtgen_opt.units import parse_duration

TOP_KEYS = ("name", "description", "scenario", "scenarios", "horizon", "set", "grid", "zip",
            "run", "plots")
COMMANDS = ("simulate", "solve", "check", "gap")
MAX_SWEEP_BYTES = 256 * 2**10  # as a scenario file: a sweep file is a page of YAML
# Runs (points x commands) of one sweep: each point's scenario is loaded and kept while
# planning (~0.03 s and a few KB each), so 100,000 is about an hour and a few hundred MB
# of planning — far above a useful sweep, far below what 1 KB of axes can multiply to.
MAX_RUNS = 100_000


# ----------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class Axis:
    """One factor of the product: one key (a grid axis) or several varying together (zip)."""

    keys: tuple[str, ...]
    values: tuple[tuple, ...]  # one tuple per step, a value per key


@dataclass(frozen=True)
class Command:
    """What to run at every point, with validated options (plain JSON values)."""

    name: str
    options: dict

    @property
    def labels(self) -> tuple[str, ...]:
        """The `policy` value of each row this command yields, in order."""
        if self.name in ("simulate", "check"):
            return tuple(self.options["policies"])
        if self.name == "gap":
            from rtgen_opt.simulation.policies.classic import POLICIES

            return (*POLICIES, "optimum")
        return ("optimum",)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    name: str
    description: str
    source: str
    scenarios: tuple[str, ...]  # as written (the `scenario` column)
    scenario_paths: tuple[str, ...]  # resolved, for loading
    base_overrides: tuple[str, ...]  # horizon and `set`, as --set assignments
    axes: tuple[Axis, ...]
    commands: tuple[Command, ...]
    plots: tuple[str, ...] = ()

    @property
    def axis_keys(self) -> tuple[str, ...]:
        return tuple(k for axis in self.axes for k in axis.keys)

    @property
    def num_points(self) -> int:
        return len(self.scenarios) * math.prod(len(a.values) for a in self.axes)


def resolve_sweep(ref: str) -> Path:
    """A sweep file from a path or the name of a built-in example (``seq_len``)."""
    path = Path(ref)
    if path.is_file():
        return path
    try:
        examples = {p.stem: p for p in data_dir("examples").glob("*.yaml")}
    except FileNotFoundError:
        examples = {}
    if ref in examples:
        return examples[ref]
    names = ", ".join(sorted(examples)) or "none installed"
    raise InputError(ref, "", f"the path of a sweep file (YAML) or a built-in example ({names})")


def load_sweep(ref: str) -> SweepSpec:
    """Read and validate a sweep file (everything but the points' scenarios)."""
    path = resolve_sweep(ref)
    source = str(path)
    raw = read_yaml_file(path, source, "a sweep file (YAML)", MAX_SWEEP_BYTES)
    top = _Mapping(source, "", raw, TOP_KEYS)
    scenarios = _scenarios(top)
    base = []
    if top.has("horizon"):
        base.append(assignment("horizon", top.duration_text("horizon")))
    if top.has("set"):
        settings = _Mapping(source, "set", top.get("set"), None)
        base += [assignment(key, _scalar_or_json(settings, key)) for key in settings.keys()]
    axes = _axes(top)
    commands = _commands(top)
    runs = len(scenarios) * math.prod(len(a.values) for a in axes) * len(commands)
    if runs > MAX_RUNS:
        raise top.error("grid" if top.has("grid") else "zip" if top.has("zip") else
                        "scenarios", f"at most {MAX_RUNS:,} runs (scenarios x the axes' "
                        "values x commands)", f"{runs:,}")
    name = top.text("name", path.stem)
    if "/" in name or "\\" in name or name.startswith("."):
        raise top.error("name", "a name without slashes that does not start with a dot (it "
                        "names the default output files)", name)
    return SweepSpec(
        name=name, description=top.text("description", ""),
        source=source, scenarios=tuple(scenarios),
        scenario_paths=tuple(_scenario_path(top, s, path.parent) for s in scenarios),
        base_overrides=tuple(base), axes=axes, commands=commands,
        plots=tuple(_text_list(top, "plots")) if top.has("plots") else ())


class _Mapping(Fields):
    """A sweep file's mapping: keys are non-empty texts; plain values, durations kept as
    written, integers with the command line's bounds, flags."""

    text_keys = True

    def get(self, key: str):
        return self.mapping[key]

    def keys(self) -> list[str]:
        return list(self.mapping)

    def duration_text(self, key: str) -> str:
        value = self.mapping[key]
        try:
            seconds = parse_duration(value, positive=True)
        except ValueError as exc:
            raise self.error(key, str(exc), value) from None
        if seconds <= 0:
            raise self.error(key, "a positive duration", value)
        return value

    def integer(self, key: str, default: int, minimum: int = 0,
                maximum: int = limits.MAX_WORKERS) -> int:
        """An integer in [minimum, maximum] (the command line's bounds)."""
        value = self.mapping.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not \
                minimum <= value <= maximum:
            raise self.error(key, f"an integer from {minimum} to {maximum}", value)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.mapping.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, "true or false", value)
        return value


def _scenarios(top: _Mapping) -> list[str]:
    if top.has("scenario") == top.has("scenarios"):
        raise InputError(top.source, "scenario", "exactly one of scenario (a name or path) "
                         "or scenarios (a list of them)",
                         "both" if top.has("scenario") else "nothing")
    if top.has("scenario"):
        return [top.text("scenario")]
    values = top.get("scenarios")
    if not isinstance(values, list) or not values or not all(
            isinstance(v, str) and v.strip() for v in values):
        raise top.error("scenarios", "a non-empty list of scenario names or paths", values)
    if len(set(values)) != len(values):
        raise top.error("scenarios", "each scenario once", values)
    return values


def _scenario_path(top: _Mapping, ref: str, base: Path) -> str:
    """Paths are relative to the sweep file; built-in names are left as they are."""
    beside = base / ref
    candidate = str(beside) if not Path(ref).is_absolute() and beside.is_file() else ref
    try:
        return str(resolve_scenario(candidate))
    except InputError as exc:
        key = "scenario" if top.has("scenario") else "scenarios"
        raise top.error(key, exc.expected, ref) from None


def _scalar_or_json(mapping: _Mapping, key: str):
    value = mapping.get(key)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise mapping.error(key, "a YAML scalar, list or mapping", value) from None
    return value


def assignment(key: str, value) -> str:
    """A --set assignment whose value reads back as exactly ``value`` (JSON is YAML)."""
    return f"{key}={json.dumps(value)}"


def _axes(top: _Mapping) -> tuple[Axis, ...]:
    axes, seen = [], set()
    if top.has("grid"):
        grid = _Mapping(top.source, "grid", top.get("grid"), None)
        for key in grid.keys():
            axes.append(Axis((key,), tuple((v,) for v in _values(grid, key))))
    if top.has("zip"):
        groups = top.get("zip")
        if not isinstance(groups, list) or not groups:
            raise top.error("zip", "a list of mappings, each KEY: [values] of equal lengths",
                            groups)
        for i, group in enumerate(groups):
            axes.append(_zip_axis(_Mapping(top.source, f"zip[{i}]", group, None)))
    fixed = set(top.get("set")) if isinstance(top.mapping.get("set"), dict) else set()
    if top.has("horizon"):
        fixed.add("horizon")
    for axis in axes:
        for key in axis.keys:
            if key in seen or key in fixed:
                raise InputError(top.source, key, "each key once: on one axis, or fixed "
                                 "by `set` (or the sweep's horizon), not both", key)
            seen.add(key)
    return tuple(axes)


def _values(mapping: _Mapping, key: str, distinct: bool = True) -> list:
    values = mapping.get(key)
    if not isinstance(values, list) or not values:
        raise mapping.error(key, "a non-empty list of values", values)
    for v in values:
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            raise mapping.error(key, "values that are YAML scalars, lists or mappings",
                                v) from None
    if distinct and len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise mapping.error(key, "distinct values", values)
    return values


def _zip_axis(group: _Mapping) -> Axis:
    if not group.keys():
        raise InputError(group.source, group.where, "at least one KEY: [values]", {})
    columns = [_values(group, key, distinct=False) for key in group.keys()]
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        sizes = {k: len(c) for k, c in zip(group.keys(), columns, strict=True)}
        raise InputError(group.source, group.where, "lists of equal length (zipped axes "
                         "vary together)", sizes)
    steps = list(zip(*columns, strict=True))
    if len({json.dumps(s, sort_keys=True) for s in steps}) != len(steps):
        raise InputError(group.source, group.where, "distinct steps (no combination of "
                         "the zipped values twice)", steps)
    return Axis(tuple(group.keys()), tuple(steps))


def _text_list(top: _Mapping, key: str) -> list[str]:
    values = top.get(key)
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not values or not all(
            isinstance(v, str) and v.strip() for v in values):
        raise top.error(key, "a non-empty list of column names (glob patterns allowed)", values)
    return values


# ----------------------------------------------------------------------------- commands


def _commands(top: _Mapping) -> tuple[Command, ...]:
    if not top.has("run"):
        raise top.error("run", f"what to run at each point: one or more of "
                        f"{', '.join(COMMANDS)}", "nothing")
    run = _Mapping(top.source, "run", top.get("run"), COMMANDS)
    if not run.keys():
        raise top.error("run", f"one or more of {', '.join(COMMANDS)}", {})
    commands = []
    for name in run.keys():
        raw = run.get(name)
        opts = _Mapping(top.source, f"run.{name}", {} if raw is None else raw,
                        COMMAND_OPTIONS[name])
        commands.append(Command(name, _OPTION_READERS[name](opts)))
    return tuple(commands)


def _policies(opts: _Mapping, extra: tuple[str, ...] = (), default: str = "all") -> list[str]:
    from rtgen_opt.simulation.policies.classic import POLICIES

    known = (*POLICIES, *extra)
    value = opts.mapping.get("policies", opts.mapping.get("policy", default))
    key = "policies" if opts.has("policies") else "policy"
    names = list(POLICIES) if value == "all" else [value] if isinstance(value, str) else value
    expected = f"all, or one or a list of {', '.join(known)} or FILE.py:CLASS"
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise opts.error(key, expected, value)
    for name in names:
        try:
            if name not in known and policy_file(opts.source, name) is None:
                raise opts.error(key, expected, name)
        except InputError as exc:
            if exc.source != opts.source or exc.field:
                raise
            raise opts.error(key, exc.expected, name) from None
    if len(set(names)) != len(names):
        raise opts.error(key, "each policy once", value)
    if opts.has("policies") and opts.has("policy"):
        raise opts.error("policy", "either policy or policies, not both")
    return names


def policy_file(source: str, spec: str) -> str | None:
    """``FILE.py:CLASS`` as an absolute spec, FILE relative to the sweep file; None for
    anything else (a built-in name).

    A sweep file is data: it may name only a policy file in its own folder (or below it),
    resolved with links followed — never ``../elsewhere/x.py`` or an absolute path. The
    file must exist, but it is not imported here: validation and ``--dry-run`` run no
    code. It is imported when the sweep runs (``load_policy`` in the worker)."""
    path, colon, name = spec.rpartition(":")
    if not colon or not path.endswith(".py"):
        return None
    folder = Path(source).resolve().parent
    if Path(path).is_absolute():
        raise InputError(source, "", "a policy file beside the sweep file (a path relative "
                         "to its folder)", spec)
    resolved = (folder / path).resolve()
    if not resolved.is_relative_to(folder):
        raise InputError(source, "", f"a policy file inside the sweep file's folder "
                         f"({folder}), links followed", spec)
    if not resolved.is_file():
        raise InputError(source, "", "an existing policy file beside the sweep file", spec)
    if not name.isidentifier():
        raise InputError(source, "", "FILE.py:CLASS with a class name", spec)
    return f"{resolved}:{name}"


def _limit(opts: _Mapping, default: str) -> float:
    if not opts.has("time_limit"):
        return float(parse_duration(default))
    return float(parse_duration(opts.duration_text("time_limit")))


def _simulate_options(opts: _Mapping) -> dict:
    policies = _policies(opts)
    return {"policies": policies, "policy_files": _policy_files(opts, policies)}


def _policy_files(opts: _Mapping, names: list[str]) -> dict[str, str]:
    """Label as written -> the absolute FILE.py:CLASS, for the users' policies."""
    files = {name: policy_file(opts.source, name) for name in names}
    return {name: spec for name, spec in files.items() if spec is not None}


def _solve_options(opts: _Mapping) -> dict:
    solver = opts.text("solver", "cpsat", ("cpsat", "milp"))
    mip_solver = opts.text("mip_solver", "cbc", ("cbc", "highs"))
    if solver == "milp":
        from rtgen_opt.formulations.milp import available_engines

        if mip_solver not in available_engines():
            raise opts.error("mip_solver", f"an installed MILP engine "
                             f"({', '.join(available_engines()) or 'none'}; HiGHS: pip "
                             "install 'rtgen-opt[highs]')", mip_solver)
    return {"solver": solver, "mip_solver": mip_solver, "time_limit_s": _limit(opts, "60s"),
            "workers": opts.integer("workers", 1),
            "seed": opts.integer("seed", 0, maximum=limits.MAX_SOLVER_SEED),
            "ttft": opts.text("ttft", "sum", ("sum", "max"))}


def _check_options(opts: _Mapping) -> dict:
    policies = _policies(opts, extra=("optimal",), default="optimal")
    max_fps = opts.text("max_fps") if opts.has("max_fps") else None
    return {"policies": policies, "policy_files": _policy_files(opts, policies),
            "slo": opts.flag("slo", False), "max_fps": max_fps,
            "time_limit_s": _limit(opts, "60s"), "workers": opts.integer("workers", 1)}


def _gap_options(opts: _Mapping) -> dict:
    return {"time_limit_s": _limit(opts, "120s"), "workers": opts.integer("workers", 1)}


# Solver workers default to 1 inside a sweep: the parallelism is across points, and one
# worker makes CP-SAT reproducible bit for bit (it stops on deterministic time).
COMMAND_OPTIONS = {
    "simulate": ("policies", "policy"),
    "solve": ("solver", "mip_solver", "time_limit", "workers", "seed", "ttft"),
    "check": ("policies", "policy", "slo", "max_fps", "time_limit", "workers"),
    "gap": ("time_limit", "workers"),
}
_OPTION_READERS = {"simulate": _simulate_options, "solve": _solve_options,
                   "check": _check_options, "gap": _gap_options}
