"""The measurement plan of a profile and its execution, resumable point by point.

A *point* is one timed configuration: a model on a provider (at one input length for
encoders), or a synthesised/own decoder layer at one prefill length or decode context, or
an LM head. Each finished point is appended to ``DB/.profile-partial.jsonl`` at once, so an
interrupted profile loses at most the point it was timing; rerunning the same command
skips the points already there (the file's first line records the settings, and a rerun
with other settings starts afresh).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rtgen_opt.errors import InputError
from rtgen_opt.safeload import load_json, read_limited

from .architecture import Architecture
from .progress import ProfileProgress
from .providers import ProviderInfo, device_name
from .timing import (
    InputSpec,
    RunFailed,
    Timing,
    describe_inputs,
    graph_inputs,
    is_sequence_axis,
    make_feeds,
    make_session,
    resolve_shapes,
    time_runs,
)

PARTIAL_NAME = ".profile-partial.jsonl"


@dataclass(frozen=True)
class ModelJob:
    """A vision model or encoder: one ONNX file timed as one segment (``layers`` = 1)."""

    name: str
    path: Path
    inputs: tuple[InputSpec, ...]
    seq_lens: tuple[int | None, ...]  # (None,) when the model has no sequence axis


@dataclass(frozen=True)
class LlmJob:
    """An LLM: a decoder layer synthesised from ``arch``, or the user's own ``layer_path``."""

    name: str
    layers: int
    prefill_lens: tuple[int, ...]
    context_lens: tuple[int, ...]
    arch: Architecture | None = None
    layer_path: Path | None = None


@dataclass(frozen=True)
class Point:
    model: str
    provider: str
    stage: str  # frame | prefill | decode | head (the LM head, per token)
    seq_len: int | None

    @property
    def key(self) -> str:
        return f"{self.model}|{self.provider}|{self.stage}|{self.seq_len or ''}"


@dataclass
class ProfileRequest:
    """Everything a profile needs; built and validated by ``build_request``."""

    models: list[ModelJob]
    llms: list[LlmJob]
    providers: list[ProviderInfo]
    backends: dict[str, str]  # full provider name -> backend
    options: dict[str, dict[str, str]]  # full provider name -> provider options
    dims: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    threads: int
    warmup: int
    runs: int
    out: Path
    command: str
    seed: int = 0
    measured: dict[str, dict] = field(default_factory=dict)  # point key -> record

    def fingerprint(self) -> dict:
        """The settings a resumed profile must share with the interrupted one."""
        import onnxruntime

        def stamp(path: Path) -> list:
            stat = path.stat()
            return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

        return {
            "onnxruntime": onnxruntime.__version__, "threads": self.threads,
            "warmup": self.warmup, "runs": self.runs, "seed": self.seed, "dims": self.dims,
            "shapes": {k: list(v) for k, v in self.shapes.items()}, "options": self.options,
            "models": {m.name: stamp(m.path) for m in self.models},
            "llms": {m.name: (asdict(m.arch) if m.arch else stamp(m.layer_path))
                     for m in self.llms},
        }


def plan(request: ProfileRequest) -> list[Point]:
    """Every point of the profile, in the order they are timed (one session per group)."""
    points = []
    for job in request.models:
        for p in request.providers:
            points += [Point(job.name, p.full_name, "frame", n) for n in job.seq_lens]
    for llm in request.llms:
        for p in request.providers:
            points += [Point(llm.name, p.full_name, "prefill", n) for n in llm.prefill_lens]
            points += [Point(llm.name, p.full_name, "decode", n) for n in llm.context_lens]
            if llm.arch is not None:
                points.append(Point(llm.name, p.full_name, "head", None))
    return points


