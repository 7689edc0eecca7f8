"""Settings as one tree of dataclasses per command: the single source of defaults, units and help.

A field is declared with `setting(default, help, ...)` (its checks ride along: minimum, maximum,
choices), and a nested tree with `group(Config, help)`. From the tree come:

- the command-line flags (`flags` below): a field's dotted path with dashes, `ti.steps` ->
  `--ti-steps`; a group may give its own prefix (the teacher's head: `--teacher-finetune`) or
  none (the generation settings inside `tint distill`: `--alpha`);
- reading TOML or JSON (`from_dict`): every value checked against its field's type and limits;
- what a run saves (`to_dict`): JSON that `from_dict` reads back into the same settings, so a
  run's run.json is a config that repeats it.

Errors name the field's dotted path (`SettingError.field`); the command line shows the flag."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING

from tint.errors import TintError


class SettingError(TintError):
    """A setting with a value it cannot take; `field` is its dotted path, e.g. "ti.steps"."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def setting(
    default=MISSING,
    help: str = "",
    *,
    factory=MISSING,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    choices: tuple | None = None,
    positional: bool = False,
    metavar: str | None = None,
    none: str | None = None,
):
    """A field with its help text and the checks its values must pass.

    Args:
        minimum, maximum: inclusive bounds; above: an exclusive lower bound.
        positional: given on the command line without a flag (SUPPORT_DIR).
        none: the word that gives None on the command line ("all" queries).
    """
    metadata = {
        "help": help,
        "minimum": minimum,
        "above": above,
        "maximum": maximum,
        "choices": choices,
        "positional": positional,
        "metavar": metavar,
        "none": none,
    }
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(
    cls: type,
    help: str = "",
    prefix: str | None = None,
    factory=None,
    exclude: tuple[str, ...] = (),
):
    """A nested tree of settings. Its flags are prefixed by `prefix` (default: the field's name;
    "" puts them beside the parent's own); `exclude` names fields that get no flag here (the
    command sets them), though a settings file may still hold them."""
    metadata = {"help": help, "group": True, "prefix": prefix, "exclude": exclude}
    return dataclasses.field(default_factory=factory or cls, metadata=metadata)


def fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init]


def is_group(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("group"))


