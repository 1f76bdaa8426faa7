"""JSON in and out with orjson: the serialization is a large share of a conversion's cost."""

from typing import Any

import orjson

from adapter.outcome import InvalidInput, Issue


def dumps(value: Any, pretty: bool = True) -> bytes:
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, option=option | orjson.OPT_APPEND_NEWLINE)


def loads(data: bytes | str, what: str = "input") -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(
            [Issue("error", "structure", f"{what} is not valid JSON: {error}", rule="not-json")],
            status=400,
        ) from None