def run(request: ProfileRequest, show_progress: bool = True) -> list[Point]:
    """Time every point not yet measured; records land in ``request.measured``.

    ``KeyboardInterrupt`` propagates after the finished points are safely on disk.
    """
    points = plan(request)
    partial = request.out / PARTIAL_NAME
    request.measured = _resume(partial, request.fingerprint(), {p.key for p in points})
    todo = [p for p in points if p.key not in request.measured]
    if not todo:
        return points
    request.out.mkdir(parents=True, exist_ok=True)
    if not partial.exists():
        _append(partial, {"settings": request.fingerprint()})
    progress = ProfileProgress(len(todo) * (request.warmup + request.runs), show_progress)
    try:
        for group in _groups(todo):
            progress.describe(f"loading {_label(group[0])}")  # synthesis takes seconds
            session, feeds_for = _session_for(request, group[0])
            for point in group:
                progress.describe(_label(point))
                try:
                    timing = time_runs(session, feeds_for(point), request.warmup,
                                       request.runs, progress.advance)
                except RunFailed as exc:
                    raise InputError(_label(point), "", "inputs the model accepts (check "
                                     "--shape and --dim)", str(exc)) from None
                record = {"key": point.key, "median_ms": timing.median_ms,
                          "p99_ms": timing.p99_ms, "samples": timing.samples,
                          "min_ms": timing.min_ms, "max_ms": timing.max_ms,
                          "source": _source(request, point, timing)}
                _append(partial, record)
                request.measured[point.key] = record
                progress.set_eta(estimate_seconds_left(todo, request.measured,
                                                       request.warmup + request.runs))
                progress.point_done(f"{_label(point)}: median {timing.median_ms:.3f} ms, "
                                    f"p99 {timing.p99_ms:.3f} ms")
            del session
    finally:
        progress.close()
    return points


def estimate_seconds_left(points: list[Point], measured: dict[str, dict],
                          runs_per_point: int) -> float | None:
    """Time the unmeasured points will take, from the measured ones (see progress.py)."""
    done = [(p, measured[p.key]["median_ms"]) for p in points if p.key in measured]
    if not done:
        return None
    mean_ms = sum(ms for _, ms in done) / len(done)
    total_ms = 0.0
    for point in points:
        if point.key in measured:
            continue
        alike = [(p, ms) for p, ms in done if (p.model, p.provider, p.stage) ==
                 (point.model, point.provider, point.stage)]
        if not alike:
            total_ms += mean_ms
            continue
        nearest, ms = min(alike, key=lambda item: abs((item[0].seq_len or 0) -
                                                      (point.seq_len or 0)))
        grows = point.stage in ("prefill", "frame") and point.seq_len and nearest.seq_len
        total_ms += ms * (point.seq_len / nearest.seq_len if grows else 1.0)
    return total_ms * runs_per_point / 1000


def _groups(points: list[Point]) -> list[list[Point]]:
    """Consecutive points sharing one session: same model, provider and graph."""
    groups: list[list[Point]] = []
    for point in points:
        graph = "head" if point.stage == "head" else "main"
        if groups and (groups[-1][0].model, groups[-1][0].provider, "head" if
                       groups[-1][0].stage == "head" else "main") == (point.model,
                                                                      point.provider, graph):
            groups[-1].append(point)
        else:
            groups.append([point])
    return groups


def _label(point: Point) -> str:
    length = "" if point.seq_len is None else f" @{point.seq_len}"
    provider = point.provider.replace("ExecutionProvider", "")
    return f"{point.model} {point.stage}{length} on {provider}"


def _session_for(request: ProfileRequest, point: Point):
    """A session for the point's graph and a function giving each point's inputs."""
    provider, options = point.provider, request.options[point.provider]
    rng = np.random.default_rng(request.seed)
    job = next((m for m in request.models if m.name == point.model), None)
    if job is not None:
        session = make_session(str(job.path), provider, options, request.threads)

        def model_feeds(p: Point) -> dict[str, np.ndarray]:
            dims = dict(request.dims)
            for spec in job.inputs:
                for dim in spec.dims:
                    if p.seq_len is not None and is_sequence_axis(dim) and dim not in request.dims:
                        dims[dim] = p.seq_len
            shapes = resolve_shapes(str(job.path), list(job.inputs), request.shapes, dims)
            return make_feeds(list(job.inputs), shapes, rng)

        return session, model_feeds
    llm = next(m for m in request.llms if m.name == point.model)
    if point.stage == "head":
        from .decoder import lm_head

        graph = lm_head(llm.arch, seed=request.seed + 1)
        session = make_session(graph.SerializeToString(), provider, options, request.threads)
        inputs = graph_inputs(graph)
        return session, lambda p: make_feeds(inputs, resolve_shapes(
            llm.name, inputs, {}, {"batch_size": 1}), rng)
    if llm.arch is not None:
        from .decoder import decoder_layer

        graph = decoder_layer(llm.arch, seed=request.seed)
        session = make_session(graph.SerializeToString(), provider, options, request.threads)
        inputs, source = graph_inputs(graph), f"{llm.name} (synthesised)"
    else:
        session = make_session(str(llm.layer_path), provider, options, request.threads)
        inputs, source = describe_inputs(llm.layer_path), str(llm.layer_path)

    def layer_feeds(p: Point) -> dict[str, np.ndarray]:
        new, past = (p.seq_len, 0) if p.stage == "prefill" else (1, p.seq_len)
        dims = {**request.dims, "batch_size": 1, "sequence_length": new,
                "past_sequence_length": past, "total_sequence_length": past + new}
        return make_feeds(inputs, resolve_shapes(source, inputs, {}, dims), rng)

    return session, layer_feeds


