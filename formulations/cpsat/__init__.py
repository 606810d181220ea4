"""CP-SAT (OR-Tools) formulation."""

from .model import CpSatModel

__all__ = ["CpSatModel"]
