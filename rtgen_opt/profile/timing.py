"""Timing an ONNX model on one execution provider: input shapes, inputs, the timing loop.

Shapes come from the model; ``--shape INPUT=1x3x224x224`` replaces an input's shape and
``--dim NAME=VALUE`` gives a symbolic axis a value. Axes named like a batch default to 1;
any other dynamic axis without a value is an error naming it. Input values are random
(token ids below 100, masks all ones): kernel latency does not depend on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtgen_opt.errors import InputError

BATCH_AXES = ("batch", "batch_size", "n", "batchsize")


@dataclass(frozen=True)
class InputSpec:
    """One graph input: name, numpy dtype, and dims (int, symbolic name, or None)."""

    name: str
    dtype: np.dtype
    dims: tuple[int | str | None, ...]


@dataclass(frozen=True)
class Timing:
    """Summary of ``samples`` timed runs, in milliseconds."""

    median_ms: float
    p99_ms: float
    samples: int
    min_ms: float | None = None  # the range of the timed runs (latency_min_ms/max_ms)
    max_ms: float | None = None


def describe_inputs(path: Path) -> list[InputSpec]:
    """The graph inputs of an ONNX file (initializers excluded); exit 2 if it is not one."""
    import onnx

    if not path.is_file():
        raise InputError(str(path), "", "an ONNX model file", "no such file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 -- DecodeError, ValueError ... for non-ONNX bytes
        raise InputError(str(path), "", "an ONNX model file",
                         f"unreadable ({type(exc).__name__})") from None
    if not model.graph.node:
        raise InputError(str(path), "", "an ONNX model file with a graph", "no nodes")
    check_external_data(model, path)
    return graph_inputs(model)


def check_external_data(model, path: Path) -> None:
    """Refuse a model whose weights point at "external data" outside its own folder (an
    absolute path, ``../``, a link leading out): ONNX Runtime would read any file the user
    can read as weights (versions before 1.2x do not check). Read from the model's
    protobuf, so it holds whatever ONNX Runtime version is installed."""
    folder = path.resolve().parent
    for tensor in _tensors(model):
        if tensor.data_location != 1:  # TensorProto.EXTERNAL
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise InputError(str(path), f"tensor {tensor.name}", "external data in a file "
                             "inside the model's folder (a relative location, links "
                             "followed)", location)


def _tensors(model):
    """Every tensor of the model that can hold data: initializers (sparse ones too) and
    node attributes, in every subgraph and function."""
    graphs = [model.graph]
    nodes = [node for function in model.functions for node in function.node]
    while graphs or nodes:
        if graphs:
            graph = graphs.pop()
            nodes.extend(graph.node)
            yield from graph.initializer
            yield from _sparse(graph.sparse_initializer)
            continue
        for a in nodes.pop().attribute:
            yield from [a.t] if a.HasField("t") else []
            yield from a.tensors
            yield from _sparse([*a.sparse_tensors, *([a.sparse_tensor]
                                                     if a.HasField("sparse_tensor") else [])])
            graphs.extend([a.g] if a.HasField("g") else [])
            graphs.extend(a.graphs)


def _sparse(tensors):
    for sparse in tensors:
        yield sparse.values
        yield sparse.indices


def graph_inputs(model) -> list[InputSpec]:
    """The inputs of a ModelProto that are not initializers."""
    from onnx import helper

    initializers = {i.name for i in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else
                     (d.dim_param or None) for d in tensor.shape.dim)
        specs.append(InputSpec(value.name, np.dtype(helper.tensor_dtype_to_np_dtype(
            tensor.elem_type)), dims))
    return specs


def is_sequence_axis(dim: int | str | None) -> bool:
    """Symbolic axes swept by ``--seq-lens`` (sequence_length, seq_len, num_tokens ...)."""
    return isinstance(dim, str) and ("seq" in dim.lower() or "token" in dim.lower())


def resolve_shapes(source: str, inputs: list[InputSpec], shapes: dict[str, tuple[int, ...]],
                   dims: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of every input; an unresolved dynamic axis is an error naming it."""
    resolved = {}
    for spec in inputs:
        if spec.name in shapes:
            given = shapes[spec.name]
            if len(given) != len(spec.dims):
                raise InputError("--shape", spec.name, f"{len(spec.dims)} dimensions "
                                 f"(the model's input is {_show(spec.dims)})", "x".join(
                                     map(str, given)))
            fixed = [i for i, d in enumerate(spec.dims) if isinstance(d, int) and d > 0
                     and d != given[i]]
            if fixed:
                raise InputError("--shape", spec.name, f"axis {fixed[0]} = "
                                 f"{spec.dims[fixed[0]]} (fixed in the model: "
                                 f"{_show(spec.dims)})", "x".join(map(str, given)))
            resolved[spec.name] = given
            continue
        resolved[spec.name] = tuple(_axis_value(source, spec, i, dim, dims)
                                    for i, dim in enumerate(spec.dims))
    return resolved


