"""HTML pieces: escaping, tables, inlined images and the page shell (no scripts, no network resources)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;background:#fff}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee}.missing{color:#a33;font-style:italic}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.85em}
"""


def text(value: Any) -> str:
    return escape(str(value))


def section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{text(title)}</h2>{"".join(parts)}</section>'


def missing(reason: str) -> str:
    """What the record does not have, said instead of an empty section."""
    return f'<p class="missing">{text(reason)}</p>'


def number(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A table; float and int cells are right-aligned numbers."""
    head = "".join(f"<th>{text(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, float | int) and not isinstance(cell, bool):
                cells.append(f'<td class="num">{number(cell)}</td>')
            else:
                cells.append(f"<td>{text('-' if cell is None else cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def key_values(data: Mapping[str, Any]) -> str:
    rows = [(key, value if isinstance(value, str | int | float) else json.dumps(value)) for key, value in data.items()]
    return table(("key", "value"), rows)


def image(png: bytes | Path, alt: str) -> str:
    """A PNG inlined as a data URI."""
    data = png.read_bytes() if isinstance(png, Path) else png
    return f'<img alt="{text(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{text(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{text(title)}</h1>{body}</body></html>\n"
    )