def _source(request: ProfileRequest, point: Point, timing: Timing) -> str:
    """Exactly what was measured, for the database's source column."""
    import onnxruntime

    options = request.options[point.provider]
    settings = ", ".join(f"{k}={v}" for k, v in options.items())
    what = {"frame": "whole model", "prefill": f"one decoder layer, prefill of "
            f"{point.seq_len} tokens", "decode": f"one decoder layer, one token at context "
            f"{point.seq_len}", "head": "final norm + LM head, one token"}[point.stage]
    llm = next((m for m in request.llms if m.name == point.model), None)
    if llm is not None and llm.arch is not None:
        arch = llm.arch
        precision = arch.weight_precision + (f" g{arch.block_size}" if
                                             arch.weight_precision in ("int4", "int8") else "")
        what += (f"; synthesised from architecture description {arch.name} ({precision} "
                 "random weights)")
    elif llm is not None:
        what += f"; from {llm.layer_path.name}"
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    return (f"measured: ONNX Runtime {onnxruntime.__version__} {point.provider}"
            f"{f' ({settings})' if settings else ''} on {device_name(point.provider, options)}"
            f", {request.threads} intra-op threads, median of {timing.samples} runs after "
            f"{request.warmup} warm-up, {date}; {what}")


MAX_PARTIAL_BYTES = 64 * 2**20  # a record per measured point: millions of points


def _resume(partial: Path, fingerprint: dict, keys: set[str]) -> dict[str, dict]:
    """Points already measured by an interrupted run with the same settings. The file sits
    in the output folder, so it is read as untrusted: bounded, strict JSON per line, and
    the first line that is not a well-formed record ends it (a torn last line, or not
    ours: its points are measured again)."""
    if not partial.exists():
        return {}
    text = read_limited(partial, str(partial), "a profile's partial results",
                        MAX_PARTIAL_BYTES)
    records = []
    for line in text.splitlines():
        try:
            record = load_json(line, str(partial))
        except InputError:
            break  # the line being written when the run was killed
        if not isinstance(record, dict) or (records and not _is_measurement(record)):
            break
        records.append(record)
    if not records or records[0].get("settings") != json.loads(json.dumps(fingerprint)):
        print(f"[profile] {partial}: left by a profile with other settings; starting afresh",
              file=sys.stderr)
        partial.unlink()
        return {}
    done = {r["key"]: r for r in records[1:] if r.get("key") in keys}
    if done:
        print(f"[profile] resuming: {len(done)} points already measured in {partial}",
              file=sys.stderr)
    return done


def _is_measurement(record: dict) -> bool:
    """A record ``run`` writes: the point's key, its figures and its source."""
    def number(value, optional=False) -> bool:
        return (value is None and optional) or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0)

    return (isinstance(record.get("key"), str) and isinstance(record.get("source"), str)
            and number(record.get("median_ms")) and number(record.get("p99_ms"))
            and type(record.get("samples")) is int and record["samples"] >= 1
            and number(record.get("min_ms"), True) and number(record.get("max_ms"), True))


def _append(path: Path, record: dict) -> None:
    """One line more, never through a link planted at the path (refused, exit 2)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise InputError(str(path), "", "a file the profile's partial results can be "
                         "appended to (not a symbolic link)", exc.strerror or str(exc)) \
            from None
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
