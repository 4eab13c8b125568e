"""One small registry, used for models, tasks and objectives (timm / big_vision pattern)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any


class Registry:
    """Maps names to builder functions; `register` is a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, fn: Callable[..., Any] | None = None, *, name: str | None = None):
        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            key = name or f.__name__
            if key in self._items:
                raise KeyError(f"{self.kind} {key!r} is already registered")
            self._items[key] = f
            return f

        return add(fn) if fn is not None else add

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; choose from: {', '.join(sorted(self._items))}")
        return self._items[name]

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})

    def list(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: str) -> bool:
        return name in self._items
