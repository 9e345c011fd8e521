"""One error type for everything a user can fix: the CLI prints it as one line and exits 2."""

__all__ = ["HarnessError"]


class HarnessError(Exception):
    """A problem with input, configuration or environment, explained in one line."""
