"""Command-line values: one typed KEY=VALUE parser, and argparse flags made from a dataclass.

Every command reads KEY=VALUE options the same way (`train --set / --data-option`, `sweep --set /
--fit / --data-option / --metric-option / --grid`, `run -p NAME VALUE`):

* `parse_value(text)`: the text read as a YAML scalar or collection - ``True`` / ``true`` are
  True (``yes`` / ``on`` stay words), ``none`` / ``null`` None, ``3`` an int, ``1e-3`` / ``0.5``
  floats, ``[1, 4]`` a list, ``{"identity": 16}`` a dict, anything else (``abc``, ``cuda:1``) the
  string itself;
* `parse_assignments(items, flag, types)`: ``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``, each value
  checked against (and converted to) its declared type when `types` names one (`field_types` of a
  dataclass), so ``--set learn_scale=True`` is the bool True and ``--set latent_dim=abc`` fails
  naming the field and the type it expects;
* `add_dataclass_flags(parser, cls)`: one flag per dataclass field (``--batch-size``, booleans as
  ``--hflip / --no-hflip``, ``none`` for optional fields), typed by the annotation, its help the
  field's line in the class docstring's ``Attributes:`` section, default "not given"
  (`given_fields` collects what was given).

`UsageError` is the error a command raises for a bad argument or value; `facelib.cli.main` exits 2
on it (and on any ValueError / TypeError), 1 on a failure at run time. Imports nothing of facelib.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import types
import typing
from typing import Any, Iterable

import yaml

__all__ = ["UsageError", "parse_value", "parse_assignments", "parse_list", "convert", "check_names", "field_types",
           "field_docs",
           "add_dataclass_flags", "given_fields", "flag_name"]


class UsageError(ValueError):
    """A bad command-line argument or value: the CLI prints the message in one line and exits 2."""


#: Texts read as None besides YAML's own null / Null / ~ (papermill and Python spell it None).
_NONE = {"none", "None"}
#: Words a bool field reads (`parse_value` leaves them strings).
_WORDS = {"yes": True, "no": False, "on": True, "off": False, "true": True, "false": False}
#: A number YAML 1.1 leaves a string: 1e-3, 5E4, -2e+1 (YAML wants a dot in the mantissa).
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_value(text: str) -> Any:
    """`text` as a typed value: YAML (safe loader) scalars and collections, numbers in any float
    spelling, ``none`` as None; text that is not YAML, or is YAML for a string, stays the string.
    A value that opens a list or dict (``[`` / ``{``) but does not close it is an error."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped in _NONE:
        return None
    if _NUMBER.fullmatch(stripped):
        number = float(stripped)
        return int(number) if re.fullmatch(r"[-+]?\d+", stripped) else number
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        if stripped[:1] in "[{":
            why = " ".join(str(err).split())[:160]
            raise UsageError(f"cannot read {text!r} as a list/dict ({why}); write e.g. [1, 4, 10] or "
                             '{"identity": 16}') from None
        return text
    if isinstance(value, (dict, list)) and stripped[:1] not in "[{":
        return text  # "a: b" or "- x" are YAML collections, but not what a flag's value means
    if isinstance(value, bool) and stripped.lower() not in ("true", "false"):
        return text  # YAML 1.1's yes / no / on / off stay words (papermill reads them so)
    if isinstance(value, (str, bool, int, float, dict, list)) or value is None:
        return value
    return text  # YAML dates and the like: the text as given


def parse_list(text: str) -> list[Any]:
    """A comma-separated list of values (``1e-3,5e-4``; each one `parse_value`d), or a YAML list
    (``[[1, 2], [3, 4]]``) when the text opens with ``[``."""
    stripped = text.strip()
    if stripped.startswith("["):
        value = parse_value(stripped)
        if isinstance(value, list) and value:
            return value
        raise UsageError(f"{text!r} is an empty list; give at least one value")
    parts = [p.strip() for p in stripped.split(",")]
    if not all(parts):
        raise UsageError(f"{text!r} has an empty value; write V1,V2,... (or a YAML list [V1, V2])")
    return [parse_value(p) for p in parts]


# -- types --------------------------------------------------------------------------------------
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> annotation (evaluated) of dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def describe_type(annotation: Any) -> str:
    """An annotation in words: "an integer or none", "true/false", "a number", ..."""
    words = {bool: "true/false", int: "an integer", float: "a number", str: "a string", type(None): "none",
             dict: "a mapping {key: value}", list: "a list [a, b]"}
    out = []
    for member in _members(annotation):
        origin = typing.get_origin(member) or member
        out.append(words.get(origin, getattr(origin, "__name__", str(origin))))
    return " or ".join(dict.fromkeys(out))


def _as(member: Any, value: Any, raw: str | None) -> tuple[bool, Any]:
    """(fits, converted) of `value` for one member of a union."""
    origin = typing.get_origin(member) or member
    if member is Any:
        return True, value
    if member is type(None):
        return value is None, None
    if origin is bool:
        if isinstance(value, str) and value.lower() in _WORDS:
            return True, _WORDS[value.lower()]  # a field that takes True/False reads yes / no too
        return isinstance(value, bool), value
    if origin is int:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), \
            float(value) if isinstance(value, (int, float)) else value
    if origin is str:
        if isinstance(value, str):
            return True, value
        return raw is not None and not isinstance(value, (dict, list)), raw
    if origin in (dict, list, tuple):
        return isinstance(value, dict if origin is dict else (list, tuple)), value
    if isinstance(origin, type):
        return isinstance(value, origin), value
    return True, value


def convert(value: Any, annotation: Any, name: str, raw: str | None = None) -> Any:
    """`value` checked against `annotation` (a union's members in order: a bool field takes only
    True/False, an int field an integral number, a str field the text as given); `UsageError`
    naming the field and the type otherwise. `raw` is the text the value was read from."""
    members = _members(annotation)
    if value is None and type(None) in members:
        return None
    # a string field keeps its text ("none" is None only for a field that takes None)
    if isinstance(value, str) or raw is None:
        order = members
    else:
        order = tuple(m for m in members if (typing.get_origin(m) or m) is not str) + \
            tuple(m for m in members if (typing.get_origin(m) or m) is str)
    for member in order:
        fits, converted = _as(member, value, raw)
        if fits:
            return converted
    shown = raw if raw is not None else repr(value)
    raise UsageError(f"{name} expects {describe_type(annotation)}, got {shown}")


def parse_assignments(items: Iterable[str], flag: str, types: dict[str, Any] | None = None,
                      what: str = "field") -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``: keys with ``-`` read as ``_``, values by
    `parse_value`, then by `convert` where `types` (name -> annotation) names the key; a key that
    `types` lacks is kept as read (its receiver checks it; `check_names` refuses unknown keys).
    Raises `UsageError` naming `flag` and the key."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got {item!r}")
        if key in out:
            raise UsageError(f"{flag} {key}=... is given twice; give each {what} once")
        value = parse_value(text)
        if types and key in types:
            value = convert(value, types[key], f"{flag} {key}", raw=text)
        out[key] = value
    return out


