"""Rendering: pure functions from stored results to the Markdown leaderboard."""

from harness.leaderboard.render import render_markdown, write_leaderboard

__all__ = ["render_markdown", "write_leaderboard"]
