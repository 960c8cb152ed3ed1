"""Protocol values as JSON and back: messages, log records, node settings, functions.

Protocol values are frozen dataclasses, named tuples, tuples, frozensets and plain
scalars, so each has a faithful JSON form: a tagged object naming its type by import path
(``module:QualName``). Decoding imports the type, so a value whose class lives in a
notebook decodes only inside that notebook (where ``__main__`` is the notebook), which is
where such traces are replayed. Encoding never fails: a value without a JSON form (a
lambda, an open file) is written as ``{"$unsaved": repr}`` and refused, with its
description, only when something tries to decode it.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from typing import Any

from dtcourse.errors import DTCourseError


class DecodeError(DTCourseError):
    """A saved value names a type or function that cannot be found, or is malformed."""


def type_path(obj: Any) -> str | None:
    """``module:QualName`` of a class or function when importing it gives it back."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    try:
        found = resolve(f"{module}:{qualname}")
    except DecodeError:
        return None
    return f"{module}:{qualname}" if found is obj else None


def resolve(path: str) -> Any:
    """The class or function at ``module:QualName``."""
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise DecodeError(f"{path!r} is not a module:name reference")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:
        raise DecodeError(f"cannot import module {module_name!r} for {path!r}: {error}") from None
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise DecodeError(f"module {module_name!r} has no {qualname!r}") from None
    return target


class Encoder:
    """Encodes values, remembering what it has done: traces repeat the same messages."""

    def __init__(self) -> None:
        # By identity (equal values of different types, 1 and True, must not share an
        # encoding); each value is kept alive with its encoding so ids stay unique.
        self._memo: dict[int, tuple[Any, Any]] = {}

    def __call__(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        hit = self._memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        encoded = self._encode(value)
        self._memo[id(value)] = (value, encoded)
        return encoded

    def _encode(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, enum.Enum):
            return {"$enum": type_path(type(value)), "name": value.name}
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            path = type_path(type(value))
            if path is not None:
                return {"$namedtuple": path, "values": [self(v) for v in value]}
        if isinstance(value, tuple):
            return {"$tuple": [self(v) for v in value]}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, frozenset | set):
            items = sorted((self(v) for v in value), key=repr)
            return {"$frozenset" if isinstance(value, frozenset) else "$set": items}
        if isinstance(value, dict):
            return {"$dict": [[self(k), self(v)] for k, v in value.items()]}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            path = type_path(type(value))
            if path is not None:
                fields = {
                    f.name: self(getattr(value, f.name))
                    for f in dataclasses.fields(value)
                    if f.init
                }
                return {"$dataclass": path, "fields": fields}
        if isinstance(value, type) or callable(value):
            path = type_path(value)
            if path is not None:
                return {"$ref": path}
        return {"$unsaved": repr(value)}


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docs)."""
    return Encoder()(value)


def decode(data: Any) -> Any:
    """The value ``data`` encodes; raises ``DecodeError`` naming what cannot be found."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or len(data) == 0:
        raise DecodeError(f"malformed saved value {data!r}")
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$frozenset" in data:
        return frozenset(decode(v) for v in data["$frozenset"])
    if "$set" in data:
        return {decode(v) for v in data["$set"]}
    if "$dict" in data:
        return {decode(k): decode(v) for k, v in data["$dict"]}
    if "$ref" in data:
        return resolve(data["$ref"])
    if "$enum" in data:
        return resolve(data["$enum"])[data["name"]]
    if "$namedtuple" in data:
        cls = resolve(data["$namedtuple"])
        return cls(*(decode(v) for v in data["values"]))
    if "$dataclass" in data:
        cls = resolve(data["$dataclass"])
        fields = {name: decode(v) for name, v in data["fields"].items()}
        try:
            return cls(**fields)
        except TypeError as error:
            raise DecodeError(
                f"cannot rebuild {data['$dataclass']} from the saved fields {sorted(fields)}: "
                f"{error} (did the class change since the trace was saved?)"
            ) from None
    if "$unsaved" in data:
        raise DecodeError(
            f"the value {data['$unsaved']} could not be saved, so it cannot be replayed"
        )
    raise DecodeError(f"malformed saved value {data!r}")
