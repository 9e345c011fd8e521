"""Offline twins: the real architectures at toy size with random weights and local tokenizers.

A twin is saved with `save_pretrained` and loaded through the same `from_pretrained` code as the
real model, so only the download differs.
"""

from harness.adapters.twins.cache import ensure_twin

__all__ = ["ensure_twin"]
