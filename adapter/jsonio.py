"""JSON in and out with orjson: the serialization is a large share of a conversion's cost.

Every JSON input goes through `loads`, which bounds its size and its nesting depth, so no input
can exhaust memory or the stack of what reads it next (marshmallow, pydantic, the validator).
"""

from __future__ import annotations

from typing import Any

import orjson

from adapter.outcome import InvalidInput, Issue


def dumps(value: Any, pretty: bool = True) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, option=option | orjson.OPT_APPEND_NEWLINE)


def too_large(what: str, limit: int) -> InvalidInput:
    shown = f"{limit / (1024 * 1024):g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"
    message = f"{what} is larger than {shown}, the limit"
    return InvalidInput([Issue("error", "too-long", message, None, "too-large")], status=413)


def depth_exceeds(value: Any, limit: int) -> bool:
    """Iterative, so a deep value cannot overflow the stack while being measured."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in node)
    return False


def loads(
    data: bytes | str, what: str = "input", max_bytes: int | None = None, max_depth: int = 64
) -> Any:
    if max_bytes is not None and len(data) > max_bytes:
        raise too_large(what, max_bytes)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        reason = str(error)
        if "recursion" in reason.lower():
            reason = f"nested deeper than {max_depth} levels"
        raise InvalidInput(
            [Issue("error", "structure", f"{what} is not valid JSON: {reason}", rule="not-json")],
            status=400,
        ) from None
    if depth_exceeds(value, max_depth):
        message = f"{what} is nested deeper than {max_depth} levels"
        raise InvalidInput(
            [Issue("error", "structure", message, rule="too-deep")], status=400
        ) from None
    return value
