"""Settings as dataclasses, read from JSON or TOML data with every value checked against its
field's type: an unknown field or a value of the wrong type is one TintError naming the field."""

from __future__ import annotations

import dataclasses
import types
import typing

from tint.errors import TintError


def from_dict(cls: type, data: object, where: str):
    """An instance of dataclass `cls` from parsed JSON/TOML `data` (nested dataclasses from
    nested tables, tuples from lists). Fields that `data` leaves out keep their defaults.

    Args:
        where: names the source in errors, e.g. "glyph-teacher/config.json".
    """
    if not isinstance(data, dict):
        raise TintError(f"{where}: expected a table of settings, found {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise TintError(
            f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(fields))})"
        )
    values = {name: _coerce(value, hints[name], f"{where}: {name}") for name, value in data.items()}
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise TintError(f"{where}: missing setting {missing[0]!r}")
    return cls(**values)


def _kind(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}" if value is not None else "null"
    )


def _coerce(value: object, hint, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(value, option, where)
            except TintError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TintError(f"{where}: expected a list, found {_kind(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
            raise TintError(f"{where}: expected {len(args)} values, found {len(value)}")
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            item_types = [args[0] if args else object] * len(value)
        else:
            item_types = list(args) or [object] * len(value)
        items = [_coerce(v, t, where) for v, t in zip(value, item_types)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise TintError(f"{where}: expected a table, found {_kind(value)}")
        return dict(value)
    if hint is typing.Any or hint is object:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TintError(f"{where}: expected true or false, found {_kind(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TintError(f"{where}: expected a whole number, found {_kind(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TintError(f"{where}: expected a number, found {_kind(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TintError(f"{where}: expected a string, found {_kind(value)}")
        return value
    raise TypeError(f"no rule for settings of type {hint!r}")  # a field type this module lacks
