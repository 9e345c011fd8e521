"""Input checks and the (optionally clustered) resampling plan shared by every bootstrap."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError

__all__ = ["as_values", "check_options", "Layout", "layout_for"]

_CELLS_PER_CHUNK = 4_000_000  # resample matrix cells held at once (about 32 MB of int64)


def as_values(values: Sequence[float], name: str = "values") -> np.ndarray:
    """A finite 1-D float array, or a one-line HarnessError."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise HarnessError(f"{name} must be a sequence of numbers") from None
    if array.ndim != 1:
        raise HarnessError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise HarnessError(f"{name} is empty")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise HarnessError(f"{name}[{bad[0]}] is {array[bad[0]]}, not a finite number")
    return array


def check_options(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int | np.integer) or n_resamples < 1:
        raise HarnessError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise HarnessError(f"confidence must be between 0 and 1, got {confidence!r}")


@dataclass(frozen=True)
class Layout:
    """Which samples belong to which resampling unit (a cluster, or each sample on its own)."""

    n: int
    codes: np.ndarray  # cluster index per sample, 0..n_units-1
    n_units: int
    clustered: bool
    order: np.ndarray  # sample indices sorted by cluster
    starts: np.ndarray  # first position in `order` of each cluster
    sizes: np.ndarray  # samples per cluster

    def unit_draws(self, rng: np.random.Generator, n_resamples: int) -> Iterator[np.ndarray]:
        """Chunks of shape (rows, n_units): the resampling units drawn with replacement, per resample."""
        rows = max(1, _CELLS_PER_CHUNK // self.n_units)
        done = 0
        while done < n_resamples:
            take = min(rows, n_resamples - done)
            yield rng.integers(0, self.n_units, size=(take, self.n_units))
            done += take

    def indices(self, units: np.ndarray) -> np.ndarray:
        """Sample indices of the drawn units: every sample of each drawn cluster, repeats kept."""
        if not self.clustered:
            return units
        lengths = self.sizes[units]
        offsets = np.cumsum(lengths) - lengths
        within = np.arange(lengths.sum()) - np.repeat(offsets, lengths)
        positions = within + np.repeat(self.starts[units], lengths)
        return self.order[positions]


def layout_for(n: int, clusters: Sequence[Hashable] | None) -> Layout:
    if clusters is None:
        codes = np.arange(n)
        return Layout(n, codes, n, False, codes, codes, np.ones(n, dtype=np.int64))
    if isinstance(clusters, str):
        raise HarnessError("clusters must be a sequence of cluster ids, one per sample, not a string")
    clusters = list(clusters)
    if len(clusters) != n:
        raise HarnessError(f"clusters has {len(clusters)} entries but there are {n} samples")
    ids: dict[Hashable, int] = {}
    try:
        codes = np.fromiter((ids.setdefault(c, len(ids)) for c in clusters), dtype=np.int64, count=n)
    except TypeError:
        raise HarnessError("cluster ids must be hashable (strings or numbers)") from None
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=len(ids))
    starts = np.cumsum(sizes) - sizes
    return Layout(n, codes, len(ids), True, order, starts, sizes)
