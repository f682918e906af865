"""Exact conversion between providers' decimal strings ("12.30" yuan) and ParkHub's integer fen.

ParkHub keeps money as integer fen everywhere. Some providers (and the sandbox, on purpose) write amounts as
decimal strings in the major unit; they are converted here, once, at the edge, and refused when they are not
plain, exact amounts: more than two decimals ("0.001" would silently lose a fraction of a fen), exponents
("1e3"), surrounding blanks, a plus sign, leading zeros, NaN and infinity, and floats or integers passed as
Python numbers (a float is never exact, and a bare integer does not say whether it means yuan or fen).
"""

from __future__ import annotations

import re
from decimal import Decimal

# Optional minus, an integer part without leading zeros (15 digits at most: far beyond any real amount and
# still exact in every provider's number type), then optionally one or two decimals.
_DECIMAL = re.compile(r"(?P<sign>-?)(?P<whole>0|[1-9][0-9]{0,14})(?:\.(?P<fraction>[0-9]{1,2}))?")


class MoneyFormatError(ValueError):
    """An amount that is not an exact decimal string of at most two decimals (the message says why)."""


def decimal_to_fen(value: str | Decimal, *, allow_negative: bool = False) -> int:
    """`"12.30"` → 1230, `"12.3"` → 1230, `"0.01"` → 1, `"-5.00"` → -500 when `allow_negative`.

    Accepts a str, or a finite Decimal with at most two decimals. Raises MoneyFormatError for anything else."""
    if isinstance(value, Decimal):
        return _decimal_object_to_fen(value, allow_negative=allow_negative)
    if not isinstance(value, str):
        # bool, int and float all land here: none of them is an unambiguous amount of money.
        raise MoneyFormatError(f"amount must be a decimal string such as '12.30', got {type(value).__name__}")
    text = value
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise MoneyFormatError(_why_not(text))
    whole = int(match["whole"])
    fraction = int((match["fraction"] or "").ljust(2, "0"))
    fen = whole * 100 + fraction
    if match["sign"]:
        if not allow_negative:
            raise MoneyFormatError(f"amount {text!r} is negative, which is not allowed here")
        fen = -fen
    return fen


def _decimal_object_to_fen(value: Decimal, *, allow_negative: bool) -> int:
    if not value.is_finite():
        raise MoneyFormatError(f"amount {value} is not a finite number")
    fen = value.scaleb(2)
    if fen != fen.to_integral_value():
        raise MoneyFormatError(f"amount {value} has more than two decimals")
    if value.is_signed() and not allow_negative:
        raise MoneyFormatError(f"amount {value} is negative, which is not allowed here")
    if abs(fen) >= Decimal(10) ** 17:
        raise MoneyFormatError(f"amount {value} is too large")
    return int(fen)


def fen_to_decimal(fen: int) -> str:
    """1230 → `"12.30"`, 5 → `"0.05"`, -500 → `"-5.00"`: exactly two decimals, no grouping."""
    if type(fen) is not int:
        raise MoneyFormatError(f"fen must be an integer, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, fraction = divmod(abs(fen), 100)
    return f"{sign}{whole}.{fraction:02d}"


def _why_not(text: str) -> str:
    shown = text if len(text) <= 40 else text[:40] + "..."
    if text == "":
        return "amount is empty"
    if text != text.strip():
        return f"amount {shown!r} has surrounding blanks"
    if re.fullmatch(r"-?[0-9]+\.[0-9]{3,}", text):
        return f"amount {shown!r} has more than two decimals"
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity", "snan"):
        return f"amount {shown!r} is not a finite number"
    if "e" in text.lower():
        return f"amount {shown!r} uses an exponent; write it out in full"
    if text.startswith("+"):
        return f"amount {shown!r} has a plus sign"
    if re.fullmatch(r"-?0[0-9]+(\.[0-9]*)?", text):
        return f"amount {shown!r} has leading zeros"
    if re.fullmatch(r"-?[0-9]{16,}(\.[0-9]*)?", text):
        return f"amount {shown!r} is too large"
    return f"amount {shown!r} is not a decimal string such as '12.30'"
