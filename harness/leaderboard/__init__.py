"""Rendering: pure functions from stored results to the leaderboard page (Markdown, HTML, PNGs, stats JSON).

load (runs + samples, grouped into entries) -> analyze (CIs, paired tests) -> tables / plots / examples /
why / header (document blocks) -> markdown / html (renderers that escape every string) -> render (the page).
"""

from harness.leaderboard.render import Page, build_page, render_markdown, write_leaderboard

__all__ = ["Page", "build_page", "render_markdown", "write_leaderboard"]
