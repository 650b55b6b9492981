"""The Markdown table that every report here is made of: aligned, so it reads as plain text too."""

from __future__ import annotations


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with columns padded to their widest cell; ``|`` inside a cell is escaped."""
    rows = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def cell(fmt: str, value) -> str:
    """``value`` formatted with ``fmt``, ``-`` for None; percentages without the sign (the header says %)."""
    if value is None:
        return "-"
    text = fmt.format(value)
    return text.rstrip("%") if fmt.endswith("%}") else text
