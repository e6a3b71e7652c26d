"""The data-set registry and the one loader contract.

`DATASETS` (a `facelib.registry.Registry`) maps each data set's name to a `DatasetInfo`: its
loader and the options that loader takes, read once from the loader's signature when the
loader module registers it with the `register_dataset` decorator. `facelib.data.load` and every
caller that must know a set's options (`study.load_data`, `python -m facelib train`) ask the
registry; nothing inspects a loader.

The contract (checked when a loader registers, and on every `load`):

* every data set takes ``size`` (an int: the side of the square images in pixels; ``None``
  where a set has native non-square images) and ``channels`` (1 grey, 3 RGB; a grey-only set
  registers ``channels=(1,)`` and refuses 3 saying so); ``crop`` where a set crops (LFW);
* ``split`` picks a part of a set's evaluation protocol, with one meaning everywhere:
  ``"train"`` the part a model is fitted on, ``"test"`` the held-out part it is scored on
  (other people), ``"all"`` every image where a set has that choice; a set adds its own
  parts only where its protocol has more (lfw-pairs: ``"10_folds"``, View 2). A set without
  a protocol takes no ``split``. Options that add or drop images have their own names
  (lfw-pairs ``other_images``, lfw-people ``exclude_pairs``, which takes lfw-pairs' split names);
* an option the set does not take is refused, naming the set's own options.

Old option names (LFW's ``color``, lfw-pairs' ``subset`` and boolean ``people``, Yale B's
``people``) are translated here and only here (`translate_options`), with a
DeprecationWarning, so stored options (the zoo manifest's recipes, old spec files) still load.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from facelib.registry import Registry, UnknownNameError

from .dataset import FaceDataset

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetOption",
    "register_dataset",
    "dataset_info",
    "translate_options",
    "check_contract_size",
    "check_channels",
    "CONTRACT_OPTIONS",
    "SPLITS",
]

#: The options every data set takes.
CONTRACT_OPTIONS = ("size", "channels")
#: The shared `split` values: the protocol's training part, its held-out part, everything.
SPLITS = ("train", "test", "all")

DATASETS: Registry["DatasetInfo"] = Registry(
    "data set", hint="A data set is a module whose loader is registered with "
                     "@facelib.data.register_dataset(NAME) (see DEVELOPING.md, Data)")


@dataclass(frozen=True)
class DatasetOption:
    """One keyword option of a loader: its name, default (`inspect.Parameter.empty` if none) and
    annotation as written."""

    name: str
    default: Any
    annotation: str

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class DatasetInfo:
    """A registered data set: its name, loader, the options the loader takes, the channel counts
    it can give, and `extra_options`, further keywords a loader takes through ``**options``
    (the synthetic faces' factor ranges)."""

    name: str
    loader: Callable[..., FaceDataset]
    options: tuple[DatasetOption, ...]
    channels: tuple[int, ...] = (1,)
    extra_options: tuple[str, ...] = ()
    summary: str = ""

    @classmethod
    def from_loader(cls, name: str, loader: Callable[..., FaceDataset], channels: Iterable[int] = (1,),
                    extra_options: Iterable[str] = ()) -> "DatasetInfo":
        """The description of `loader`, checked against the contract (keyword options, `size` and
        `channels` among them; ``**options`` only with `extra_options` naming what it takes)."""
        what = f"data set {name!r} (loader {getattr(loader, '__qualname__', loader)!r})"
        channels = tuple(int(c) for c in channels)
        if not channels or not set(channels) <= {1, 3}:
            raise ValueError(f"{what}: channels must list 1 and/or 3, got {channels!r}")
        extra_options = tuple(str(o) for o in extra_options)
        options, var_keyword = [], False
        for p in inspect.signature(loader).parameters.values():
            if p.kind is p.VAR_KEYWORD:
                var_keyword = True
            elif p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL):
                raise ValueError(f"{what}: a loader takes keyword options only; {p.name!r} is positional")
            else:
                annotation = p.annotation if isinstance(p.annotation, str) else inspect.formatannotation(p.annotation)
                options.append(DatasetOption(p.name, p.default, "" if p.annotation is p.empty else annotation))
        names = {o.name for o in options}
        missing = [o for o in CONTRACT_OPTIONS if o not in names]
        if missing:
            raise ValueError(f"{what}: every data set takes {' and '.join(CONTRACT_OPTIONS)}; add "
                             f"{', '.join(missing)} to the loader (a grey-only set takes channels=1 and "
                             "registers channels=(1,))")
        if var_keyword != bool(extra_options):
            raise ValueError(f"{what}: a loader taking **options registers the names it accepts with "
                             "extra_options=, and only such a loader")
        doc = inspect.getdoc(loader) or ""
        return cls(name=name, loader=loader, options=tuple(options), channels=channels,
                   extra_options=extra_options, summary=doc.split("\n", 1)[0])

    @property
    def option_names(self) -> tuple[str, ...]:
        """Every option `load` accepts for this set, the signature's first."""
        return tuple(o.name for o in self.options) + self.extra_options

    def takes(self, option: str) -> bool:
        return option in self.option_names

    def default(self, option: str) -> Any:
        """The loader's default of `option` (`inspect.Parameter.empty` if it has none)."""
        for o in self.options:
            if o.name == option:
                return o.default
        raise UnknownNameError(self._unknown([option]))

    def _unknown(self, unknown: list[str]) -> str:
        return (f"data set {self.name!r} takes no option {', '.join(map(repr, unknown))}; its options are "
                f"{', '.join(self.option_names)}")

    def check(self, options: Mapping[str, Any]) -> None:
        """Refuse options this set does not take (naming its own) and a `size` / `channels` outside
        the contract; the loader checks the rest."""
        unknown = [k for k in options if not self.takes(k)]
        if unknown:
            raise UnknownNameError(self._unknown(unknown))
        if "size" in options:
            check_contract_size(options["size"], self.name)
        if "channels" in options:
            check_channels(options["channels"], self.channels, self.name)

    def load(self, **options: Any) -> FaceDataset:
        self.check(options)
        return self.loader(**options)


