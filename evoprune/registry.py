"""A name -> factory registry, filled by a decorator (one pattern for models, data sets, criteria).

A *family* entry, registered as ``"prefix:"``, serves every name ``prefix:ARG`` (``npz:PATH``,
``torchvision:resnet18``): ``get`` returns its factory with ARG bound as the first argument."""
from __future__ import annotations

from functools import partial
from typing import Callable, Generic, TypeVar

from .errors import EvopruneError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if not isinstance(name, str):
            raise EvopruneError(f"{self.kind} must be a name, got {name!r}")
        if name in self._entries and not name.endswith(":"):
            return self._entries[name]
        prefix, sep, arg = name.partition(":")
        family = self._entries.get(prefix + ":") if sep else None
        if family is None:
            raise EvopruneError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        if not arg:
            raise EvopruneError(f"{self.kind} {name!r} needs a value after the colon, e.g. {prefix}:NAME")
        return partial(family, arg)

    def families(self) -> set[str]:
        """The ``prefix:`` entries."""
        return {n for n in self._entries if n.endswith(":")}

    def names(self) -> list[str]:
        return sorted(n + "NAME" if n.endswith(":") else n for n in self._entries)

    def __contains__(self, name: object) -> bool:
        try:
            self.get(name)
        except EvopruneError:
            return False
        return True
