"""The error hierarchy: every failure a user can cause or meet says what, where and what is allowed."""

from __future__ import annotations


class SwarmsimError(Exception):
    """Base of every error swarmsim raises on purpose."""


class ScenarioError(SwarmsimError, ValueError):
    """A scenario (file, dict or override) is malformed.

    ``problems`` holds one ``(path, message)`` pair per fault so that callers and tests can
    inspect them; ``str()`` lists them one per line, path first (``peers[1].upload_bps: ...``).
    """

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        head = f"invalid scenario{f' {source}' if source else ''}"
        lines = [f"  {path or '<root>'}: {msg}" for path, msg in self.problems]
        super().__init__("\n".join([head + ":", *lines]))


class RegistryError(SwarmsimError, LookupError):
    """A plug-in name that no registry knows, or a ``module:Class`` that cannot be imported."""


class PluginError(SwarmsimError):
    """A plug-in failed during a run: it raised, or answered something its family does not
    allow. Names the plug-in and the simulated time."""

    def __init__(self, message: str, t_s: float | None = None):
        self.t_s = t_s
        at = "" if t_s is None else f" at simulated time {t_s:.3f} s"
        super().__init__(f"{message}{at}")


class InvariantError(SwarmsimError, AssertionError):
    """A conservation law or protocol invariant of the engine was broken: a bug, never user error."""


class ResultError(SwarmsimError):
    """A result folder is missing, incomplete (no manifest) or from a failed run."""
