"""Where rlfoundry keeps its state on disk: one folder, `RLFOUNDRY_HOME`."""

from __future__ import annotations

import os
from pathlib import Path


def rlfoundry_home() -> Path:
    """`$RLFOUNDRY_HOME`, or `.rlfoundry` under the current directory."""
    return Path(os.environ.get("RLFOUNDRY_HOME", ".rlfoundry")).absolute()
