"""Serving the workbench to a lab: which dataset folders a browser may open, and read-only mode.

Both are read from the environment each time they are asked, not at import, so an owner's
settings and a test's monkeypatched ones apply at once. Only the app consults them: the command
line is run by whoever owns the server, who can read its folders and change its runs anyway.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from core import paths

READ_ONLY_ENV = "BTW_READ_ONLY"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def read_only() -> bool:
    """Whether BTW_READ_ONLY (1, true, yes or on) asks for a server that changes no run."""
    return os.environ.get(READ_ONLY_ENV, "").strip().lower() in TRUE_WORDS


def _resolved(folder: Path | str) -> Path:
    # OSError: unreadable; RuntimeError: a symlink loop (Python 3.11); ValueError: a NUL byte.
    return Path(folder).expanduser().resolve()


def folder_refusal(folder: Path | str, roots: Sequence[Path] | None) -> str | None:
    """Why `folder` is outside the allowed `roots`, or None when it is inside one (or `roots`
    is None: no allow-list).

    The folder is resolved first, so `..` and symbolic links are judged by where they lead,
    and a root is a parent by path components: /data/mri2 is not inside /data/mri.
    """
    if roots is None:
        return None
    try:
        resolved = _resolved(folder)
    except (OSError, RuntimeError, ValueError) as error:
        return f"{folder} cannot be resolved ({error})."
    if any(resolved.is_relative_to(root) for root in roots):
        return None
    leads = f" (it leads to {resolved})" if str(resolved) != str(folder) else ""
    allowed = ", ".join(str(root) for root in roots) or "none: the variable names no folder"
    return (
        f"{folder}{leads} is outside the dataset folders this server allows "
        f"({paths.DATA_ROOTS_ENV}: {allowed})."
    )


def dataset_folder_refusal(folder: Path | str) -> str | None:
    """Why the app may not open `folder` under this server's BTW_DATA_ROOTS, or None.

    The built-in synthetic demo is always allowed: the server generates it and it holds no
    patient data, and without it an allow-list with no BTW_DATA_DIR would leave nothing to show.
    """
    try:
        roots = paths.allowed_data_roots()
        if roots is not None and _resolved(folder) == _resolved(paths.demo_dataset_dir()):
            return None
    except (OSError, RuntimeError, ValueError) as error:
        return f"{folder} cannot be checked against {paths.DATA_ROOTS_ENV} ({error})."
    return folder_refusal(folder, roots)


def allowed_dataset_folders(roots: Sequence[Path]) -> list[Path]:
    """Each allowed root and its visible subfolders (one level down), the ones a browser may
    choose from; a subfolder whose link leads outside every root is left out."""
    folders: list[Path] = []
    for root in roots:
        folders.append(root)
        try:
            children = sorted(child for child in root.iterdir() if child.is_dir())
        except OSError:  # a root that is missing or unreadable offers only itself
            continue
        folders += [
            child
            for child in children
            if not child.name.startswith(".") and folder_refusal(child, roots) is None
        ]
    return list(dict.fromkeys(folders))
