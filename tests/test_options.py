"""facelib.options: the one typed KEY=VALUE parser and the flags made from a dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from facelib.models.base import ModelConfig
from facelib.options import (UsageError, add_dataclass_flags, convert, field_docs, field_types, given_fields,
                             parse_assignments, parse_list, parse_value)
from facelib.train import TrainConfig


@pytest.mark.parametrize("text, value", [
    ("True", True), ("true", True), ("False", False), ("false", False), ("none", None), ("None", None),
    ("null", None), ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 1e-3), ("5E4", 5e4), ("-2e+1", -20.0),
    ("[1, 2]", [1, 2]), ('{"identity": 16}', {"identity": 16}), ("{a: 1}", {"a": 1}), ("abc", "abc"),
    ("cuda:1", "cuda:1"), ("yes", "yes"), ("a: b", "a: b"), ("", None),
])
def test_values_are_read_as_yaml_with_numbers_in_any_spelling(text, value):
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_a_list_or_dict_cut_short_is_an_error_with_an_example():
    with pytest.raises(UsageError, match=r"cannot read '\[1, 4' as a list/dict.*write e\.g\. \[1, 4, 10\]"):
        parse_value("[1, 4")


def test_assignments_are_typed_by_the_fields_they_name():
    types = field_types(TrainConfig)
    got = parse_assignments(["lr=1e-3", "epochs=2", "max-steps=none", "hflip=true", "group_batches=yes",
                             "device=0", "max_grad_norm=1"], "--fit", types)
    assert got == {"lr": 1e-3, "epochs": 2, "max_steps": None, "hflip": True, "group_batches": True,
                   "device": "0", "max_grad_norm": 1.0}
    assert type(got["device"]) is str and type(got["max_grad_norm"]) is float
    assert parse_assignments(["learn_scale=True"], "--set", field_types(ModelConfig)) == {"learn_scale": True}
    # an untyped key keeps its YAML value (the receiver checks it)
    assert parse_assignments(["blocks={identity: 16}", "x=abc"], "--set") == {"blocks": {"identity": 16}, "x": "abc"}


@pytest.mark.parametrize("item, said", [
    ("epochs=abc", "--fit epochs expects an integer, got abc"),
    ("epochs=2.5", "--fit epochs expects an integer, got 2.5"),
    ("hflip=maybe", "--fit hflip expects true/false, got maybe"),
    ("lr=[1]", "--fit lr expects a number, got [1]"),
    ("max_steps=x", "--fit max_steps expects an integer or none, got x"),
    ("epochs", "--fit expects KEY=VALUE, got 'epochs'"),
])
def test_a_value_of_the_wrong_type_names_the_field_and_the_type(item, said):
    with pytest.raises(UsageError) as err:
        parse_assignments([item], "--fit", field_types(TrainConfig))
    assert str(err.value) == said


def test_a_key_given_twice_is_refused():
    with pytest.raises(UsageError, match="lr=... is given twice"):
        parse_assignments(["lr=1", "lr=2"], "--fit")


def test_lists_for_a_grid():
    assert parse_list("1e-3,5e-4") == [1e-3, 5e-4]
    assert parse_list("small, resnet") == ["small", "resnet"]
    assert parse_list("[[1, 2], [3]]") == [[1, 2], [3]]
    for bad in ("1,,2", "[]"):
        with pytest.raises(UsageError):
            parse_list(bad)


def test_convert_keeps_a_string_fields_text():
    assert convert(1, str, "device", raw="1") == "1"
    assert convert(None, str | None, "x", raw="none") is None
    assert convert(None, str, "x", raw="none") == "none"
    with pytest.raises(UsageError, match="x expects an integer, got True"):
        convert(True, int, "x", raw="True")


def test_field_docs_are_read_from_the_attributes_section():
    docs = field_docs(TrainConfig)
    assert set(docs) == set(field_types(TrainConfig))  # every field documented
    assert docs["lr"].startswith("Adam learning rate")
    assert docs["batch_size"].endswith("when those are not given).")  # a continuation line joined
    assert "  " not in docs["kl_warmup_steps"]


@dataclass
class Knobs:
    """Knobs.

    Attributes:
        size: how big.
        rate: how fast, per
            second.
        flag: on or off.
        limit: at most this many.
    """

    size: int = 3
    rate: float = 0.5
    flag: bool = False
    limit: int | None = None


def test_flags_from_a_dataclass_give_only_what_was_given():
    parser = argparse.ArgumentParser()
    names = add_dataclass_flags(parser, Knobs, exclude=("size",))
    assert names == ["rate", "flag", "limit"]
    args = parser.parse_args(["--rate", "1e-3", "--flag", "--limit", "none"])
    assert given_fields(args, names) == {"rate": 1e-3, "flag": True, "limit": None}
    assert given_fields(parser.parse_args(["--no-flag"]), names) == {"flag": False}
    assert given_fields(parser.parse_args([]), names) == {}
    assert "how fast, per second. (default: 0.5)" in " ".join(parser.format_help().split())
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "4"])  # excluded
    with pytest.raises(SystemExit):
        parser.parse_args(["--limit", "many"])
