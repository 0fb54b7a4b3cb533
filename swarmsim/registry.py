"""Name -> plug-in registries for every pluggable kind (choker, picker, arrival, ...).

A plug-in is a class with a nested pydantic ``Params`` model; a scenario names it
(``{name: mainline, unchoke_slots: 4}``) or points at a user's own class
(``{name: mypkg.mymodule:MyChoker}``, importable from the current folder too). Registries
are filled when their modules are imported and only read afterwards (no mutable global state at run
time). ``swarmsim.api`` declares what each kind's class must provide.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from swarmsim.api.plugins import NoParams
from swarmsim.errors import RegistryError

T = TypeVar("T", bound=type)


class Registry:
    """A named family of plug-ins, e.g. ``Registry("choker")``."""

    def __init__(self, kind: str, doc: str = ""):
        self.kind = kind
        self.doc = doc
        self._plugins: dict[str, type] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@chokers.register("mainline")``."""

        def deco(cls: T) -> T:
            if name in self._plugins:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            if not hasattr(cls, "Params"):
                cls.Params = NoParams  # type: ignore[attr-defined]
            cls.registry_name = name  # type: ignore[attr-defined]
            self._plugins[name] = cls
            return cls

        return deco

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._plugins)

    def __iter__(self) -> Iterator[tuple[str, type]]:
        return iter(sorted(self._plugins.items()))

    def __contains__(self, name: str) -> bool:
        return name in self._plugins

    def get(self, name: str) -> type:
        """The plug-in class for a registered name or an importable ``pkg.module:Class``."""
        if name in self._plugins:
            return self._plugins[name]
        if ":" in name:
            module_name, _, attr = name.partition(":")
            if os.getcwd() not in sys.path:  # a researcher's module beside their scenarios
                sys.path.append(os.getcwd())
            try:
                module = importlib.import_module(module_name)
                cls = getattr(module, attr)
            except (Exception, SystemExit) as exc:  # a user's module may raise anything
                raise RegistryError(
                    f"cannot import {self.kind} {name!r}: {type(exc).__name__}: {exc}"
                ) from None
            if not hasattr(cls, "Params"):
                raise RegistryError(
                    f"{self.kind} {name!r} has no nested pydantic 'Params' class; "
                    "plug-ins declare their parameters there"
                )
            return cls
        raise RegistryError(
            f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            " (or a user class as 'pkg.module:Class')"
        )

    def params_of(self, name: str) -> type[BaseModel]:
        """The pydantic model of plug-in ``name``'s parameters."""
        return self.get(name).Params

    def build(self, name: str, params: BaseModel | dict[str, Any] | None = None) -> Any:
        """Instantiate a plug-in from its name and (validated or raw) parameters."""
        cls = self.get(name)
        if params is None:
            params = cls.Params()
        elif isinstance(params, dict):
            params = cls.Params(**params)
        return cls(params)
