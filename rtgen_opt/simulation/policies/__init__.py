"""Scheduling policies: the paper's five (classic), ours (kill-aware), and the loader for
a user's ``FILE.py:CLASS``."""

from rtgen_opt.simulation.policies.classic import (
    POLICIES,
    EdfAot,
    EdfDyn,
    FcfsAot,
    FcfsDyn,
    Ftf,
    KillAware,
    KillAwareFast,
    Placement,
    Policy,
    PolicyError,
    RunView,
)

__all__ = ["POLICIES", "EdfAot", "EdfDyn", "FcfsAot", "FcfsDyn", "Ftf", "KillAware", "KillAwareFast",
           "Placement", "Policy", "PolicyError", "RunView"]
