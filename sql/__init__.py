"""DDL and queries as `.sql` files, loaded by name.

An asset that runs SQL puts `sql.digest(...)` of the files it runs into its
`code_version`, so editing a query marks exactly the dependent assets stale.

Example:
    >>> from sql import load, digest
    >>> "CREATE TABLE audio_clips" in load("schema/audio_clips")
    True
    >>> len(digest("schema/audio_clips"))
    12
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

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


def tables() -> list[str]:
    """Every table that has a DDL file in `sql/schema/`."""
    return sorted(p.stem for p in (SQL_DIR / "schema").glob("*.sql"))
