"""Policies by name: built in, a user's class in a file, or one a package declares.

``--policy`` accepts

* a built-in name (``POLICIES``: ``fcfs-aot`` ... ``ftf``, ``kill-aware``);
* ``path/to/file.py:ClassName`` — a subclass of ``rtgen_opt.simulation.policies.classic.Policy`` defined in
  that file, created without arguments;
* the name of an entry point in the group ``rtgen_opt.policies`` that an installed package
  declares (``[project.entry-points."rtgen_opt.policies"] my-policy = "pkg.mod:MyPolicy"``).

A user's policy runs behind a guard: an exception inside its methods, or a backend it may
not use, is reported as bad input (exit 2) naming the file and the method, never as a
traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path

from rtgen_opt.errors import InputError, Terminated
from rtgen_opt.simulation.policies.classic import POLICIES, Policy

ENTRY_POINT_GROUP = "rtgen_opt.policies"  # as before the layout move: packages declare it
EXPECTED_CLASS = "a subclass of rtgen_opt.simulation.policies.classic.Policy"


# What a user's code may raise that is its failure, reported as bad input naming its file:
# any exception, and SystemExit too (sys.exit(3) in a policy must not end the command with
# its code, silently). Not KeyboardInterrupt, nor the SystemExit of our SIGTERM handler.
USER_FAILURES = (Exception, SystemExit)


def _reraise_termination(exc: BaseException) -> None:
    if isinstance(exc, Terminated):
        raise exc


def _failure(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): the policy must not end the process"
    return f"{type(exc).__name__}: {exc}"


def load_policy(spec: str) -> Policy:
    """The policy ``spec`` names (see the module docstring)."""
    if spec in POLICIES:
        return POLICIES[spec]
    path, colon, class_name = spec.rpartition(":")
    if colon and path.endswith(".py"):
        return _guarded(_class_from_file(Path(path), class_name), f"{path}:{class_name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == spec:
            return _guarded(_class_from_entry_point(entry), f"entry point {entry.value}")
    raise InputError("--policy", "", f"one of {', '.join(POLICIES)}, FILE.py:CLASS, or an "
                     f"entry point of the group {ENTRY_POINT_GROUP}", spec)


def _class_from_file(path: Path, class_name: str) -> type:
    if not path.is_file():
        raise InputError(str(path), "", "an existing Python file defining the policy class")
    module_name = f"rtgen_opt_user_policy_{abs(hash(str(path.resolve())))}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # (dataclasses and pickling look modules up)
        spec.loader.exec_module(module)
    except USER_FAILURES as exc:  # any failure of the user's file is bad input
        sys.modules.pop(module_name, None)
        _reraise_termination(exc)
        raise InputError(str(path), "", "a Python file that imports without error",
                         _failure(exc)) from None
    return _class_from_module(module, str(path), class_name)


def load_policy_source(spec: str, source: str) -> Policy:
    """The policy ``FILE.py:CLASS`` built from ``source``, the file's text as read earlier,
    not from the file as it is now: a sweep's worker runs exactly the code its cache key
    hashed (the file may have changed since, or be absent on a Ray node). The module's
    ``__file__`` is still FILE, for messages and for files the policy reads beside it."""
    path, _, class_name = spec.rpartition(":")
    module_name = f"rtgen_opt_user_policy_{abs(hash(path))}"
    module = types.ModuleType(module_name)
    module.__file__ = path
    try:
        sys.modules[module_name] = module  # (dataclasses and pickling look modules up)
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 (trusted: SECURITY.md)
    except USER_FAILURES as exc:  # any failure of the user's file is bad input
        sys.modules.pop(module_name, None)
        _reraise_termination(exc)
        raise InputError(path, "", "a Python file that imports without error",
                         _failure(exc)) from None
    return _guarded(_class_from_module(module, path, class_name), spec)


def _class_from_module(module, path: str, class_name: str) -> type:
    cls = getattr(module, class_name, None)
    if cls is None:
        found = [n for n, v in vars(module).items() if inspect.isclass(v)
                 and issubclass(v, Policy) and v is not Policy and v.__module__ == module.__name__]
        raise InputError(path, class_name, f"a class named {class_name!r} "
                         f"({EXPECTED_CLASS}); the file defines "
                         f"{', '.join(found) or 'no policy class'}")
    return _checked_class(cls, path, class_name)


def _class_from_entry_point(entry) -> type:
    try:
        cls = entry.load()
    except USER_FAILURES as exc:
        _reraise_termination(exc)
        raise InputError(f"entry point {entry.value}", "", "an importable policy class",
                         _failure(exc)) from None
    return _checked_class(cls, f"entry point {entry.value}", entry.name)


def _checked_class(cls: object, source: str, field: str) -> type:
    if not (inspect.isclass(cls) and issubclass(cls, Policy)):
        raise InputError(source, field, EXPECTED_CLASS, cls)
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise InputError(source, f"{field}.name", "a class attribute `name`: the policy's "
                         "name in reports", name)
    if name in POLICIES:
        raise InputError(source, f"{field}.name", "a name of its own, not one of the "
                         f"built-in policies ({', '.join(POLICIES)})", name)
    if cls.priority is Policy.priority:
        raise InputError(source, f"{field}.priority", "a method priority(self, run, job, "
                         "seg) returning a tuple (smaller runs first)")
    if not isinstance(getattr(cls, "dynamic", None), bool):
        raise InputError(source, f"{field}.dynamic", "a class attribute `dynamic`: True "
                         "(best available backend) or False (ahead-of-time mapping)")
    return cls


def _guarded(cls: type, source: str) -> Policy:
    try:
        policy = cls()
    except USER_FAILURES as exc:
        _reraise_termination(exc)
        raise InputError(source, "", "a policy class that can be created without "
                         "arguments", _failure(exc)) from None
    return GuardedPolicy(policy, source)


class GuardedPolicy(Policy):
    """A user's policy whose failures are reported as bad input naming its source."""

    def __init__(self, policy: Policy, source: str):
        self.inner, self.source = policy, source
        self.name, self.dynamic = policy.name, policy.dynamic
        self.description = getattr(policy, "description", "") or f"user policy {source}"

    def priority(self, run, job, seg):
        try:
            return self.inner.priority(run, job, seg)
        except USER_FAILURES as exc:
            raise self._failed("priority", exc) from None

    def placement(self, run):
        try:
            placement = self.inner.placement(run)
        except USER_FAILURES as exc:
            raise self._failed("placement", exc) from None
        return None if placement is None else _GuardedPlacement(placement, self)

    def _failed(self, method: str, exc: BaseException) -> InputError:
        _reraise_termination(exc)
        return InputError(self.source, method, "a method that runs without error",
                          _failure(exc))


class _GuardedPlacement:
    def __init__(self, placement, policy: GuardedPolicy):
        self.inner, self.policy = placement, policy

    def place(self, now: int, job: int, seg: int) -> int | None:
        try:
            return self.inner.place(now, job, seg)
        except USER_FAILURES as exc:
            raise self.policy._failed("place", exc) from None
