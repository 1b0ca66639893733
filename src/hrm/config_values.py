"""Typed values for config dataclasses, from YAML or the command line: `coerce(value, type, where)`.

Used by the training config (hrm.training.config) and `hrm eval`'s options (hrm.evaluation.runner), so
both read `key=value` alike: the one set of boolean spellings (hrm.cli_args), lists as `a,b` or `[a, b]`,
`null`/`none`/`~`/`auto` for an optional value left unset. A bad value is a ConfigError naming `where`.
"""
from __future__ import annotations

import types
import typing
from typing import Any

import yaml

from hrm.cli_args import BOOLEAN_WORDS

NONE_WORDS = {"null", "none", "~", "auto"}


def yaml_problem(path, error: yaml.YAMLError) -> str:
    """One line for a YAML parse error: "PATH:LINE:COLUMN: malformed YAML: what" (the line when YAML says it)."""
    mark = getattr(error, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    return f"{where}: malformed YAML: {getattr(error, 'problem', None) or error}"


class ConfigError(ValueError):
    """A bad key or value; the message says where it came from (file:line or the command line)."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """`value` (from YAML or the command line) as type `tp`, or a ConfigError that names `where`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return coerce(value, inner, where)
    if origin is list:
        if isinstance(value, str):
            text = value.strip()
            value = yaml.safe_load(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [coerce(v, args[0], where) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[str(value).strip().lower()]
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            number = float(value) if isinstance(value, str) and not value.strip().lstrip("+-").isdigit() else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{where}: cannot set a value of type {_type_name(tp)}")
