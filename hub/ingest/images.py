"""Images that arrive with events (camera snapshots), kept on disk by content hash.

The inbox row stores only the reference (`sha256:<hex>`), so an event stays small and the same snapshot sent
twice is stored once. Files are written before the inbox transaction commits; an image whose transaction
then fails is an orphan on disk, never a reference to nothing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def image_path(media_dir: str | Path, reference: str) -> Path:
    digest = reference.removeprefix("sha256:")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not an image reference: {reference!r}")
    return Path(media_dir) / digest[:2] / digest


def store_image(media_dir: str | Path, data: bytes) -> str:
    """Write `data` (once) and return its reference."""
    digest = hashlib.sha256(data).hexdigest()
    reference = f"sha256:{digest}"
    path = image_path(media_dir, reference)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a temporary name and renamed, so a reader never sees half an image.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)
    return reference