def _axis_value(source: str, spec: InputSpec, index: int, dim, dims: dict[str, int]) -> int:
    if isinstance(dim, int) and dim > 0:
        return dim
    if isinstance(dim, str) and dim in dims:
        return dims[dim]
    if isinstance(dim, str) and dim.lower() in BATCH_AXES:
        return 1
    axis = f"'{dim}'" if isinstance(dim, str) else "(unnamed)"
    hint = f"--dim {dim}=N or " if isinstance(dim, str) else ""
    sweep = " or --seq-lens" if is_sequence_axis(dim) else ""
    raise InputError(source, f"input {spec.name}, axis {index} {axis}", "a value for this "
                     f"dynamic axis: {hint}--shape {spec.name}={_example(spec.dims)}{sweep}")


def _show(dims) -> str:
    return "x".join(str(d) if d else "?" for d in dims)


def _example(dims) -> str:
    def one(d) -> str:
        if isinstance(d, int) and d > 0:
            return str(d)
        return "1" if isinstance(d, str) and d.lower() in BATCH_AXES else "N"

    return "x".join(one(d) for d in dims)


def parse_shape(item: str) -> tuple[str, tuple[int, ...]]:
    """``INPUT=1x3x224x224`` -> (name, dims)."""
    name, sep, text = item.rpartition("=")
    try:
        dims = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        dims = ()
    if not sep or not name or not dims or min(dims) < 1:
        raise InputError("--shape", "", "INPUT=DIMS with positive dims, like "
                         "pixel_values=1x3x224x224", item)
    return name, dims


def make_feeds(inputs: list[InputSpec], shapes: dict[str, tuple[int, ...]],
               rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs of the resolved shapes."""
    feeds = {}
    for spec in inputs:
        shape = shapes[spec.name]
        if spec.dtype == np.bool_:
            feeds[spec.name] = np.ones(shape, dtype=bool)
        elif np.issubdtype(spec.dtype, np.integer):
            fill = np.ones(shape, spec.dtype) if "mask" in spec.name.lower() else \
                rng.integers(0, 100, shape).astype(spec.dtype)
            feeds[spec.name] = fill
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
    return feeds


def make_session(model, provider: str, options: dict[str, str], threads: int):
    """An inference session on one provider (``model``: a path or serialized bytes)."""
    import onnxruntime as ort

    settings = ort.SessionOptions()
    settings.intra_op_num_threads = threads
    settings.inter_op_num_threads = 1
    settings.log_severity_level = 4  # fatal only: failures are reported as one line by us
    where = model if isinstance(model, str) else "synthesised model"
    try:
        session = ort.InferenceSession(model, settings, providers=[provider],
                                       provider_options=[options])
    except Exception as exc:  # noqa: BLE001 -- ORT's Fail, InvalidGraph, NotImplemented ...
        raise InputError(where, "", f"a model {provider} can load",
                         str(exc).strip().splitlines()[0][:300]) from None
    if session.get_providers()[0] != provider:
        raise InputError("--providers", "", f"{provider} to accept the session",
                         f"it fell back to {session.get_providers()[0]}")
    return session


def time_runs(session, feeds: dict[str, np.ndarray], warmup: int, runs: int,
              on_run=None) -> Timing:
    """Warm up, then time ``runs`` calls; median and 99th percentile (linear interpolation),
    minimum and maximum.

    A run the provider rejects (shapes, unsupported op at run time) raises ``RunFailed``.
    """
    try:
        return _time_runs(session, feeds, warmup, runs, on_run)
    except Exception as exc:  # noqa: BLE001 -- ORT's InvalidArgument, Fail, RuntimeException
        raise RunFailed(str(exc).strip().splitlines()[0][:300]) from None


class RunFailed(RuntimeError):
    """ONNX Runtime refused to run the model with the given inputs."""


def _time_runs(session, feeds, warmup, runs, on_run) -> Timing:
    for _ in range(warmup):
        session.run(None, feeds)
        if on_run:
            on_run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        samples.append((time.perf_counter() - start) * 1000)
        if on_run:
            on_run()
    return Timing(float(np.median(samples)), float(np.percentile(samples, 99)), len(samples),
                  float(min(samples)), float(max(samples)))
