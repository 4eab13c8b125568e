"""Declared value checks: one small vocabulary for `--set` options and for network configs read from files.

A `Spec` checks one value and returns it normalised (ints accepted for floats, lists for tuples) or raises
`OptionError` with one line naming the setting, the value and what is allowed:

    Int(ge=1)                      an integer >= 1 (bools are not integers here)
    Float(gt=0), Float(ge=0, lt=1) a finite float in a range
    Bool(), Str(choices=("a", "b"))
    Seq(Float(gt=0), min_len=1)    a non-empty tuple (a scalar is accepted as a 1-tuple); `length=4` fixes it
    Record({"width": Int(ge=1)})   a mapping whose keys must be among the declared ones (all optional)
    Map()                          any mapping with string keys and JSON values
    AnyJSON()                      any JSON value (small); checked elsewhere (e.g. `model_kwargs`)

Dataclass fields declare theirs with `field(metadata={"spec": Int(ge=1)})`, or `{"fixed": True}` for values that
are recorded but cannot be overridden; fields without one get a spec from their default's type
(`spec_for_field`). `parse_assignments` turns `KEY=VALUE` strings into Python values (`ast.literal_eval`, a bare
word stays a string) and `check_overrides` validates them against a dataclass's fields, so fields that other
modules add are covered automatically.

Written here rather than with pydantic: the checks are small, must accept exactly the JSON the checkpoints hold,
and the base install stays free of another dependency.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any


class OptionError(ValueError):
    """A bad setting (`--set`, a config field, a checkpoint's network config); the message is one line."""


class UnknownOptionError(OptionError, KeyError):
    """A setting that does not exist (or cannot be overridden)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class OptionTypeError(OptionError, TypeError):
    """A setting of the wrong type."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Spec:
    """Base class: `check(value, name) -> normalised value`; `describe()` for messages and help."""

    def check(self, value: Any, name: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, name: str, value: Any, cls: type[OptionError] = OptionError) -> None:
        raise cls(f"{name}: expected {self.describe()}, got {_show(value)}")


def _bounds(ge: Any, gt: Any, le: Any, lt: Any) -> str:
    parts = [f">= {ge}" if ge is not None else "", f"> {gt}" if gt is not None else ""]
    parts += [f"<= {le}" if le is not None else "", f"< {lt}" if lt is not None else ""]
    text = " and ".join(p for p in parts if p)
    return f" {text}" if text else ""


def _in_bounds(v: float, ge: Any, gt: Any, le: Any, lt: Any) -> bool:
    return (ge is None or v >= ge) and (gt is None or v > gt) and (le is None or v <= le) and (lt is None or v < lt)


@dataclasses.dataclass(frozen=True)
class Int(Spec):
    ge: int | None = None
    gt: int | None = None
    le: int | None = None
    lt: int | None = None

    def describe(self) -> str:
        return "an integer" + _bounds(self.ge, self.gt, self.le, self.lt)

    def check(self, value: Any, name: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self._fail(name, value, OptionTypeError)
        if not _in_bounds(value, self.ge, self.gt, self.le, self.lt):
            self._fail(name, value)
        return int(value)


@dataclasses.dataclass(frozen=True)
class Float(Spec):
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def describe(self) -> str:
        return "a finite number" + _bounds(self.ge, self.gt, self.le, self.lt)

    def check(self, value: Any, name: str) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self._fail(name, value, OptionTypeError)
        if not math.isfinite(value) or not _in_bounds(value, self.ge, self.gt, self.le, self.lt):
            self._fail(name, value)
        return float(value)


@dataclasses.dataclass(frozen=True)
class Bool(Spec):
    def describe(self) -> str:
        return "True or False"

    def check(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            self._fail(name, value, OptionTypeError)
        return value


@dataclasses.dataclass(frozen=True)
class Str(Spec):
    choices: tuple[str, ...] | None = None
    max_len: int = 4096

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}" if self.choices else "a string"

    def check(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            self._fail(name, value, OptionTypeError)
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"unknown {name} {_show(value)}; choose from: {', '.join(self.choices)}")
        if len(value) > self.max_len:
            self._fail(name, value)
        return value


@dataclasses.dataclass(frozen=True)
class Seq(Spec):
    item: Spec
    min_len: int = 1
    max_len: int = 256
    length: int | None = None
    as_list: bool = False  # JSON configs keep lists; dataclass fields get tuples

    def describe(self) -> str:
        if self.length is not None:
            size = f"{self.length}"
        elif self.min_len >= 1:
            size = f"a non-empty tuple (at most {self.max_len})"
        else:
            size = f"a tuple (at most {self.max_len})"
        return f"{size} of {self.item.describe()}" if self.length is None else f"{size} x {self.item.describe()}"

    def check(self, value: Any, name: str) -> tuple | list:
        if isinstance(value, (int, float, str, bool)) and not self.as_list:
            value = (value,)  # `--set lrs=1e-3` means (1e-3,)
        if not isinstance(value, (list, tuple)):
            self._fail(name, value, OptionTypeError)
        n = len(value)
        if (self.length is not None and n != self.length) or n < self.min_len or n > self.max_len:
            self._fail(name, value)
        items = [self.item.check(v, f"{name}[{i}]") for i, v in enumerate(value)]
        return items if self.as_list else tuple(items)


@dataclasses.dataclass(frozen=True)
class Record(Spec):
    fields: Mapping[str, Spec]

    def describe(self) -> str:
        return f"a mapping with keys among {', '.join(sorted(self.fields))}"

    def check(self, value: Any, name: str) -> dict:
        if not isinstance(value, Mapping):
            self._fail(name, value, OptionTypeError)
        unknown = sorted(str(k) for k in value if k not in self.fields)
        if unknown:
            raise UnknownOptionError(f"{name}: unknown key(s) {unknown}; allowed: {', '.join(sorted(self.fields))}")
        return {k: self.fields[k].check(v, f"{name}.{k}" if name else k) for k, v in value.items()}


@dataclasses.dataclass(frozen=True)
class AnyJSON(Spec):
    max_chars: int = 100_000

    def describe(self) -> str:
        return "a JSON value"

    def check(self, value: Any, name: str) -> Any:
        import json

        try:
            text = json.dumps(value)
        except (TypeError, ValueError):
            self._fail(name, value, OptionTypeError)
        if len(text) > self.max_chars:
            self._fail(name, value)
        return value


@dataclasses.dataclass(frozen=True)
class Map(Spec):
    """A mapping with string keys and JSON values (checked elsewhere in detail, e.g. `model_kwargs`)."""

    def describe(self) -> str:
        return "a mapping {'key': value, ...}"

    def check(self, value: Any, name: str) -> dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            self._fail(name, value, OptionTypeError)
        return dict(AnyJSON().check(dict(value), name))


# ---------------------------------------------------------------- dataclass fields and KEY=VALUE strings


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _spec_of_value(value: Any) -> Spec:
    if isinstance(value, bool):
        return Bool()
    if isinstance(value, int):
        return Int()
    if isinstance(value, float):
        return Float()
    if isinstance(value, str):
        return Str()
    if isinstance(value, tuple):
        return Seq(_spec_of_value(value[0]) if value else AnyJSON())
    if isinstance(value, dict):
        return Map()
    return AnyJSON()


def spec_for_field(f: dataclasses.Field) -> Spec | None:
    """The field's declared spec, one derived from its default's type, or None if the field is fixed."""
    if f.metadata.get("fixed"):
        return None
    spec = f.metadata.get("spec")
    return spec if spec is not None else _spec_of_value(_default(f))


def settable_fields(cls: Any, exclude: Iterable[str] = (), include_fixed: bool = False) -> dict[str, Spec]:
    """{name: spec} of a dataclass's overridable fields (fixed ones, unless `include_fixed`, and `exclude` left out)."""
    out, skip = {}, set(exclude)
    for f in dataclasses.fields(cls):
        spec = (f.metadata.get("spec") or _spec_of_value(_default(f))) if include_fixed else spec_for_field(f)
        if spec is not None and f.name not in skip:
            out[f.name] = spec
    return out


def fixed_fields(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("fixed")]


def check_overrides(
    overrides: Mapping[str, Any], specs: Mapping[str, Spec], fixed: Iterable[str] = (), what: str = "setting"
) -> dict[str, Any]:
    """Validate {name: value} against `specs`; unknown names (and `fixed` ones) raise `UnknownOptionError`."""
    fixed = set(fixed)
    out = {}
    for key, value in overrides.items():
        if key in fixed:
            raise UnknownOptionError(f"{what} {key!r} is fixed (recorded, not overridable)")
        if key not in specs:
            raise UnknownOptionError(f"unknown {what} {key!r}; choose from: {', '.join(sorted(specs))}")
        out[key] = specs[key].check(value, key)
    return out


def parse_assignments(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """`KEY=VALUE` strings -> {key: value}; VALUE is a Python literal (`3e-4`, `(0.9, 0.99)`) or a bare word."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"{flag} {item!r}: expected KEY=VALUE")
        if key in out:
            raise OptionError(f"{flag} {key}: given twice")
        try:
            out[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            out[key] = raw.strip()
    return out


def help_text(specs: Mapping[str, Spec]) -> str:
    """One line per setting: `name: what it accepts`."""
    return "\n".join(f"  {k}: {s.describe()}" for k, s in sorted(specs.items()))


def check_device(text: str) -> str:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`, available on this machine; else OptionError (one line)."""
    import torch

    if text == "auto":
        return text
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise OptionError(f"--device {text!r}: not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise OptionError(f"--device {text}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= n:
            raise OptionError(f"--device {text}: this machine has {n} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise OptionError(f"--device {text}: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise OptionError(f"--device {text!r}: hares runs on auto, cpu, cuda, cuda:N or mps")
    return text
