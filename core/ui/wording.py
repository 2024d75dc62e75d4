"""Words for counts on the pages: '1 file skipped', '2 files skipped'."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 file', '2 files', '7,019 images' (`plural` where adding an s is wrong: 'copies')."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
