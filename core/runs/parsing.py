"""Parsing run files into typed records: JSON values checked against dataclass type hints.

Every record in `core.runs.records` and `core.runs.metrics_records` is built here, so one set of
rules says what a well-formed file is: known fields type-checked, unknown ones ignored (a newer
workbench may add some), lists turned into the tuples a hint asks for.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, TypeVar

from core.config import from_dict


class RecordError(ValueError):
    """A file that does not hold the record it should; the message names what is wrong."""


Record = TypeVar("Record")


def number_or_none(value: Any) -> float | None:
    """A stored metric as a float, or None when a damaged file holds something else there."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) else None


def matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's type hint (str, int, float, bool, None, unions,
    tuples of one type, dicts)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return number_or_none(value) is not None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, list | tuple) and all(matches(one, item) for one in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return isinstance(value, hint)


def convert(value: Any, hint: Any) -> Any:
    """JSON lists become the tuples a hint asks for (nested ones too)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is not type(None) and matches(value, option):
                return convert(value, option)
        return value
    if origin is tuple and isinstance(value, list | tuple):
        item = typing.get_args(hint)[0]
        return tuple(convert(one, item) for one in value)
    return value


@functools.cache
def record_fields(kind: type) -> tuple[tuple[str, Any], ...]:
    """(name, resolved type hint) of each field of a record dataclass.

    Resolved once per class: `typing.get_type_hints` costs ~90 us, and listing runs parses
    hundreds of records (every history line, every split report) on each page rerun.
    """
    hints = typing.get_type_hints(kind)
    return tuple((item.name, hints[item.name]) for item in dataclasses.fields(kind))


def parse_record(kind: type[Record], values: Any) -> Record:
    """A flat record dataclass from a JSON object: known keys type-checked, unknown ones
    ignored (a newer workbench may add fields); RecordError names the first wrong field."""
    if not isinstance(values, dict):
        raise RecordError(f"expected an object, got {type(values).__name__}")
    chosen = {}
    for name, hint in record_fields(kind):
        if name not in values:
            continue
        value = values[name]
        if not matches(value, hint):
            raise RecordError(f"{name} is {value!r}")
        chosen[name] = convert(value, hint)
    try:
        return kind(**chosen)
    except TypeError as error:  # a required field is missing
        raise RecordError(str(error)) from None


def parse_config_section(kind: type[Record], values: Any) -> Record:
    """A config dataclass (DataConfig, ModelConfig, ...) from its JSON: strict, as training
    wrote it (unknown fields are an error), every present field type-checked."""
    try:
        config = from_dict(kind, values)
    except (TypeError, ValueError) as error:
        raise RecordError(str(error)) from None
    for name, hint in record_fields(kind):
        value = getattr(config, name)
        if dataclasses.is_dataclass(value):
            continue
        if not matches(list(value) if isinstance(value, tuple) else value, hint):
            raise RecordError(f"{name} is {value!r}")
    return config


def parse_lenient(kind: type[Record], values: dict[str, Any]) -> Record:
    """A record whose fields of the wrong type read as None (odd numbers are not fatal)."""
    chosen = {}
    for name, hint in record_fields(kind):
        if name in values and matches(values[name], hint):
            chosen[name] = convert(values[name], hint)
    return kind(**chosen)
