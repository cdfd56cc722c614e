"""Reading what models emit: the JSON values embedded in free text.

LLMs and VLMs wrap JSON in prose, code fences or both, and sometimes emit several
values or broken ones. `json_values` yields every JSON object or array that parses,
left to right, skipping what does not; at most `MAX_TRIES` starting brackets are tried,
so text full of brackets costs linear time, never quadratic.

Example:
    >>> list(json_values('Sure! ```json\\n{"answer": "B"}\\n``` and [1, 2] but {broken'))
    [{'answer': 'B'}, [1, 2]]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MAX_TRIES = 32
_START = re.compile(r"[\[{]")


def json_values(text: str) -> Iterator[Any]:
    """Each JSON object or array in `text` that parses, in order."""
    decoder, start = json.JSONDecoder(), 0
    for _ in range(MAX_TRIES):
        found = _START.search(text, start)
        if found is None:
            return
        try:
            value, start = decoder.raw_decode(text, found.start())
        except (ValueError, RecursionError):
            start = found.start() + 1
            continue
        yield value
