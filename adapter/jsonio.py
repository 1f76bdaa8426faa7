"""JSON in and out. Output with orjson (serialization is a large share of a conversion's cost).

Every JSON input goes through `loads`, which bounds its size and its nesting depth, so no input
can exhaust memory or the stack of what reads it next (marshmallow, pydantic, the validator),
and which keeps every number exactly as written: a decimal is read as a Decimal, never as a
binary float, and an integer of any length stays an integer. A key written twice in one object
is refused (which one was meant is unclear), and so are NaN and Infinity (not JSON), and a lone
surrogate (a `\\ud800` escape without its pair: JSON's grammar allows it, but it is no Unicode
text, and nothing downstream can write it: UTF-8, orjson, a log line); the error names where.

`loads_written` reads the same texts with the same answers, in C when the text is exactly what
orjson writes (a Bulk Data export of this project, a line at a time): for readers that take a
decimal as a float as well as a Decimal (the report).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

from adapter.model import Issue
from adapter.outcome import InvalidInput

SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate in decoded text (a pair decodes to one character)."""
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""Where a JSON text can spell one (raw UTF-8 cannot: the decoder refuses it)."""


class SurrogateFree(dict[str, Any]):
    """A JSON object read by `loads` or `loads_written`, as a reader hands it on: no string in
    it, at any depth, holds a lone surrogate (`loads` refuses one, and `loads_written`'s C path
    only keeps what orjson can write again, which it cannot be), so what reads it next need not
    look again (the report's `scrub`, a walk of every string). Only the object itself carries
    the mark; what it holds is plain JSON."""

    __slots__ = ()


def dumps(value: Any, pretty: bool = True) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, option=option | orjson.OPT_APPEND_NEWLINE)


def too_large(what: str, limit: int) -> InvalidInput:
    shown = f"{limit / (1024 * 1024):g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
    message = f"{what} is larger than {shown}, the limit"
    return InvalidInput([Issue("error", "too-long", message, None, "too-large")], status=413)


def depth_exceeds(value: Any, limit: int) -> bool:
    """Level by level, containers only: a deep value cannot overflow the stack while being
    measured, and the scalars (most of a document) are passed over in C."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            deeper.extend(child for child in children if isinstance(child, (dict, list)))
        level = deeper
    return False


def _openers(text: str) -> int:
    """How many `{` and `[` the text holds, inside strings too: no value is nested deeper, so a
    text with at most the limit's number of them is not measured (counted in C: most inputs)."""
    return text.count("{") + text.count("[")


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]  # add() records the key
        raise _DuplicateKey(f"the key {twice[:60]!r} appears twice in one object")
    return result


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{path}.{key}" if path else key
    return f"{path or '$'}[{ascii(key)}]"


def lone_surrogate(value: Any) -> str | None:
    """Where the first string or key holding a lone surrogate is (`subject.identifier.value`,
    `entry[2].resource.id`, `answers['\\ud800']` for a key; `$` the value itself), or None."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, str):
            if SURROGATE.search(node):
                return path or "$"
        elif isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                if SURROGATE.search(key):
                    return _step(path, key)
                pending.append((_step(path, key), child))
        elif isinstance(node, list):
            pending.extend(
                (_step(path, index), child) for index, child in reversed(list(enumerate(node)))
            )
    return None


STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
"""A JSON string (the text is valid JSON when this is used: every quote opens or closes one)."""
_BRACKETS = bytes.maketrans(b"[]", b"{}")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def text_depth(text: bytes) -> int:
    """How deeply a valid JSON text nests, read from its brackets outside strings: every round
    removes the innermost pairs, so the rounds are the depth (in C, a round a level)."""
    shape = STRING.sub(b"", text).translate(_BRACKETS, _NOT_BRACKETS)
    depth = 0
    while shape:
        shorter = shape.replace(b"{}", b"")
        if len(shorter) == len(shape):  # not JSON's brackets: never for a parsed text
            break
        shape, depth = shorter, depth + 1
    return depth


def loads_written(
    data: bytes, what: str = "input", max_bytes: int | None = None, max_depth: int = 64
) -> Any:
    """`loads`, in C for a text that is exactly what orjson writes for the value it holds.

    Such a text has each key once (a key written twice would be missing from the writing), no
    NaN, no lone surrogate and no integer beyond 64 bits (orjson reads none of them), and every
    decimal in its shortest form, so the float read has the written digits (`repr`); its depth
    is read from its brackets. Any other text, or one too deep, goes through `loads`: the same
    values, the same errors. A decimal comes back as a float here, not a Decimal: for readers
    that take either (`Decimal(repr(value))` is the written number)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise too_large(what, max_bytes)
    try:
        value = orjson.loads(data)
        written = orjson.dumps(value) == data
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        written = False
    if not written or (
        data.count(b"{") + data.count(b"[") > max_depth and text_depth(data) > max_depth
    ):
        return loads(data, what, max_bytes, max_depth)
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=Decimal, parse_constant=_constant
)


def loads(
    data: bytes | str, what: str = "input", max_bytes: int | None = None, max_depth: int = 64
) -> Any:
    if max_bytes is not None and len(data) > max_bytes:
        raise too_large(what, max_bytes)

    def bad(reason: str, rule: str = "not-json") -> InvalidInput:
        message = f"{what} is not valid JSON: {reason}"
        return InvalidInput([Issue("error", "structure", message, rule=rule)], status=400)

    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        value = _DECODER.decode(text)
    except UnicodeDecodeError as error:
        raise bad(f"not UTF-8 (byte {error.start})") from None
    except RecursionError:
        message = f"{what} is nested deeper than {max_depth} levels"
        raise InvalidInput(
            [Issue("error", "structure", message, rule="too-deep")], status=400
        ) from None
    except _DuplicateKey as error:
        raise bad(str(error), "duplicate-key") from None
    except ValueError as error:  # json.JSONDecodeError, NaN/Infinity, an int over the limit
        raise bad(str(error)) from None
    if _openers(text) > max_depth and depth_exceeds(value, max_depth):
        message = f"{what} is nested deeper than {max_depth} levels"
        raise InvalidInput(
            [Issue("error", "structure", message, rule="too-deep")], status=400
        ) from None
    if isinstance(data, str) or SURROGATE_ESCAPE.search(text):
        where = lone_surrogate(value)
        if where is not None:
            message = (
                f"{what} holds a lone surrogate at {where} (a \\ud800-\\udfff escape without "
                "its pair): that is no Unicode text"
            )
            raise InvalidInput(
                [Issue("error", "structure", message, where, "lone-surrogate")], status=400
            )
    return value
