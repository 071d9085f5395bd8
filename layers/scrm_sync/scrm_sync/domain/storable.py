"""The storage contract, stated once: what an accepted event may hold so that it is queued,
stored in DynamoDB and synced without a surprise (a 202 never ends in the DLQ).

Numbers are DynamoDB numbers as boto3's TypeSerializer writes them (the repository's codec):
at most 38 digits, magnitudes from 1E-130 to 9.9999999999999999999999999999999999999E+125 (and
the negative mirror), zero, never NaN or Infinity. boto3 encodes with 38 digits and a smallest
normal exponent of -128, so below 1E-128 a number keeps fewer digits: none may be finer than
1E-165. A float is stored as its shortest round-trip decimal (0.1 as 0.1), so any float inside
the range is storable.

Sizes (how each cap follows from a limit):
- MAX_ATTRIBUTES_PER_EVENT: an event's attributes are written in one conditional UpdateItem
  whose condition grows by ~50 characters per attribute; DynamoDB caps an expression at 4 KB.
  64 attributes use ~3.2 KB (and well under the 300 operators an update expression may hold).
- MAX_EVENT_BYTES: the event as queued (CanonicalEvent.to_message, UTF-8). Ten events share one
  SQS SendMessageBatch (adapters/messaging.py), whose payload is capped at 256 KiB; 25 KiB holds
  an interaction's full 8,192-character content in CJK (3 bytes a character) with its envelope.
  Every item an event writes stays far below DynamoDB's 400 KB: its event record (the event's
  attributes and identifiers plus at most ~0.8 KB of version bookkeeping per attribute: under
  ~80 KB), its timeline entry and its order (each at most the event).
- MAX_TEXT_CHARS: one attribute string; the event cap bounds the sum.
- MAX_JSON_DEPTH: nesting of a request body. A canonical request needs 6 levels
  ({"events": [{"order": {"lines": [{...}]}}]}), platform pushes a few more; JSON parsers
  recurse once per level, so a deeper body is refused before it is parsed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MAX_DIGITS = 38
MIN_MAGNITUDE = Decimal("1E-130")
MAX_MAGNITUDE = Decimal("9.9999999999999999999999999999999999999E+125")
SMALLEST_DIGIT_EXPONENT = -165

MAX_ATTRIBUTES_PER_EVENT = 64
MAX_EVENT_BYTES = 25 * 1024
MAX_TEXT_CHARS = 4096
MAX_JSON_DEPTH = 32


class NotStorable(ValueError):
    """A value DynamoDB (through boto3) cannot hold exactly. The message names no input value."""


def stored_decimal(number: int | float | Decimal) -> Decimal:
    """The decimal a number is stored as: ints and decimals exactly, a float as its shortest
    round-trip text (what it means, not the binary expansion: 0.1, not 0.1000000000000000055...)."""
    if isinstance(number, float):
        return Decimal(repr(number))
    return Decimal(number)


def check_number(number: int | float | Decimal) -> None:
    """Raise NotStorable unless the number is stored exactly as given."""
    stored = stored_decimal(number)
    if not stored.is_finite():
        raise NotStorable("number is not finite (NaN or Infinity)")
    _, digits, exponent = stored.as_tuple()
    assert isinstance(exponent, int)  # finite
    if len(digits) > MAX_DIGITS:
        raise NotStorable(f"number has more than {MAX_DIGITS} significant digits")
    if stored.is_zero():  # 0 is storable, but boto3 keeps even a zero's exponent ("0E-200")
        if not SMALLEST_DIGIT_EXPONENT <= exponent <= MAX_MAGNITUDE.adjusted():
            raise NotStorable("number is zero with an exponent out of range")
        return
    magnitude = stored.copy_abs()  # exact: abs() would round to the context's precision
    if magnitude > MAX_MAGNITUDE:
        raise NotStorable(f"number is out of range: larger in magnitude than {MAX_MAGNITUDE}")
    if magnitude < MIN_MAGNITUDE:
        raise NotStorable(f"number is out of range: smaller in magnitude than {MIN_MAGNITUDE} (and not 0)")
    if exponent < SMALLEST_DIGIT_EXPONENT:
        raise NotStorable(f"number has digits finer than 1E{SMALLEST_DIGIT_EXPONENT}")


def as_exact_float(value: Any) -> Any:
    """A Decimal from an exactly parsed JSON body (untrusted_json) where the model wants a float:
    the float when it holds the number exactly, else NotStorable (never rounded silently)."""
    if isinstance(value, Decimal):
        check_number(value)  # NaN, Infinity, out of range: refused with the reason
        if value == value.to_integral_value():
            return int(value)  # 1E+2, or a DECIMAL column's 188.00: the integer, checked as such
        number = float(value)
        if Decimal(repr(number)) != value:
            raise NotStorable(
                "number has more significant digits than a JSON number keeps; send it as a string"
            )
        return number
    return value


def check_scalar(value: Any) -> Any:
    """An attribute value as stored: text up to MAX_TEXT_CHARS, a storable number, a bool or
    None; anything else is left to the model's type check. Returns the value unchanged."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise NotStorable(f"text is longer than {MAX_TEXT_CHARS} characters")
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        check_number(value)
    return value


def is_unicode_text(text: str) -> bool:
    """False for text holding an unpaired surrogate ("\\ud800" in JSON): no store accepts it
    (DynamoDB refuses it as invalid UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_event_size(message: str) -> None:
    size = len(message.encode("utf-8"))
    if size > MAX_EVENT_BYTES:
        raise NotStorable(f"event is {size} bytes as queued; at most {MAX_EVENT_BYTES}")
