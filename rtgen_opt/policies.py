"""Deprecated alias of :mod:`rtgen_opt.simulation.policies`, kept for one release so that
users' ``FILE.py:CLASS`` policies written against ``rtgen_opt.policies`` keep working."""

from rtgen_opt.simulation.policies import *  # noqa: F401,F403
from rtgen_opt.simulation.policies import __all__  # noqa: F401
