"""Pure rules for drivers' vehicles."""

from __future__ import annotations

import re

from hub.errors import InvalidInput

# Separators drivers type or cameras print between the parts of a plate.
_SEPARATORS = re.compile(r"[\s\-·.•]")
_PLATE = re.compile(r"^[0-9A-Z\u4e00-\u9fff]{2,12}$")


def normalize_plate(raw: str) -> str:
    """Upper-case, separators removed: '粤B·12345' and '粤b 12345' are the same plate."""
    plate = _SEPARATORS.sub("", raw.strip()).upper()
    if not _PLATE.match(plate):
        raise InvalidInput(
            f"plate {raw!r} is not a licence plate (2-12 letters, digits or Chinese characters)",
            code="INVALID_PLATE",
            field="plate",
        )
    return plate
