"""`Registry`: the one way facelib maps names to things (models, architectures, data sets, metrics, scorers).

A registry is a read-only mapping from registered names to objects. Lookup forgives case, spaces
and ``_`` versus ``-`` (``"Beta_VAE"`` finds ``"beta-vae"``; `utils.normalise_name`), iteration
gives the names as they were registered, and an unknown name raises `UnknownNameError` listing
the known ones. Registration is a decorator, so an extension is its own module:

    @MODELS.register()          # a class whose `name` attribute is its name
    class MyVAE(BaseVAE): ...

    @SCORERS.register("my-score")
    class MyScore: ...

Registering a taken name is refused unless ``replace=True``; `unregister` removes one (tests).
Imports nothing of facelib but `utils`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from facelib.utils import normalise_name

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name no registry entry has; a KeyError for lookups and a ValueError for option checks."""

    def __str__(self) -> str:  # KeyError's str() would quote the sentence
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """Registered `kind`s by name (see the module docstring).

    Args:
        kind: what is registered, for messages ("model", "data set", ...).
        hint: a sentence appended to the unknown-name error (how to add one).
    """

    def __init__(self, kind: str, hint: str = ""):
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}
        self._keys: dict[str, str] = {}  # normalised -> registered spelling

    # -- lookup ---------------------------------------------------------------------------
    def canonical(self, name: str) -> str:
        """The registered spelling of `name`; `UnknownNameError` listing the known names."""
        if not isinstance(name, str):
            raise UnknownNameError(f"a {self.kind} is named by a string, got {name!r}; known: {self.known()}")
        key = self._keys.get(normalise_name(name))
        if key is None:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {self.kind}s: {self.known()}"
                                   + (f". {self.hint}" if self.hint else ""))
        return key

    def __getitem__(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalise_name(name) in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def known(self) -> str:
        """The registered names, comma-separated (for messages)."""
        return ", ".join(sorted(self._items)) or "(none)"

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {sorted(self._items)})"

    # -- registration ---------------------------------------------------------------------
    def register(self, name: str | None = None, obj: T | None = None, *, replace: bool = False) -> Any:
        """Register `obj` under `name`; without `obj`, a decorator. Without `name`, the object's
        own `name` attribute is used (models)."""
        if obj is not None:
            return self._add(name, obj, replace)

        def decorator(thing: T) -> T:
            self._add(name, thing, replace)
            return thing
        return decorator

    def _add(self, name: str | None, obj: T, replace: bool) -> T:
        name = getattr(obj, "name", None) if name is None else name
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a {self.kind} is registered under a non-empty string name, got {name!r}")
        key = normalise_name(name)
        taken = self._keys.get(key)
        if taken is not None and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered (as {taken!r}); pass replace=True "
                             "to replace it")
        if taken is not None:
            del self._items[taken]
        self._keys[key] = name
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> T:
        """Remove a registered name (a test's temporary entry); returns what it held."""
        key = self.canonical(name)
        del self._keys[normalise_name(key)]
        return self._items.pop(key)