def check_names(values: dict[str, Any], known: Iterable[str], flag: str, what: str) -> None:
    """`UsageError` for keys of `values` not in `known`, listing the known ones."""
    known = list(known)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"{flag}: unknown {what}(s) {unknown}; known: {', '.join(known)}")


# -- flags from a dataclass -----------------------------------------------------------------------
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its text in the class docstring's ``Attributes:`` section (one line each,
    continuation lines joined), for every field documented there."""
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    docs: dict[str, str] = {}
    current = None
    indent = None
    for line in lines[start + 1:]:
        if not line.strip():
            current = None
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        match = re.match(r"(\w+):\s*(.*)", line.strip()) if depth == indent else None
        if match:
            current = match.group(1)
            docs[current] = match.group(2)
        elif current is not None:
            docs[current] += " " + line.strip()
    return docs


def flag_name(field: str) -> str:
    """The flag of a field: ``batch_size`` -> ``--batch-size``."""
    return "--" + field.replace("_", "-")


class _Typed:
    """argparse `type=` for a field: `parse_value`, then `convert` (argparse reports the error)."""

    def __init__(self, annotation: Any, flag: str):
        self.annotation, self.flag = annotation, flag
        self.__name__ = describe_type(annotation)  # argparse's "invalid <name> value"

    def __call__(self, text: str) -> Any:
        try:
            return convert(parse_value(text), self.annotation, self.flag, raw=text)
        except UsageError:  # argparse names the flag
            raise argparse.ArgumentTypeError(f"expects {describe_type(self.annotation)}, got {text}") from None


def add_dataclass_flags(parser: argparse.ArgumentParser | Any, cls: type, exclude: Iterable[str] = (),
                        choices: dict[str, Iterable[Any]] | None = None,
                        aliases: dict[str, Iterable[str]] | None = None) -> list[str]:
    """One flag per field of dataclass `cls` (but `exclude`) on `parser` (or an argument group);
    the fields it added, in order. A field typed bool is ``--name / --no-name``; any other field
    takes a value read by `parse_value` and checked by `convert` (``none`` for optional fields).
    `choices` limits a field's values; `aliases` adds option strings. The default is "not given"
    (the attribute is absent from the namespace): `given_fields` collects what was given. The
    help is the field's doc (`field_docs`) and its default."""
    hints, docs = field_types(cls), field_docs(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    added = []
    for name, annotation in hints.items():
        if name in set(exclude):
            continue
        flag = flag_name(name)
        default = defaults[name]
        shown = "none" if default is None else default
        help_text = (docs.get(name, "") + f" (default: {shown})").strip().replace("%", "%%")
        option_strings = [flag, *(aliases or {}).get(name, ())]
        if annotation is bool:
            parser.add_argument(*option_strings, dest=name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            kwargs: dict[str, Any] = {}
            if choices and name in choices:
                kwargs["choices"] = tuple(choices[name])
                kwargs["metavar"] = "{" + ",".join(map(str, kwargs["choices"])) + "}"
            parser.add_argument(*option_strings, dest=name, type=_Typed(annotation, flag), default=argparse.SUPPRESS,
                                help=help_text, **({"metavar": name.upper()} | kwargs))
        added.append(name)
    return added


def given_fields(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The fields among `names` that the command line gave (those `add_dataclass_flags` made)."""
    return {name: getattr(args, name) for name in names if hasattr(args, name)}
