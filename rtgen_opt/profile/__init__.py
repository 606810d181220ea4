"""`rtgen-opt db profile`: measure a device's latencies with ONNX Runtime.

- ``architecture``: LLM architecture descriptions (``archs/*.yaml``);
- ``decoder``: a decoder layer and LM head synthesised from one (random weights);
- ``providers``: execution providers, the backend each maps to, their options;
- ``timing``: input shapes, random inputs, the warm-up + timed-runs loop;
- ``profiler``: the plan of points and its resumable execution;
- ``database``: points -> latency.csv rows, merged into the output database, its README.

Needs the optional extra ``[profile]`` (onnx, onnxruntime); ``require_extra`` says so.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from rtgen_opt.errors import InputError

EXTRA_HINT = "pip install 'rtgen-opt[profile]'"


def require_extra() -> None:
    """Exit 2 with the install command when onnx or onnxruntime is missing."""
    missing = []
    for module in ("onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise InputError("db profile", "", f"the optional extra [profile]: {EXTRA_HINT}",
                         f"{', '.join(missing)} not installed")


def profile(models: list[str], llms: list[str], out: str, *, providers: list[str] | None,
            backends: list[str] | None, provider_options: list[str] | None,
            seq_lens: str | None, context_lens: str | None, shapes: list[str] | None,
            dims: list[str] | None, threads: int | None, warmup: int, runs: int,
            show_progress: bool = True, command: str | None = None) -> dict:
    """Validate the request, time every point (resuming an interrupted run), write the
    database. Returns ``{"db", "rows_written", "rows_kept", "points": [...]}``."""
    require_extra()
    from rtgen_opt.profile import database, profiler

    from .providers import backend_map, logical_cpus, resolve_providers
    from .providers import provider_options as options_for

    if not models and not llms:
        raise InputError("db profile", "", "at least one model (MODEL.onnx, --model "
                         "NAME=FILE.onnx) or LLM (--llm NAME=ARCH)")
    if warmup < 0 or runs < 1:
        raise InputError("--runs" if runs < 1 else "--warmup", "", "--runs >= 1 and "
                         "--warmup >= 0", runs if runs < 1 else warmup)
    if threads is not None and threads < 1:
        raise InputError("--threads", "", "an integer >= 1", threads)
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError("--out", "", "a database folder (new or existing)", out)
    chosen = resolve_providers(providers)
    if not chosen:
        raise InputError("--providers", "", "an available execution provider", "none")
    request = profiler.ProfileRequest(
        models=[], llms=[], providers=chosen, backends=backend_map(chosen, backends),
        options=options_for(chosen, provider_options),
        dims=dict(_dim(item) for item in dims or ()),
        shapes=dict(_shape(item) for item in shapes or ()),
        threads=threads or logical_cpus(), warmup=warmup, runs=runs, out=Path(out),
        command=command or shlex.join(["rtgen-opt", *sys.argv[1:]]))
    sweep = _lengths("--seq-lens", seq_lens) if seq_lens else None
    request.models = [_model_job(item, sweep, request) for item in models]
    request.llms = [_llm_job(item, sweep or (128, 512, 1024),
                             _lengths("--context-lens", context_lens or "128,1024,2048"))
                    for item in llms]
    _unique_names(request)
    points = profiler.run(request, show_progress)
    llm_layers = {m.name: m.layers for m in request.llms}
    rows = database.point_rows(points, request.measured, request.backends, llm_layers)
    written, kept = database.merge_and_write(request.out, rows)
    summary = [_summary(p, request) for p in points]
    database.append_readme(request.out, request, summary)
    (request.out / profiler.PARTIAL_NAME).unlink(missing_ok=True)
    return {"db": str(request.out), "rows_written": written, "rows_kept": kept,
            "points": summary}


def _summary(point, request) -> dict:
    record = request.measured[point.key]
    unit = {"frame": "model", "prefill": "per layer", "decode": "per layer, per token",
            "head": "LM head, per token"}[point.stage]
    return {"model": point.model, "stage": point.stage, "backend":
            request.backends[point.provider], "provider": point.provider,
            "seq_len": point.seq_len, "median_ms": round(record["median_ms"], 4),
            "p99_ms": round(record["p99_ms"], 4), "samples": record["samples"], "unit": unit,
            "source": record["source"]}


def _model_job(item: str, sweep, request):
    from .profiler import ModelJob
    from .timing import describe_inputs, is_sequence_axis, resolve_shapes

    name, path = _named_path("--model", item)
    inputs = describe_inputs(path)
    sequence_axes = {d for spec in inputs for d in spec.dims if is_sequence_axis(d)
                     and d not in request.dims and spec.name not in request.shapes}
    lengths = tuple(sweep) if sequence_axes and sweep else (None,)
    probe = {**request.dims, **({axis: lengths[0] for axis in sequence_axes}
                                if lengths[0] else {})}
    resolve_shapes(str(path), inputs, request.shapes, probe)  # dynamic axes: fail early
    return ModelJob(name, path, tuple(inputs), lengths)


def _llm_job(item: str, prefill_lens, context_lens):
    from .architecture import load_architecture
    from .profiler import LlmJob

    name, sep, spec = item.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise InputError("--llm", "", "NAME=ARCH (a built-in description like llama3.2-1b, "
                         "or a YAML file) or NAME=LAYER.onnx@LAYERS", item)
    name, spec = name.strip(), spec.strip()
    if spec.endswith(".onnx") or ".onnx@" in spec:
        file, at, count = spec.rpartition("@") if "@" in spec else (spec, "", "")
        if not at or not count.isdigit() or int(count) < 1:
            raise InputError("--llm", "", "the number of decoder layers after the file: "
                             "NAME=LAYER.onnx@16", item)
        path = Path(file)
        from .timing import describe_inputs

        describe_inputs(path)  # missing or not ONNX: exit 2 before any timing
        return LlmJob(name, int(count), prefill_lens, context_lens, layer_path=path)
    arch = load_architecture(spec)
    return LlmJob(name, arch.num_hidden_layers, prefill_lens, context_lens, arch=arch)


def _named_path(option: str, item: str) -> tuple[str, Path]:
    """``NAME=FILE.onnx`` or ``FILE.onnx`` (named after the file)."""
    name, sep, file = item.partition("=")
    if not sep:
        name, file = Path(item).stem, item
    if not name.strip() or not file.strip():
        raise InputError(option, "", "NAME=FILE.onnx or FILE.onnx", item)
    return name.strip(), Path(file.strip())


def _lengths(option: str, text: str) -> tuple[int, ...]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1 or sorted(set(values)) != values:
        raise InputError(option, "", "ascending positive integers, like 128,512,1024", text)
    return tuple(values)


def _dim(item: str) -> tuple[str, int]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
        raise InputError("--dim", "", "AXIS=N with a positive N, like batch_size=1", item)
    return name.strip(), int(value)


def _shape(item: str):
    from .timing import parse_shape

    return parse_shape(item)


def _unique_names(request) -> None:
    names = [m.name for m in request.models] + [m.name for m in request.llms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError("db profile", "", "one file per model name", duplicates[0])
