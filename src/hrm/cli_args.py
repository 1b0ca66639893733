"""One command-line dialect for every `hrm` sub-command.

A command declares its options once (`Option`: name, type, default, help, choices, positional or not);
`Command.parse` reads any of these spellings of one option:

    key=value   --key value   --key=value   key-with-dashes=value   --key-with-dashes value
    --flag (a boolean alone means true)   --flag false   flag=no
    a bare word: the next positional option (`hrm solve RUN PUZZLE` is `checkpoint=RUN puzzle=PUZZLE`)
    --          every later word is a positional value, even one that looks like an option

Booleans are spelled true/false, yes/no, on/off, 1/0 (any case) everywhere. A list option takes
key=a,b,c or --key a b c. A command with `passthrough` hands every undeclared key=value on, untouched, to
its own machinery (`hrm train`'s config keys, `hrm demo`'s overrides). An unknown key is one line naming
the nearest valid key, a wrong type one line naming the key and the value, both exit status 2; `--help`
prints a help generated from the declarations. Torch-free, so that `--help` is quick.
"""
from __future__ import annotations

import difflib
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
NONE_WORDS = ("none", "null")
HELP_WORDS = ("-h", "--help")
_KEY = re.compile(r"\+?[A-Za-z_][A-Za-z0-9_.\-]*")
_NUMBER = re.compile(r"-\.?\d")


class CommandLineExit(Exception):
    """Raised by `Command.parse`: a usage error (code 2) or the help (code 0). The only exception it raises."""

    code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(CommandLineExit):
    code = 2


class HelpRequested(CommandLineExit):
    code = 0


def parse_bool(text: str) -> bool:
    """The one set of boolean spellings: true/false, yes/no, on/off, 1/0, any case."""
    word = str(text).strip().lower()
    if word not in BOOLEAN_WORDS:
        raise ValueError(f"expected true or false (or yes/no, on/off, 1/0), got {text!r}")
    return BOOLEAN_WORDS[word]


def _type_name(tp: Callable[[str], Any]) -> str:
    names = {str: "TEXT", int: "INT", float: "NUMBER", bool: "BOOL", Path: "PATH"}
    return names.get(tp, getattr(tp, "__name__", "VALUE").upper())


def _convert(tp: Callable[[str], Any], text: str) -> Any:
    if tp is bool:
        return parse_bool(text)
    if tp is int:
        try:
            return int(text.strip())
        except ValueError:
            number = float(text)                         # 1e3 and 10.0 are integers too; 1.5 is not
            if not number.is_integer():
                raise ValueError from None
            return int(number)
    return tp(text)


def _expected(tp: Callable[[str], Any]) -> str:
    words = {int: "an integer", float: "a number", bool: "true or false (or yes/no, on/off, 1/0)"}
    return words.get(tp, _type_name(tp).lower())


@dataclass(frozen=True)
class Option:
    name: str                              # canonical spelling, with underscores: output_dir
    type: Callable[[str], Any] = str       # str, int, float, bool, Path, or any str -> value callable
    default: Any = None
    help: str = ""
    choices: Sequence[str] | None = None
    required: bool = False
    positional: bool = False               # may be given bare, in declaration order
    many: bool = False                     # a list: key=a,b,c or --key a b c (a positional one takes the rest)
    short: str | None = None               # e.g. "-o"
    metavar: str | None = None             # the type shown in --help

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def shown_type(self) -> str:
        if self.metavar:
            return self.metavar
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        return _type_name(self.type) + ("..." if self.many else "")

    def convert(self, text: str, said: str) -> Any:
        """One value from the command line, or a UsageError naming the key and the value."""
        if self.default is None and self.type not in (str, Path) and text.strip().lower() in NONE_WORDS:
            return None
        try:
            value = _convert(self.type, text)
        except (ValueError, TypeError, ArithmeticError):
            raise UsageError(f"{said}: expected {_expected(self.type)}, got {text!r}") from None
        if self.choices is not None and value not in self.choices:
            close = difflib.get_close_matches(str(value), list(self.choices), n=1)
            raise UsageError(f"{said}: expected one of {', '.join(self.choices)}, got {text!r}"
                             + (f"; did you mean '{close[0]}'?" if close else ""))
        return value