def leaves(cls: type, path: str = "", prefix: str = "", exclude: tuple[str, ...] = ()):
    """(dotted path, flag name without dashes, field, type) of every setting of the tree that
    has a flag."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in exclude:
            continue
        dotted = f"{path}{f.name}"
        if is_group(f):
            own = f.metadata.get("prefix")
            own = f.name.replace("_", "-") if own is None else own
            inner = f"{prefix}{own}-" if own else prefix
            yield from leaves(hints[f.name], f"{dotted}.", inner, f.metadata.get("exclude", ()))
        else:
            yield dotted, f"{prefix}{f.name.replace('_', '-')}", f, hints[f.name]


def flag_of(cls: type, path: str) -> str:
    """The command-line flag of a dotted path: "ti.steps" -> "--ti-steps". A path relative to a
    group of the tree (a library's own settings, "ti.template" inside "generation") is found by
    its end, if only one setting ends so."""
    found = [
        (name, f)
        for dotted, name, f, _ in leaves(cls)
        if dotted == path or dotted.endswith(f".{path}")
    ]
    if len(found) != 1:
        return path
    name, f = found[0]
    return name.upper().replace("-", "_") if f.metadata.get("positional") else f"--{name}"


# --- reading and writing ---------------------------------------------------------------------


def read_file(path) -> dict:
    """The settings in a TOML or JSON file (a run's run.json is one), as nested tables."""
    from pathlib import Path

    from tint.io.storage import read_json_object

    path = Path(path).expanduser()
    if path.suffix.lower() == ".json":
        return read_json_object(path, "settings file")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TintError(f"{path}: no such settings file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TintError(f"{path}: not a readable settings file ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise TintError(f"{path}: not a TOML settings file ({e})") from None


def from_dict(cls: type, data: object, where: str, path: str = ""):
    """An instance of dataclass `cls` from parsed JSON/TOML `data` (nested dataclasses from
    nested tables, tuples from lists); fields that `data` leaves out keep their defaults. Every
    value is checked against its field's type and limits.

    Args:
        where: names the source in errors, e.g. "glyph-teacher/config.json".
    """
    if not isinstance(data, dict):
        raise TintError(f"{where}: expected a table of settings, found {_kind(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise TintError(
            f"{where}: unknown setting {path}{unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    values = {}
    for name, value in data.items():
        dotted = f"{path}{name}"
        if is_group(known[name]):
            values[name] = from_dict(hints[name], value, where, f"{dotted}.")
        else:
            value = coerce(value, hints[name], f"{where}: {dotted}")
            try:
                values[name] = check(known[name], dotted, value)
            except SettingError as e:
                raise TintError(f"{where}: {e}") from None
    missing = [
        n
        for n, f in known.items()
        if n not in values and f.default is MISSING and f.default_factory is MISSING
    ]
    if missing:
        raise TintError(f"{where}: missing setting {path}{missing[0]!r}")
    try:
        return cls(**values)
    except SettingError as e:
        raise TintError(f"{where}: {e}") from None


def to_dict(settings) -> dict:
    """The settings as JSON-ready data (tuples as lists) that `from_dict` reads back."""

    def plain(value):
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields(type(value))}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(settings)


def check(f: dataclasses.Field, path: str, value):
    """`value` if it passes the field's limits, else a SettingError naming the field."""
    m = f.metadata
    if value is None or isinstance(value, bool):
        return value
    items = value if isinstance(value, (list, tuple)) else [value]
    for v in items:
        if not isinstance(v, (int, float, str)):
            continue
        if m.get("choices") is not None and v not in m["choices"]:
            options = ", ".join(map(str, m["choices"]))
            raise SettingError(path, f"must be one of {options}, got {v!r}")
        if isinstance(v, str):
            continue
        if m.get("minimum") is not None and not v >= m["minimum"]:
            raise SettingError(path, f"must be at least {m['minimum']}, got {v}")
        if m.get("above") is not None and not v > m["above"]:
            raise SettingError(path, f"must be above {m['above']}, got {v}")
        if m.get("maximum") is not None and not v <= m["maximum"]:
            raise SettingError(path, f"must be at most {m['maximum']}, got {v}")
    return value


def check_all(settings, path: str = "") -> None:
    """Check every field of a settings tree against its limits (see `check`)."""
    for f in fields(type(settings)):
        value = getattr(settings, f.name)
        if is_group(f):
            check_all(value, f"{path}{f.name}.")
        else:
            check(f, f"{path}{f.name}", value)


def _kind(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}" if value is not None else "null"
    )


def coerce(value: object, hint, where: str):
    """`value` as the type `hint` says, or a TintError naming `where`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return coerce(value, option, where)
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
        items = [coerce(v, t, where) for v, t in zip(value, item_types)]
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


# --- the command line --------------------------------------------------------------------------


def add_flags(parser, cls: type, base, aliases: dict[str, str] | None = None) -> None:
    """An argparse option for every setting of `cls` (`setting(positional=True)` ones as
    arguments), with the help text and the default of `base`. Options default to nothing, so
    that `given` tells what the command line set. `aliases` maps older flags to dotted paths."""
    import argparse

    flags = {}
    for dotted, name, f, hint in leaves(cls):
        default = value_at(base, dotted)
        unset = default is None or default is False or default == "" or default == []
        shown = "" if unset else f" (default {_text(default)})".replace("%", "%%")
        text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        kw = {"dest": dotted, "default": argparse.SUPPRESS, "help": text}
        if hint is bool:
            parser.add_argument(f"--{name}", action="store_true", **kw)
        elif f.metadata.get("positional"):
            kw.pop("dest")  # argparse takes a positional's dest from its name
            metavar = name.upper().replace("-", "_")
            parser.add_argument(
                dotted, nargs="?", type=_parser(hint, f, dotted), metavar=metavar, **kw
            )
        else:
            kw["help"] += shown
            choices = f.metadata.get("choices")
            metavar = f.metadata.get("metavar") or (
                "|".join(map(str, choices)) if choices else _metavar(hint)
            )
            parser.add_argument(f"--{name}", type=_parser(hint, f, dotted), metavar=metavar, **kw)
        flags[dotted] = (f"--{name}", hint, f)
    for old, dotted in (aliases or {}).items():
        new, hint, f = flags[dotted]
        parser.add_argument(
            old,
            dest=dotted,
            type=None if hint is bool else _parser(hint, f, dotted),
            nargs=0 if hint is bool else None,
            default=argparse.SUPPRESS,
            action=_deprecated(new, hint is bool),
            help=argparse.SUPPRESS,
        )


def given(namespace, cls: type) -> dict[str, object]:
    """The settings a parsed command line set: dotted path -> value."""
    paths = {dotted for dotted, *_ in leaves(cls)}
    return {k: v for k, v in vars(namespace).items() if k in paths}


def load(cls: type, base, flags: dict[str, object], file=None):
    """The settings: `base`, then a settings file (TOML, or a run's run.json), then the flags.
    Returns (settings, the dotted paths the file or the flags set)."""
    data = to_dict(base)
    explicit = set(flags)
    where = "the command line"
    if file is not None:
        extra = read_file(file)
        explicit |= set(_paths(extra))
        _merge(data, extra)
        where = str(file)
    for dotted, value in flags.items():
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = list(value) if isinstance(value, tuple) else value
    return from_dict(cls, data, where), explicit


def value_at(settings, dotted: str):
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


def _paths(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            yield f"{prefix}{key}"
            yield from _paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _merge(into: dict, extra: dict) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _text(value) -> str:
    if isinstance(value, (tuple, list)):
        return (
            "x".join(map(str, value))
            if all(isinstance(v, int) for v in value)
            else ",".join(map(str, value))
        )
    return str(value)


def _metavar(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args and all(a is int for a in args if a is not Ellipsis):
        return "HxW" if len(args) == 2 else "N,N,..."
    if origin in (tuple, list):
        return "A,B,..."
    return {int: "N", float: "X", str: "TEXT"}.get(hint, "VALUE")


def _parser(hint, f: dataclasses.Field, dotted: str):
    """A function from a flag's text to a checked value of type `hint` (argparse reports its
    ArgumentTypeError as "argument --flag: ...", exit 2)."""
    import argparse

    none_word = f.metadata.get("none")

    def parse(text: str):
        if none_word is not None and text == none_word:
            return None
        try:
            value = _from_text(text, hint)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_metavar(hint)}, got {text!r}") from None
        try:
            return check(f, dotted, value)
        except SettingError as e:
            raise argparse.ArgumentTypeError(e.problem) from None

    return parse


def _from_text(text: str, hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _from_text(text, next(a for a in args if a is not type(None)))
    if origin is tuple:
        item = args[0]
        if item is int and len(args) == 2 and args[1] is int:  # a size: N or HxW
            h, _, w = text.lower().partition("x")
            return (int(h), int(w or h))
        parts = [p.strip() for p in text.split(",")]
        if len(args) == 2 and args[1] is not Ellipsis and len(parts) != 2:
            raise ValueError(text)
        return tuple(item(p) for p in parts)
    if origin is list:
        return [args[0](p.strip()) for p in text.split(",") if p.strip()]
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    return text


def _deprecated(new: str, flag: bool):
    import argparse
    import sys

    class Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(f"{parser.prog}: {option_string} is deprecated; use {new}", file=sys.stderr)
            setattr(namespace, self.dest, True if flag else values)

    return Deprecated
