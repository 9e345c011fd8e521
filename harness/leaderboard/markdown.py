"""Render the document model as GitHub-flavoured Markdown; every plain string is escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.leaderboard.doc import (
    Banner,
    Block,
    Bullets,
    Code,
    Figure,
    Heading,
    Img,
    Inline,
    Link,
    Para,
    Strong,
    Table,
    as_inlines,
    cell_of,
)

__all__ = ["escape_md", "render_blocks", "one_line"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
# Backslash first, so an escape in the text can never cancel one of ours.
_MD_PUNCT = re.compile(r"([\\`*_\[\]|~$])")
_BLOCK_START = re.compile(r"^(\s*\d*)([#>+=.)-])")
_SPACES = re.compile(r"\s+")
_HREF_OK = re.compile(r"^[A-Za-z0-9_./#-]+$")


def one_line(text: object, limit: int | None = None) -> str:
    """A single line: newlines shown as ⏎, control characters dropped, whitespace collapsed."""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\n", " ⏎ ")
    s = _SPACES.sub(" ", _CONTROL.sub(" ", s))
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def escape_md(text: object) -> str:
    """Text that stays text inside a Markdown table cell: no HTML, no formatting, no column break."""
    s = _MD_PUNCT.sub(r"\\\1", one_line(text))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _href(href: str) -> str:
    if not _HREF_OK.match(href):
        raise ValueError(f"unsafe link target {href!r}")
    return href


def _code(text: str) -> str:
    s = one_line(text)
    if any(c in s for c in "|\\`<>&"):  # not escapable inside a code span in a table: show as text
        return escape_md(s)
    return f"`{s}`"


def _inline(item: Inline) -> str:
    if isinstance(item, str):
        return escape_md(item)
    if isinstance(item, Code):
        return _code(item.text)
    if isinstance(item, Strong):
        return f"**{escape_md(item.text)}**"
    if isinstance(item, Link):
        return f"[{escape_md(item.text)}]({_href(item.href)})"
    if isinstance(item, Img):
        return f"[![{escape_md(item.alt)}]({_href(item.src)})]({_href(item.src)})"
    raise TypeError(f"not an inline: {item!r}")


def inlines(content) -> str:
    return "".join(_inline(i) for i in as_inlines(content))


def _table(table: Table) -> list[str]:
    head = "| " + " | ".join(escape_md(h) for h in table.headers) + " |"
    rule = "|" + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.headers))) + "|"
    rows = ["| " + " | ".join(inlines(cell_of(c).content) or " " for c in row) + " |" for row in table.rows]
    return [head, rule, *rows]


def _safe_start(line: str) -> str:
    """A paragraph that starts like a heading, quote or list item stays a paragraph."""
    return _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line, count=1)


def _block(block: Block) -> list[str]:
    if isinstance(block, Banner):
        return [f"> **{escape_md(line)}**" for line in block.text.strip().splitlines() if line.strip()]
    if isinstance(block, Heading):
        return ["#" * block.level + " " + escape_md(block.text)]
    if isinstance(block, Para):
        return [_safe_start(inlines(block.content))]
    if isinstance(block, Bullets):
        return [f"- {_safe_start(inlines(item))}" for item in block.items]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        lines = [f"![{escape_md(block.alt)}]({_href(block.src)})"]
        return lines + ([f"*{escape_md(block.caption)}*"] if block.caption else [])
    raise TypeError(f"not a block: {block!r}")


def render_blocks(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        out += _block(block)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
