"""The analysis' result objects: what `explain_pair` returns and the leaderboard renders as is."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["Cause", "Explanation", "Row", "Setting"]


@dataclass(frozen=True)
class Cause:
    """One reason for the difference: `share` is its signed fraction of (B - A); all shares sum to 1."""

    name: str
    share: float
    sentence: str
    delta_ms: float = 0.0
    terms: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # configuration factors named as the underlying reason


@dataclass(frozen=True)
class Row:
    """One line of the figures table: a quantity of both runs, B - A, and its share of the difference."""

    quantity: str  # sub-quantities start with two spaces
    a: float | None
    b: float | None
    delta: float | None = None
    share: float | None = None


@dataclass(frozen=True)
class Setting:
    """One speed factor of both runs (e.g. num_beams 1 vs 4)."""

    factor: str
    label: str
    a: object
    b: object
    differs: bool


@dataclass
class Explanation:
    run_a: str
    run_b: str
    basis: str  # "batch" or "sample": what one latency figure is
    latency_a_ms: float
    latency_b_ms: float
    rows: list[Row]
    causes: list[Cause]
    config: list[Setting] = field(default_factory=list)
    headline: str = ""  # the verdict is marked **...**
    notes: list[str] = field(default_factory=list)

    @property
    def delta_ms(self) -> float:
        return self.latency_b_ms - self.latency_a_ms

    @property
    def differing(self) -> list[Setting]:
        return [s for s in self.config if s.differs]

    def cause(self, name: str) -> Cause | None:
        return next((c for c in self.causes if c.name == name), None)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["delta_ms"] = self.delta_ms
        return data

    def to_markdown(self, title: str | None = None) -> str:
        from harness.analysis.words import markdown

        return markdown(self, title)
