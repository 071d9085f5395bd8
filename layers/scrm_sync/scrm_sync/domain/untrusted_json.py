"""Parsing JSON from untrusted bodies (POST /events, unlink, platform pushes) so that any input
ends in a value or in UnreadableJson (a 400), never in RecursionError or a 5xx.

json.loads recurses once per nesting level (RecursionError near 1,000) and accepts NaN and
Infinity, which are not JSON. The nesting depth is therefore measured first, without
recursion and in linear time, and the non-finite literals are refused while parsing.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from itertools import accumulate
from typing import Any

from .storable import MAX_JSON_DEPTH


class UnreadableJson(ValueError):
    """The body is not JSON we accept; the message says why and quotes nothing from the body."""


# A JSON string literal, consumed possessively (linear time, no backtracking). The closing quote
# is optional so an unterminated string consumes the rest: JSON cannot parse past it anyway.
_STRING_LITERAL = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects (0 for a scalar), brackets in strings excluded.
    Malformed input may count deeper than a parser would get; never shallower."""
    structure = _STRING_LITERAL.sub("", text).encode("utf-8", "surrogatepass")
    brackets = structure.translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _refuse_constant(name: str) -> Any:
    raise UnreadableJson(f"body is not valid JSON: {name} is not a JSON number")


def _float_or_exact(text: str) -> float | Decimal:
    """A JSON number with a fraction or exponent: a float when the float is exactly that number,
    else the exact Decimal (3.14159265358979323846 would silently become 3.141592653589793), so
    that the storage contract refuses it by field instead of it being rounded."""
    value = float(text)
    if math.isfinite(value) and Decimal(repr(value)) == Decimal(text):
        return value
    return Decimal(text)


def parse_json(body: bytes | str, max_depth: int = MAX_JSON_DEPTH, *, exact_numbers: bool = False) -> Any:
    """The JSON value of a body (UTF-8, -16 or -32 like json.loads; a BOM is allowed).

    exact_numbers, for documents whose numbers are stored as sent (canonical events): NaN,
    Infinity and numbers a float cannot hold exactly come back as Decimal, for the model to refuse
    with the field's name (a 422). Otherwise (platform pushes) NaN and Infinity are unreadable."""
    try:
        text = body if isinstance(body, str) else body.decode(json.detect_encoding(body), "surrogatepass")
    except ValueError as exc:  # undecodable bytes
        raise UnreadableJson("body is not valid JSON") from exc
    text = text.removeprefix("\ufeff")
    if nesting_depth(text) > max_depth:
        raise UnreadableJson(f"body is nested deeper than {max_depth} levels")
    try:
        if exact_numbers:
            return json.loads(text, parse_constant=Decimal, parse_float=_float_or_exact)
        return json.loads(text, parse_constant=_refuse_constant)
    except UnreadableJson:
        raise
    except ValueError as exc:  # JSONDecodeError, or an integer longer than Python reads
        raise UnreadableJson("body is not valid JSON") from exc
