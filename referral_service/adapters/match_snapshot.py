"""Snapshot files of the match index: numpy arrays that gunicorn's master memory-maps at start.

A snapshot is a folder of .npy files (scoring.index.to_arrays) and a meta.json saying which
code wrote it, for which database, and up to when (the change watermark). The configured path
(MATCH_INDEX_SNAPSHOT) is a symbolic link to the current folder, replaced atomically by a
rename: a reader sees the old snapshot or the new one, never half of one. Loading maps the
arrays copy-on-write (mmap_mode="c"): no firm is decoded until a query refines it, and every
process that maps the same files shares their pages.

A snapshot is only used if the scoring code and the database are the ones it was written
with; the keeper then catches it up from its watermark before any match is served and checks
that it holds as many firms as the database (see adapters/match_index.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy loads with the index, not with the app or the CLI's import
    import numpy as np

    from scoring import MatchIndex

# Bumped when the layout of the files changes; the scoring code's own changes are caught by
# the fingerprint of its sources.
FORMAT = 2


def code_fingerprint() -> str:
    """Return a digest of the scoring package's sources: a snapshot is only as good as them."""
    import scoring

    digest = hashlib.sha256(str(FORMAT).encode())
    for path in sorted(Path(scoring.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def database_fingerprint(database_key: str) -> str:
    """Return a digest of the database URL: files never hold a password."""
    return hashlib.sha256(database_key.encode()).hexdigest()


def write(path: Path, index: MatchIndex, *, database_key: str, watermark: datetime,
          marks: dict[str, Any]) -> Path:
    """Write a snapshot of `index` and make `path` point at it; return its folder.

    `marks` are what the database looked like when the index was read (for the checks at
    load). Older snapshot folders are removed; a process still mapping their files keeps them
    until it unmaps them.
    """
    import numpy

    from scoring.index import to_arrays

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent / f"{path.name}.{time.time_ns()}.{os.getpid()}"
    folder.mkdir()
    arrays = to_arrays(index)
    for name, array in arrays.items():
        numpy.save(folder / f"{name}.npy", array, allow_pickle=False)
    meta = {"format": FORMAT, "code": code_fingerprint(),
            "database": database_fingerprint(database_key), "watermark": watermark.isoformat(),
            "firms": len(index), "marks": marks, "arrays": sorted(arrays)}
    (folder / "meta.json").write_text(json.dumps(meta))
    link = path.parent / f"{path.name}.link-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(folder.name)
    link.replace(path)  # atomic: readers see the old snapshot or this one
    for old in path.parent.glob(f"{path.name}.*"):
        if old.is_dir() and not old.is_symlink() and old.name != folder.name:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def read(path: Path, *, database_key: str) -> tuple[MatchIndex, datetime, dict[str, Any]] | None:
    """Return the snapshot's index (mapped, not read), watermark and marks; None if there is
    none, or it was written by other scoring code or for another database."""
    from scoring.index import from_arrays

    folder = Path(path)
    try:
        folder = folder.resolve(strict=True)
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if (meta.get("format") != FORMAT or meta.get("code") != code_fingerprint()
            or meta.get("database") != database_fingerprint(database_key)):
        return None
    arrays = {name: _map(folder / f"{name}.npy") for name in meta["arrays"]}
    return (from_arrays(arrays), datetime.fromisoformat(meta["watermark"]), meta["marks"])


def _map(path: Path) -> np.ndarray:
    import numpy

    try:
        mapped = numpy.load(path, mmap_mode="c", allow_pickle=False)
    except ValueError:  # an empty array: there is nothing to map
        return numpy.load(path, allow_pickle=False)
    # a plain ndarray over the same pages: np.memmap's Python-level hooks slow every operation
    return mapped.view(numpy.ndarray)
