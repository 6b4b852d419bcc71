"""Command-line flags derived from dataclasses: one definition of each option, its type, default and help.

A field's ``metadata={"help": ...}`` is its help text; ``bool`` fields become ``--flag/--no-flag``, ``list`` fields
take one or more values, ``X | None`` fields take an ``X``, and ``metadata={"choices": (...)}`` restricts values.
Every flag is spelled ``--name_with_underscores`` (diffusers' spelling) with a ``--name-with-dashes`` alias.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any


def option(help: str, default: Any = dataclasses.MISSING, **metadata: Any) -> Any:  # noqa: A002
    """A dataclass field with its help text (and optional ``choices``, or extra ``flags`` such as ``("-o",)``)."""
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help, **metadata})
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def _base_type(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None -> X
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, required: Iterable[str] = (), title: str | None = None
) -> None:
    """Adds one flag per field of ``cls`` to ``parser`` (in a group named ``title``)."""
    group = parser.add_argument_group(title or cls.__name__)
    hints = typing.get_type_hints(cls)
    needed = set(required)
    for f in dataclasses.fields(cls):
        base = _base_type(hints[f.name])
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        kwargs: dict[str, Any] = {"help": f.metadata.get("help", ""), "dest": f.name}
        if f.name in needed:
            kwargs["required"] = True
        if base is bool:
            kwargs.update(action=argparse.BooleanOptionalAction, default=default)
        elif typing.get_origin(base) in (list, tuple):
            item = typing.get_args(base)[0] if typing.get_args(base) else str
            kwargs.update(nargs="+", type=item, default=default)
        else:
            kwargs.update(type=base, default=default)
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        if f.name not in needed and default not in (None, "", [], (), dataclasses.MISSING):
            kwargs["help"] += f" (default: {default})"
        names = [*f.metadata.get("flags", ()), f"--{f.name}"]
        names += [f"--{f.name.replace('_', '-')}"] if "_" in f.name else []
        group.add_argument(*names, **kwargs)


def from_namespace(cls: type, namespace: argparse.Namespace) -> Any:
    """Builds ``cls`` from the parsed values of its fields."""
    values = vars(namespace)
    out = {}
    for f in dataclasses.fields(cls):
        value = values[f.name]
        out[f.name] = tuple(value) if isinstance(value, list) and "tuple" in str(f.type) else value
    return cls(**out)


class CommandError(Exception):
    """An error the user can fix; printed as one line."""


def parse_size(value: str) -> tuple[int, int]:
    """Parses ``WxH`` (or a single number for a square) into ``(width, height)``, within the canvas caps."""
    from textgen.core.layout import canvas_problem

    w, sep, h = value.lower().partition("x")
    try:
        width, height = int(w), int(h if sep else w)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected WxH such as 512x512, got {value!r}") from err
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {value!r}")
    problem = canvas_problem(width, height)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return width, height


def int_in(low: int, high: int):
    """An argparse type: an integer in ``[low, high]``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from err
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"expected {low}-{high}, got {number}")
        return number

    return parse


def float_in(low: float, high: float):
    """An argparse type: a finite number in ``[low, high]`` (NaN and infinity refused)."""

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from err
        if not low <= number <= high:  # also false for NaN
            raise argparse.ArgumentTypeError(f"expected a finite number in [{low:g}, {high:g}], got {value}")
        return number

    return parse
