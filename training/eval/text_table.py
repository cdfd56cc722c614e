"""Plain-text tables with aligned columns: the one formatter behind every table the CLI prints."""

from __future__ import annotations

from collections.abc import Container, Sequence


def aligned(rows: Sequence[Sequence[str]], right: Container[int]) -> tuple[list[str], str]:
    """Each row as one line, columns padded to their widest cell (those in `right` right-
    aligned, the rest left), trailing spaces stripped; and the rule line of dashes.

    >>> lines, rule = aligned([["name", "n"], ["cat", "12"]], right={1})
    >>> print("\\n".join([lines[0], rule, lines[1]]))
    name   n
    ----  --
    cat   12
    """
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    return lines, "  ".join("-" * w for w in widths)
