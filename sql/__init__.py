"""DDL and queries as `.sql` files, loaded by name.

An asset's `code_version` is `sql.version(...)` of the SQL files and the Python
modules it runs (its own module included), so editing a query or the logic
behind an asset marks exactly the dependent assets stale.

Example:
    >>> from sql import load, digest
    >>> "CREATE TABLE audio_clips" in load("schema/audio_clips")
    True
    >>> len(digest("schema/audio_clips"))
    12
    >>> import labeling.ingest.manifest
    >>> version("schema/audio_clips", labeling.ingest.manifest) != digest("schema/audio_clips")
    True
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from types import ModuleType

SQL_DIR = Path(__file__).parent


@cache
def load(name: str) -> str:
    """The text of `sql/<name>.sql`; a clear error lists what exists when it is missing."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        known = sorted(str(p.relative_to(SQL_DIR).with_suffix("")) for p in SQL_DIR.rglob("*.sql"))
        raise FileNotFoundError(f"No SQL file {path}; known: {', '.join(known)}")
    return path.read_text(encoding="utf-8")


def digest(*names: str) -> str:
    """A short stable hash of the named SQL files, for asset code versions."""
    h = hashlib.sha256()
    for name in names:
        h.update(name.encode())
        h.update(load(name).encode())
    return h.hexdigest()[:12]


def version(*parts: str | ModuleType) -> str:
    """A short stable hash of SQL files (by name) and Python modules or packages (their
    source files: a package counts every `.py` under it), for an asset's code_version."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            h.update(part.encode())
            h.update(load(part).encode())
            continue
        for path in _sources(part):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _sources(module: ModuleType) -> list[Path]:
    if hasattr(module, "__path__"):  # a package: all of it
        return sorted(p for root in module.__path__ for p in Path(root).rglob("*.py"))
    return [Path(module.__file__)]


def tables() -> list[str]:
    """Every table that has a DDL file in `sql/schema/`."""
    return sorted(p.stem for p in (SQL_DIR / "schema").glob("*.sql"))
