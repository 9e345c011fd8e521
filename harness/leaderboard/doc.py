"""A tiny document model that both the Markdown and the HTML renderer read.

Sections build blocks of these types; plain strings anywhere in them are *text*, escaped by each
renderer, so model output can never become markup. Only the typed pieces (Code, Strong, Link, Img)
produce formatting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "Banner",
    "Block",
    "Bullets",
    "Cell",
    "Code",
    "Figure",
    "Heading",
    "Img",
    "Inline",
    "Link",
    "Para",
    "Strong",
    "Table",
    "as_inlines",
    "cell_of",
]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str  # relative path or in-page anchor; never taken from model output


@dataclass(frozen=True)
class Img:
    src: str  # relative path of an asset next to the page
    alt: str
    width: int | None = None


Inline = str | Code | Strong | Link | Img


def as_inlines(content: Inline | Sequence[Inline] | None) -> list[Inline]:
    if content is None:
        return []
    if isinstance(content, str | Code | Strong | Link | Img):
        return [content]
    return list(content)


@dataclass(frozen=True)
class Cell:
    """A table cell; `sort` is the value the HTML page sorts by (numbers sort as numbers)."""

    content: Inline | Sequence[Inline] | None
    sort: float | str | None = None


@dataclass(frozen=True)
class Banner:
    text: str


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Para:
    content: Sequence[Inline]


@dataclass(frozen=True)
class Bullets:
    items: Sequence[Sequence[Inline]]


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Cell | Inline | Sequence[Inline] | None]]
    name: str = ""  # a stable id for the HTML page (and its tests)
    numeric: Sequence[int] = field(default_factory=tuple)  # columns to right-align


@dataclass(frozen=True)
class Figure:
    src: str
    alt: str
    caption: str = ""


Block = Banner | Heading | Para | Bullets | Table | Figure


def cell_of(value) -> Cell:
    return value if isinstance(value, Cell) else Cell(value)
