"""Settings that declare their own bounds: a method's hyper-parameters and a family's model options.

A field or keyword is annotated ``Annotated[int, Range(min=1)]``; :func:`check_fields` (a dataclass) and
:func:`check_call` (a builder's keywords) check every declared type and bound, so config validation
refuses a bad value before any job, naming the key, and a new method or family gets the checks by
declaring them. Torch-free.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any


class OptionError(ValueError):
    """A setting outside its declared type or bounds; ``key`` names it."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``min``/``max`` inclusive, ``gt``/``lt`` exclusive."""

    min: float | None = None
    gt: float | None = None
    max: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range (None when it is inside)."""
        checks = ((self.min, value >= (self.min or 0), ">="), (self.gt, value > (self.gt or 0), ">"))
        checks += ((self.max, value <= (self.max or 0), "<="), (self.lt, value < (self.lt or 0), "<"))
        for bound, ok, op in checks:
            if bound is not None and not ok:
                return f"{value!r} is out of range: it must be {op} {bound:g}"
        return None


def _annotations(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(obj, include_extras=True)


def check_value(key: str, value: Any, annotation: Any) -> None:
    """``value`` against one annotation: its type (an int is not a bool or a float such as 16.5) and range."""
    ranges = [m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, Range)]
    base = typing.get_args(annotation)[0] if ranges else annotation
    if base is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise OptionError(key, f"{value!r} is not a whole number")
    if base is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise OptionError(key, f"{value!r} is not a number")
    if base is bool and not isinstance(value, bool):
        raise OptionError(key, f"{value!r} is not true or false")
    for r in ranges:
        if (why := r.problem(value)) is not None:
            raise OptionError(key, why)


def check_fields(obj: Any) -> None:
    """Every annotated field of a dataclass instance (call it from ``__post_init__``)."""
    hints = _annotations(type(obj))
    for f in fields(obj):
        check_value(f.name, getattr(obj, f.name), hints[f.name])


def check_call(builder: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """A builder's keyword options against its annotated parameters (unknown names are the builder's to refuse)."""
    hints = _annotations(builder)
    for name in inspect.signature(builder).parameters:
        if name in options and name in hints:
            check_value(name, options[name], hints[name])


class Settings:
    """Base of a method's hyper-parameters dataclass: its declared bounds are checked when it is made."""

    def __post_init__(self) -> None:
        check_fields(self)
