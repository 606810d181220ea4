"""rtgen-opt: how well real-time generative-AI workloads can be scheduled on a laptop SoC.

Data flows one way: scenario + latency database -> task set -> (policy | formulation)
-> schedule -> metrics -> report. The public API, imported lazily (``import rtgen_opt``
stays cheap and the command line starts fast)::

    import rtgen_opt as rt
    scenario = rt.load_scenario("scenario_c", ["platform.npu=2"])
    ts = rt.build_taskset(scenario)                      # the scenario's horizon
    metrics = rt.evaluate(ts, rt.simulate(ts, "ftf").schedule)
    result, outcome, _ = rt.solve(ts, time_limit_s=30)   # the solve JSON and the outcome
    answer = rt.check_every_realization(ts, "ftf")       # yes / no (witness) / unknown
    data = rt.gap_analysis(ts, time_limit_s=60)

``examples/`` holds short runnable scripts of these paths.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

# The model builders live in the top-level folder `formulations/` (the design card's
# layout); installed, pyproject maps it to `rtgen_opt.formulations`. From a plain source
# checkout, extend this package's path so the same import works there too.
_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "formulations").is_dir() and (
        _checkout / "formulations" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (the package's own __path__)

# name -> (module, attribute): resolved on first use (PEP 562)
_API = {
    "load_scenario": ("rtgen_opt.model.scenario", "load_scenario"),
    "build_taskset": ("rtgen_opt.model.taskset", "build_taskset"),
    "TaskSet": ("rtgen_opt.model.taskset", "TaskSet"),
    "Realization": ("rtgen_opt.model.realization", "Realization"),
    "simulate": ("rtgen_opt.simulation.executor", "simulate"),
    "POLICIES": ("rtgen_opt.simulation.policies", "POLICIES"),
    "Policy": ("rtgen_opt.simulation.policies", "Policy"),
    "evaluate": ("rtgen_opt.evaluation.metrics", "evaluate"),
    "replay": ("rtgen_opt.evaluation.replay", "replay"),
    "solve": ("rtgen_opt.commands.solve", "solve_command"),
    "check": ("rtgen_opt.commands.check", "check_command"),
    "check_every_realization": ("rtgen_opt.analysis.uncertainty", "check_every_realization"),
    "gap_analysis": ("rtgen_opt.analysis.gap", "gap_analysis"),
    "load_sweep": ("rtgen_opt.sweep.spec", "load_sweep"),
    "run_sweep": ("rtgen_opt.sweep.run", "run_sweep"),
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'rtgen_opt' has no attribute {name!r}")
    import importlib

    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once resolved, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