class Args:
    """The parsed command line: one attribute per option (its value or default), `command` (the chosen
    sub-command, if any), `given` (the options the line set) and, with passthrough, that list."""

    def __init__(self, values: dict[str, Any], given: set[str], command: str | None = None):
        self.__dict__.update(values)
        self._names = list(values)
        self.given = given
        self.command = command

    def values(self) -> dict[str, Any]:
        """The options' values, in declaration order."""
        return {name: getattr(self, name) for name in self._names}

    def __repr__(self) -> str:
        return f"Args({self.values()!r}, command={self.command!r})"


def _wrap(text: str, width: int) -> str:
    """Runs of unindented lines refilled as paragraphs; indented lines (examples) kept as they are."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.extend(textwrap.wrap(" ".join(run), width, break_on_hyphens=False))
            run.clear()

    for line in text.rstrip().splitlines():
        if line.strip() and not line[0].isspace():
            run.append(line.strip())
            continue
        flush()
        out.append(line.rstrip())
    flush()
    return "\n".join(out)


def _q(text: str) -> str:
    """A word of the command line, quoted, on one line whatever it holds."""
    return f"'{text}'" if text.isprintable() and "'" not in text else repr(text)


def _norm(key: str) -> str:
    return key.lstrip("-+").replace("-", "_")


@dataclass
class Command:
    prog: str                                        # "hrm data sudoku"
    description: str = ""
    options: Sequence[Option] = ()
    commands: dict[str, "Command"] = field(default_factory=dict)   # sub-commands, picked by the first word
    passthrough: str | None = None                   # attribute that collects undeclared key=value words, untouched
    passthrough_help: str = ""
    one_of: Sequence[tuple[str, ...]] = ()           # groups of which exactly one option must be given
    epilog: str = ""

    def __post_init__(self) -> None:
        self._by_name = {o.name: o for o in self.options}
        self._by_short = {o.short: o for o in self.options if o.short}
        assert len(self._by_name) == len(self.options), f"{self.prog}: an option is declared twice"

    # -- parsing ---------------------------------------------------------------------------------------

    def parse(self, argv: Sequence[str]) -> Args:
        """The Args of `argv`; raises CommandLineExit (UsageError or HelpRequested) and nothing else."""
        argv = [str(a) for a in argv]
        if self.commands:
            return self._parse_subcommand(argv)
        return self._parse_options(argv)

    def parse_or_exit(self, argv: Sequence[str]) -> Args:
        """`parse`, printing the help (exit 0) or a one-line error (exit 2) as argparse does."""
        try:
            return self.parse(argv)
        except CommandLineExit as e:
            print(e.message, file=sys.stdout if e.code == 0 else sys.stderr)
            raise SystemExit(e.code) from None

    def _parse_subcommand(self, argv: list[str]) -> Args:
        if not argv or argv[0] in HELP_WORDS:
            if argv:
                raise HelpRequested(self.help())
            raise UsageError(f"{self.prog}: missing command, one of: {', '.join(self.commands)} "
                             f"(`{self.prog} --help` describes them)")
        name = argv[0]
        if name not in self.commands:
            close = difflib.get_close_matches(name, list(self.commands), n=1)
            raise UsageError(f"{self.prog}: unknown command {_q(name)}" + (f"; did you mean '{close[0]}'?" if close else "")
                             + f" (one of: {', '.join(self.commands)})")
        args = self.commands[name].parse(argv[1:])
        if args.command is None:
            args.command = name
        else:
            args.command = f"{name} {args.command}"
        return args

    def _unknown(self, said: str) -> UsageError:
        key = _norm(said.partition("=")[0])
        names = list(self._by_name)
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = ""
        if close:
            hint = f"; did you mean '{self._by_name[close[0]].flag if said.startswith('-') else close[0]}'?"
        elif names:
            hint = f" (options: {', '.join(names)})"
        if self.passthrough and said.startswith("-"):
            hint += f" ({self.prog}'s other keys are given as key=value)"
        return UsageError(f"{self.prog}: unknown option {_q(said.partition('=')[0])}{hint}")

    def _parse_options(self, argv: list[str]) -> Args:
        values: dict[str, Any] = {o.name: (list(o.default) if o.many and o.default is not None else o.default)
                                  for o in self.options}
        given: set[str] = set()
        bare: list[str] = []
        extra: list[str] = []

        def set_value(option: Option, texts: list[str], said: str) -> None:
            converted = [option.convert(t, f"{self.prog}: {said}") for t in texts]
            if option.many:
                values[option.name] = (values[option.name] if option.name in given else []) + converted
            else:
                values[option.name] = converted[-1]
            given.add(option.name)

        def split_list(text: str) -> list[str]:
            return [part.strip() for part in text.split(",") if part.strip()]

        i = 0
        while i < len(argv):
            token = argv[i]
            i += 1
            if token == "--":
                bare += argv[i:]
                break
            if token in HELP_WORDS:
                raise HelpRequested(self.help())
            if token.startswith("-") and not _NUMBER.match(token) and token != "-":
                name, has_value, value = token.partition("=")
                option = (self._by_short.get(name) if not name.startswith("--") else None) or self._by_name.get(_norm(name))
                if option is None:
                    if self.passthrough and name.startswith("--") and has_value and _KEY.fullmatch(name[2:]):
                        extra.append(f"{_norm(name)}={value}")
                        continue
                    raise self._unknown(token)
                said = name
                if has_value:
                    set_value(option, split_list(value) if option.many else [value], said)
                elif option.type is bool and not option.many:
                    if i < len(argv) and argv[i].strip().lower() in BOOLEAN_WORDS:
                        set_value(option, [argv[i]], said)
                        i += 1
                    else:
                        set_value(option, ["true"], said)
                elif option.many:
                    taken = []
                    while i < len(argv) and not self._looks_like_option(argv[i]):
                        if option.type not in (str, Path):
                            try:
                                option.convert(argv[i], said)
                            except UsageError:
                                break
                        taken.append(argv[i])
                        i += 1
                    if not taken:
                        raise UsageError(f"{self.prog}: {said} needs a value")
                    set_value(option, taken, said)
                else:
                    if i >= len(argv) or (argv[i].startswith("--") and argv[i] != "--"):
                        raise UsageError(f"{self.prog}: {said} needs a value")
                    set_value(option, [argv[i]], said)
                    i += 1
                continue
            key, has_value, value = token.partition("=")
            if has_value and _KEY.fullmatch(key):
                option = self._by_name.get(_norm(key))
                if option is not None:
                    set_value(option, split_list(value) if option.many else [value], key)
                elif self.passthrough:
                    extra.append(token)
                else:
                    raise self._unknown(token)
                continue
            bare.append(token)

        positionals = [o for o in self.options if o.positional and o.name not in given]
        while bare:
            if not positionals and self.passthrough:     # its own machinery words the error (`hrm train`'s)
                extra += bare
                break
            if not positionals:
                shown = " ".join(o.name.upper() for o in self.options if o.positional)
                raise UsageError(f"{self.prog}: {_q(bare[0])} is not a key=value argument"
                                 + (f" (the positional ones: {shown}, all given)" if shown else
                                    f" (e.g. {self.options[0].name}=...)" if self.options else ""))
            option = positionals.pop(0)
            taken, bare = (bare, []) if option.many else (bare[:1], bare[1:])
            set_value(option, taken, option.name)

        for option in self.options:
            if option.required and option.name not in given:
                spelled = option.name.upper() if option.positional else f"{option.name}=..."
                raise UsageError(f"{self.prog}: missing {spelled} ({option.help or option.name}); "
                                 f"`{self.prog} --help` lists the options")
        for group in self.one_of:
            chosen = [name for name in group if name in given]
            if len(chosen) != 1:
                names = " or ".join(f"{n}=..." for n in group)
                raise UsageError(f"{self.prog}: give one of {names}" if not chosen else
                                 f"{self.prog}: {' and '.join(chosen)} do not go together; give one of {names}")
        if self.passthrough:
            values[self.passthrough] = extra
        return Args(values, given)

    def _looks_like_option(self, token: str) -> bool:
        if token == "--" or (token.startswith("-") and not _NUMBER.match(token) and token != "-"):
            return True
        key, has_value, _ = token.partition("=")
        return bool(has_value and _KEY.fullmatch(key) and (_norm(key) in self._by_name or self.passthrough))

    # -- help ------------------------------------------------------------------------------------------

    def help(self) -> str:
        width = 100
        if self.commands:
            lines = [f"usage: {self.prog} <command> [key=value ...]", ""]
            if self.description:
                lines += [self.description, ""]
            lines.append("commands:")
            w = max(map(len, self.commands))
            for name, sub in self.commands.items():
                lines.append(f"  {name:<{w}}  {sub.description.splitlines()[0] if sub.description else ''}")
            lines += ["", f"`{self.prog} <command> --help` lists the options of one command."]
            if self.epilog:
                lines += ["", self.epilog.rstrip()]
            return "\n".join(lines)

        positional = [o for o in self.options if o.positional]
        usage = " ".join(f"[{o.name.upper()}...]" if o.many else (o.name.upper() if o.required else f"[{o.name.upper()}]")
                         for o in positional)
        lines = [f"usage: {self.prog} {usage + ' ' if usage else ''}[key=value ...]", ""]
        if self.description:
            lines += [_wrap(self.description, width), ""]
        name_w = max([len(o.name) for o in self.options] + [8])
        type_w = max([len(o.shown_type) for o in self.options if len(o.shown_type) <= 16] + [4])
        indent = 2 + name_w + 2 + type_w + 2
        for title, group in (("arguments (also given bare, in this order):", positional),
                             ("options:", [o for o in self.options if not o.positional])):
            if not group:
                continue
            lines.append(title)
            for o in group:
                facts = []
                if o.required:
                    facts.append("required")
                elif o.default is not None and o.default != [] and o.default != ():
                    shown = ",".join(map(str, o.default)) if isinstance(o.default, (list, tuple)) else o.default
                    facts.append(f"default {str(shown).lower() if isinstance(shown, bool) else shown}")
                spellings = [o.flag] + ([o.short] if o.short else [])
                text = o.help + (f" [{'; '.join(facts)}]" if facts else "") + f" ({', '.join(spellings)})"
                head = f"  {o.name:<{name_w}}  {o.shown_type:<{type_w}}  "
                if len(head) > indent:                  # a long type on its own line
                    head = head.rstrip() + "\n" + " " * indent
                body = textwrap.wrap(text, width - indent, break_on_hyphens=False) or [""]
                lines.append(head + body[0])
                lines += [" " * indent + line for line in body[1:]]
            lines.append("")
        if self.passthrough_help:
            lines += [_wrap(self.passthrough_help, width), ""]
        lines += textwrap.wrap("Every option is key=value; --key value, --key=value and dashes for underscores "
                               "(--data-path, data-path=) work too; a boolean alone (--json) means true. "
                               "Booleans: true/false, yes/no, on/off, 1/0.", width, break_on_hyphens=False)
        if self.epilog:
            lines += ["", self.epilog.rstrip()]
        return "\n".join(lines)

    def walk(self) -> Iterator[tuple[list[str], "Command"]]:
        """(words after the top command, command) for this command and every sub-command below it."""
        yield [], self
        for name, sub in self.commands.items():
            for words, command in sub.walk():
                yield [name, *words], command
