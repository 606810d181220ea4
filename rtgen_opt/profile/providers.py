"""ONNX Runtime execution providers: names, the backend each one is, default options.

Only the CPU provider can be exercised on the machines this project is developed on; the
others go through the same code path (session creation with the provider and its options,
then the same timing loop) and are documented here with the options they need.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass

from rtgen_opt.errors import InputError


@dataclass(frozen=True)
class ProviderInfo:
    """One execution provider: its short name, rtgen-opt backend and default options."""

    full_name: str
    short: str
    backend: str | None  # None: no default backend, --backend EP=name is required
    default_options: tuple[tuple[str, str], ...] = ()
    note: str = ""


PROVIDERS = (
    ProviderInfo("CPUExecutionProvider", "cpu", "cpu"),
    ProviderInfo("CUDAExecutionProvider", "cuda", "gpu", (("device_id", "0"),)),
    ProviderInfo("TensorrtExecutionProvider", "tensorrt", "gpu", (("device_id", "0"),)),
    ProviderInfo("ROCMExecutionProvider", "rocm", "gpu", (("device_id", "0"),)),
    ProviderInfo("MIGraphXExecutionProvider", "migraphx", "gpu", (("device_id", "0"),)),
    ProviderInfo("DmlExecutionProvider", "dml", "gpu", (("device_id", "0"),),
                 "DirectML (Windows); device_id picks the adapter"),
    ProviderInfo("VitisAIExecutionProvider", "vitisai", "npu", (),
                 "AMD Ryzen AI NPU; pass config_file=vaip_config.json from the Ryzen AI SDK "
                 "and, for compiled models, cache_dir/cache_key"),
    ProviderInfo("OpenVINOExecutionProvider", "openvino", "npu", (("device_type", "NPU"),),
                 "Intel NPU by default; device_type=GPU or CPU measures those instead (then "
                 "also --backend openvino=gpu)"),
    ProviderInfo("QNNExecutionProvider", "qnn", "npu",
                 (("backend_path", "QnnHtp.dll" if os.name == "nt" else "libQnnHtp.so"),),
                 "Qualcomm Hexagon NPU (HTP backend)"),
    ProviderInfo("CoreMLExecutionProvider", "coreml", None, (),
                 "Core ML picks the ANE, GPU or CPU itself: say which with --backend"),
)
_BY_NAME = {p.short: p for p in PROVIDERS} | {p.full_name.lower(): p for p in PROVIDERS}
NOT_DEVICES = ("AzureExecutionProvider",)  # a remote-endpoint provider, not a local device


def provider_info(name: str) -> ProviderInfo:
    """Look up a provider by short name (``cpu``) or full name (``CPUExecutionProvider``)."""
    info = _BY_NAME.get(name.strip().lower())
    if info is None:
        known = ", ".join(p.short for p in PROVIDERS)
        raise InputError("--providers", "", f"an execution provider ({known}, or the full "
                         "ONNX Runtime name)", name)
    return info


def available_providers() -> list[str]:
    import onnxruntime

    return [p for p in onnxruntime.get_available_providers() if p not in NOT_DEVICES]


def resolve_providers(requested: list[str] | None) -> list[ProviderInfo]:
    """The providers to profile: those asked for (each must be available), or all local ones."""
    available = available_providers()
    if not requested:
        return [_BY_NAME[p.lower()] for p in available if p.lower() in _BY_NAME]
    chosen = []
    for name in requested:
        info = provider_info(name)
        if info.full_name not in available:
            raise InputError("--providers", "", "a provider this ONNX Runtime build offers "
                             f"({', '.join(available)}; GPU/NPU providers come with their own "
                             "packages, e.g. onnxruntime-gpu, onnxruntime-directml, the Ryzen "
                             "AI SDK)", info.full_name)
        if info not in chosen:
            chosen.append(info)
    return chosen


def backend_map(providers: list[ProviderInfo], overrides: list[str] | None) -> dict[str, str]:
    """full provider name -> backend, from the defaults and ``--backend EP=name``."""
    mapping = {p.full_name: p.backend for p in providers}
    for item in overrides or ():
        name, sep, backend = item.partition("=")
        if not sep or not backend.strip():
            raise InputError("--backend", "", "EP=BACKEND, like openvino=gpu", item)
        mapping[provider_info(name).full_name] = backend.strip()
    for p in providers:
        if not mapping[p.full_name]:
            raise InputError("--backend", "", f"a backend for {p.full_name} ({p.note}): "
                             f"--backend {p.short}=npu")
    return mapping


def provider_options(providers: list[ProviderInfo], items: list[str] | None
                     ) -> dict[str, dict[str, str]]:
    """full provider name -> options, defaults overridden by ``--provider-option EP:KEY=VALUE``."""
    options = {p.full_name: dict(p.default_options) for p in providers}
    for item in items or ():
        head, sep, value = item.partition("=")
        name, colon, key = head.partition(":")
        if not sep or not colon or not key.strip():
            raise InputError("--provider-option", "", "EP:KEY=VALUE, like "
                             "openvino:device_type=NPU", item)
        full = provider_info(name).full_name
        if full not in options:
            raise InputError("--provider-option", "", "an option of a profiled provider "
                             f"({', '.join(options)})", item)
        options[full][key.strip()] = value.strip()
    return options


def cpu_name() -> str:
    """The CPU model as the system reports it (/proc/cpuinfo, else the platform module)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def logical_cpus() -> int:
    """CPUs this process may run on (the affinity mask, e.g. under a container limit)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def device_name(provider: str, options: dict[str, str]) -> str:
    """What the measurement ran on, as well as the system says it."""
    if provider == "CPUExecutionProvider":
        return f"{cpu_name()} ({platform.machine()}, {logical_cpus()} logical CPUs)"
    if provider in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        gpu = _query(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader",
                      "-i", options.get("device_id", "0")])
        if gpu:
            return gpu
    detail = ", ".join(f"{k}={v}" for k, v in options.items())
    return f"device of {provider}" + (f" ({detail})" if detail else "") + f", host {cpu_name()}"


def _query(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() \
        else ""
