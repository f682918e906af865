"""Plate text as cameras read it, cleaned and judged: `normalize_camera_plate`.

Cameras are not the drivers' app (hub/drivers/rules.py has the strict `normalize_plate` for what people
type): a camera read is never dropped, it is kept and flagged. A read is valid when it is a well-formed
Chinese plate (see `CHINESE_PLATE`), or, for plates without Chinese characters (cameras abroad, the
vendors' US samples), 2 to 10 letters and digits.
"""

from __future__ import annotations

import re
import unicodedata

# Separators cameras and people put inside plates: whitespace, hyphen, middle dot (粤B·12345), bullet, dot,
# and the katakana middle dot some OCR engines emit for "·".
_SEPARATORS = re.compile(r"[\s\-·•.・]+")

# The 31 provincial-level abbreviations of mainland China.
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Serial characters: digits and letters except I and O (GA 36 excludes them as too like 1 and 0).
_SERIAL = "[A-HJ-NP-Z0-9]"

CHINESE_PLATE = re.compile(
    rf"""
    [{_PROVINCES}][A-Z]             # province, then the issuing authority's letter
    (?:
        {_SERIAL}{{5}}              # ordinary plate: 7 characters, e.g. 粤B12345, 京AF0236
      | [DF]{_SERIAL}{{5}}          # small new-energy plate: D (electric) or F (hybrid) first, 8 characters
      | [0-9]{{5}}[DF]              # large new-energy plate: 5 digits then D or F, 8 characters
      | {_SERIAL}{{4}}[学警港澳挂领使]  # learner, police, Hong Kong, Macau, trailer, consulate, embassy
    )
    | 使[0-9]{{6}}                  # embassy plate with the character first, e.g. 使014578
    """,
    re.VERBOSE,
)
"""A mainland Chinese plate after cleaning (upper case, no separators):

- ordinary (blue/yellow): province + letter + 5 of digits/letters (no I, O): 7 characters;
- new-energy (green), 8 characters: province + letter + D|F + 5 serial characters (small vehicles), or
  province + letter + 5 digits + D|F (large vehicles);
- special suffixes: province + letter + 4 serial characters + one of 学 (learner), 警 (police), 港/澳 (Hong
  Kong/Macau cross-border), 挂 (trailer), 领 (consulate), 使 (embassy); embassy plates also come as 使 followed
  by 6 digits.
"""

_FOREIGN_PLATE = re.compile(r"[A-Z0-9]{2,10}")
_CJK = re.compile(r"[\u3400-\u9fff]")


def normalize_camera_plate(raw: str) -> tuple[str, bool]:
    """`(plate, valid)`: the plate upper-cased with separators removed, and whether it is a recognizable
    plate. Full-width letters and digits (as some OCR engines emit) are folded to ASCII first. An invalid
    read comes back cleaned the same way, for people to review."""
    # Normalized again at the end: removing a separator or upper-casing can leave a composable sequence.
    cleaned = unicodedata.normalize("NFKC", _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper())
    if _CJK.search(cleaned):
        return cleaned, CHINESE_PLATE.fullmatch(cleaned) is not None
    return cleaned, _FOREIGN_PLATE.fullmatch(cleaned) is not None
