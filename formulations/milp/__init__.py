"""MILP formulations (PuLP: CBC, or HiGHS when highspy is installed): the disjunctive
big-M encoding (``MilpModel``) and the time-indexed one (``TimeIndexedMilp``)."""

from .model import MilpModel, TimeIndexedMilp, available_engines

__all__ = ["MilpModel", "TimeIndexedMilp", "available_engines"]
