"""rtgen-opt: how well real-time generative-AI workloads can be scheduled on a laptop SoC.

Data flows one way: scenario + latency database -> task set -> (policy | formulation)
-> schedule -> metrics -> report.
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
