"""The `tint` command line: each command's flags come from its settings (`tint.commands`), a
settings file or a run's run.json may set any of them (`--config`), and errors are one line on
stderr."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from tint.errors import TintError


def _amount(zero: bool):
    """An argparse type: a number of CPUs or GPUs, fractions allowed; 0 only if `zero`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError("must be at least 0" if zero else "must be above 0")
        return value

    return parse


OPTIONS = {
    "resume": ("--resume", {"action": "store_true", "help": "continue a run in OUT"}),
    "quiet": ("--quiet", {"action": "store_true", "help": "no progress bars"}),
    "json": ("--json", {"action": "store_true", "help": "print one JSON object"}),
    "threads": ("--threads", {"type": int, "metavar": "N", "help": "CPU threads for torch"}),
    "ray": (
        "--ray",
        {
            "nargs": "?",
            "const": "",
            "metavar": "ADDRESS",
            "help": "run on a Ray cluster: ADDRESS, 'auto', or none for RAY_ADDRESS or a local "
            "Ray instance started for the run (docs/SCALING.md)",
        },
    ),
    "task_cpus": (
        "--{unit}-cpus",
        {
            "type": _amount(zero=False),
            "default": 1.0,
            "metavar": "N",
            "help": "with --ray: CPUs per {unit}",
        },
    ),
    "task_gpus": (
        "--{unit}-gpus",
        {
            "type": _amount(zero=True),
            "default": 0.0,
            "metavar": "N",
            "help": "with --ray: GPUs per {unit}",
        },
    ),
}


class _Help(argparse.HelpFormatter):
    """Help texts wrapped at spaces only, so that a flag a text names is never split."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_Help, **kwargs)

    def error(self, message: str):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from tint import __version__
    from tint.commands import commands
    from tint.config import add_flags

    parser = _Parser(
        prog="tint",
        description="Few-shot distillation with generative data: specialise a Stable-Diffusion-"
        "format model to a few images per class (textual + null-text inversion) and generate.",
    )
    parser.add_argument("--version", action="version", version=f"tint {__version__}")
    sub = parser.add_subparsers(dest="name", required=True, metavar="COMMAND", parser_class=_Parser)
    families = {}
    for command in commands():
        first, *rest = command.name.split()
        if rest:  # `tint pretrain teacher`: a family of commands under one word
            if first not in families:
                kinds = ", ".join(_kinds(first))
                family = sub.add_parser(first, help=f"{first} one of: {kinds}")
                families[first] = family.add_subparsers(
                    dest="kind", required=True, metavar="KIND", parser_class=_Parser
                )
            p = families[first].add_parser(
                rest[0], help=command.help, description=command.description
            )
        else:
            p = sub.add_parser(
                first,
                help=command.help,
                description=command.description,
                aliases=list(command.names),
            )
        add_flags(p, command.settings, command.base(), command.aliases)
        p.add_argument(
            "--config",
            metavar="FILE",
            help="settings from a TOML or JSON file; a run's OUT/run.json repeats it. Flags "
            "override the file",
        )
        for option in command.options:
            flag, kw = OPTIONS[option]
            unit = command.task_unit
            p.add_argument(flag.format(unit=unit), dest=option, **_with_unit(kw, unit))
        p.set_defaults(command=command)
    return parser


def _with_unit(kw: dict, unit: str) -> dict:
    return {**kw, "help": kw["help"].format(unit=unit)}


def _kinds(first: str) -> list[str]:
    from tint.commands import commands

    return [c.name.split()[1] for c in commands() if c.name.startswith(f"{first} ")]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors: argparse has printed them
        return int(e.code or 0)
    command = args.command
    name = command.name.split()[0]
    try:
        settings, options = _settings(command, args)
        command.run(settings, options)
    except SystemExit as e:  # a usage error found once the settings file was read
        return int(e.code or 0)
    except TintError as e:
        return _fail(name, _flags_named(command, e))
    except OSError as e:
        from tint.io.storage import describe_os_error

        return _fail(name, describe_os_error(e))
    except MemoryError:
        return _fail(name, "out of memory (try a smaller --batch or fewer images)")
    except KeyboardInterrupt:
        print(f"tint {name}: interrupted (finished work is kept; use --resume)", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get("TINT_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return _fail(
            name, f"unexpected {type(e).__name__}: {first} (TINT_DEBUG=1 shows where; report it)"
        )
    return 0


def _settings(command, args):
    """The command's settings (defaults, then --config, then flags) and run options."""
    from tint.commands import Options
    from tint.config import flag_of, given, load, value_at

    flags = given(args, command.settings)
    settings, explicit = load(command.settings, command.base(), flags, args.config)
    missing = [
        flag_of(command.settings, p) for p in command.required if value_at(settings, p) is None
    ]
    if missing:
        prog = f"tint {command.name}"
        _Parser(prog=prog).error(f"the following arguments are required: {', '.join(missing)}")
    if command.check is not None:
        settings = command.check(settings, set(flags), explicit)
    options = Options(**{o: getattr(args, o) for o in command.options})
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    return settings, options


def _flags_named(command, error: TintError) -> str:
    """A settings error names its field; on the command line, that is its flag."""
    from tint.config import SettingError, flag_of

    if isinstance(error, SettingError):
        return f"{flag_of(command.settings, error.field)}: {error.problem}"
    return str(error)


def _fail(name: str, message: str) -> int:
    print(f"tint {name}: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
