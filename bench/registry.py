"""A small lazy registry: names map to ``"module:attr"`` strings, imported only when used.

Modelled on lm-evaluation-harness' registry: heavy backends import only when chosen, and an
unknown name gets a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Any


class UnknownName(KeyError):
    """Raised for a name that is not registered; its message is meant for the user."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def import_object(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute (``"package.module"``: the
    module itself)."""
    if ":" not in target:
        return importlib.import_module(target)
    module_name, attr = target.split(":", 1)
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as err:
        raise ValueError(f"{module_name} has no attribute {attr!r}") from err


class Registry:
    """Maps names to lazily imported objects."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}

    def add(self, name: str, target: str) -> None:
        """Register ``name`` as ``"module:attr"`` (or a module); each name only once."""
        if name in self._targets and self._targets[name] != target:
            raise ValueError(f"{self.kind} {name!r} is already registered as {self._targets[name]}")
        self._targets[name] = target

    def get(self, name: str) -> Any:
        """Return the registered object, importing it on first use."""
        if name not in self._targets:
            hint = difflib.get_close_matches(name, self._targets, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            known = ", ".join(sorted(self._targets))
            raise UnknownName(f"unknown {self.kind} {name!r}{extra} (known: {known})")
        if name not in self._loaded:
            self._loaded[name] = import_object(self._targets[name])
        return self._loaded[name]

    def names(self) -> list[str]:
        return sorted(self._targets)

    def target(self, name: str) -> str:
        """The ``"module:attr"`` string ``name`` is registered as (KeyError if it is not)."""
        return self._targets[name]

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plugin or a test that registered something for a while)."""
        self._targets.pop(name, None)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
