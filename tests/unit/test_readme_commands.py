"""Every `harness ...` command line in the README's code blocks still parses (issue 11, part 10).

bench and finetune lines run with --dry-run (planned, nothing executed); the others are parsed by the
real parser and then asked for --help. A renamed or removed flag, or a subcommand that no longer
exists, fails here, in CI, instead of in a user's terminal.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
DRY_RUN = ("bench", "finetune")


def readme_commands(text: str) -> list[str]:
    """`harness ...` command lines in fenced code blocks, comments cut off (also after `&& harness`)."""
    out = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            match = re.search(r"(?:^|&&\s*)(harness\s+\S.*)", line.strip())
            if match and "..." not in match.group(1).split():  # `harness bench ...`: a diagram, not a command
                out.append(match.group(1).split("  #")[0].split(" # ")[0].strip())
    return out


COMMANDS = readme_commands((REPO / "README.md").read_text())


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 10 and any(c.startswith("harness bench") for c in COMMANDS)


def test_extraction_cuts_comments_and_skips_prose():
    text = ("```bash\nharness bench --all   # a comment\npip install x && harness models\n"
            "harness bench ...   the CLI\n```\n")
    assert readme_commands(text) == ["harness bench --all", "harness models"]


@pytest.fixture
def readme_env(harness_env, monkeypatch):
    """The README's working directory: ./PJN_CHARTS exists (a small synthetic set in its schema)."""
    from harness.data import write_synthetic

    monkeypatch.chdir(harness_env)
    write_synthetic(harness_env / "PJN_CHARTS", sizes={"train": 4, "val": 2, "test": 4}, seed=0)
    for key in ("HARNESS_THREADS", "HARNESS_VERBOSE"):
        monkeypatch.delenv(key, raising=False)
    return harness_env


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses(command, readme_env, capsys):
    argv = shlex.split(re.sub(r"<[^>]*>", "ID", command))[1:]  # a placeholder such as <greedy id>: a word
    if argv[0] in DRY_RUN:
        code = main([*argv, "--dry-run"])
        assert code == 0, f"`{command} --dry-run` exited {code}: {capsys.readouterr().err}"
        assert not (readme_env / "results").exists()  # planned only
        return
    build_parser().parse_args(argv)  # SystemExit (exit 2, the usage line) on an unknown flag or subcommand
    with pytest.raises(SystemExit) as exit_info:
        main([*argv[:_subcommand_depth(argv)], "--help"])
    assert exit_info.value.code == 0


def _subcommand_depth(argv: list[str]) -> int:
    """How many leading words name the (sub)command: `data synth`, `check batch-invariance` are two."""
    return 2 if argv[0] in ("data", "check") else 1
