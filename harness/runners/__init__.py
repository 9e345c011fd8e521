"""Runners execute planned specs: in this process (local) or in the model's container (docker)."""

__all__: list[str] = []