def check_contract_size(size: Any, name: str) -> None:
    """`size` must be a positive int (or None, which a set with native non-square images takes)."""
    if size is None:
        return
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size <= 0:
        hint = " (a string such as '96x84' is not a size: size=None gives a set's native images)" \
            if isinstance(size, str) else ""
        raise ValueError(f"data set {name!r}: size must be a positive int, the side of the square images in "
                         f"pixels, got {size!r}{hint}")


def check_channels(channels: Any, allowed: Iterable[int], name: str) -> int:
    """`channels` as an int in `allowed`; a grey-only set says so."""
    allowed = tuple(allowed)
    if isinstance(channels, (bool, np.bool_)) or not isinstance(channels, (int, np.integer)) or channels not in (1, 3):
        raise ValueError(f"data set {name!r}: channels must be 1 (grey) or 3 (RGB), got {channels!r}")
    if channels not in allowed:
        only = "grey only: it takes channels=1" if allowed == (1,) else f"of channels {allowed}"
        colour = ", ".join(n for n, info in DATASETS.items() if 3 in info.channels)
        raise ValueError(f"data set {name!r} is {only}, got channels={channels}; "
                         + (f"use a set with colour images ({colour}) for channels=3" if channels == 3
                            else "load it with channels=3"))
    return int(channels)


def register_dataset(name: str, *, channels: Iterable[int] = (1,), extra_options: Iterable[str] = (),
                     replace: bool = False):
    """Decorator registering a loader under `name` (see the module docstring for its contract):

        @register_dataset("my-faces", channels=(1, 3))
        def load_my_faces(*, size: int = 64, channels: int = 1, root=None) -> FaceDataset: ...

    `channels`: the channel counts the set can give; `extra_options`: the keywords a loader taking
    ``**options`` accepts. The loader is returned unchanged."""
    def decorator(loader: Callable[..., FaceDataset]) -> Callable[..., FaceDataset]:
        DATASETS.register(name, DatasetInfo.from_loader(name, loader, channels, extra_options), replace=replace)
        return loader
    return decorator


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of data set `name`; `UnknownNameError` listing the known names."""
    return DATASETS[name]


# -- old option names: translated here only ------------------------------------------------
def _same(value: Any) -> Any:
    return value


def _color(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return 3 if value else 1
    return value  # left for the channels check to refuse, naming the value


#: data set -> old option -> (new option, value translation). lfw-pairs' `people` was a bool
#: ("also the pairs' people's other images"), Yale B's a split ("train" / "test" / "all").
_RENAMED: dict[str, dict[str, tuple[str, Callable[[Any], Any]]]] = {
    "lfw-people": {"color": ("channels", _color)},
    "lfw-pairs": {"color": ("channels", _color), "subset": ("split", _same), "people": ("other_images", _same)},
    "yaleb": {"people": ("split", _same)},
}


def translate_options(name: str, options: Mapping[str, Any], warn: bool = True) -> dict[str, Any]:
    """`options` of data set `name` with old option names replaced by the contract's (``color`` ->
    ``channels``, ``subset`` -> ``split``, lfw-pairs' ``people`` -> ``other_images``, Yale B's
    ``people`` -> ``split``), with a DeprecationWarning when `warn`; an old name given beside its
    new one is refused. Options of other sets, and new names, come back as they are."""
    name = DATASETS.canonical(name) if name in DATASETS else name
    out, changes = dict(options), []
    for old, (new, convert) in _RENAMED.get(name, {}).items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"data set {name!r}: pass {new}= only ({old}= is its old name)")
        value = out.pop(old)
        out[new] = convert(value)
        changes.append(f"{old}={value!r} is now {new}={out[new]!r}")
    if changes and warn:
        warnings.warn(f"data set {name!r}: old option names, translated: {'; '.join(changes)}; use the new names",
                      DeprecationWarning, stacklevel=3)
    return out
