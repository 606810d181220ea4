"""MILP formulation (PuLP: CBC, or HiGHS when highspy is installed)."""

from .model import MilpModel, available_engines

__all__ = ["MilpModel", "available_engines"]
