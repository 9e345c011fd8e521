"""`harness pin MODEL`: resolve a card's tag or branch to the commit it points to, through the hub API.

A tag or branch can move; remote code at one is refused by the planner (plan._check_remote_code), so
this is the way to a runnable card. Needs hub access; the token (HF_TOKEN) is passed on, never printed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.errors import HarnessError
from harness.fileio import write_text_atomic
from harness.registry import load_model

__all__ = ["pin_model", "resolve", "rewrite_revision"]

COMMIT = re.compile(r"[0-9a-f]{40}")
OFFLINE = "harness pin needs hub access (huggingface.co) to resolve a revision; run it on a machine that has it"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _unreachable(exc: Exception) -> bool:
    """No connection: the HTTP client's transport error (requests, httpx or its fork, by release) or offline mode."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"OfflineModeIsEnabled", "TransportError", "ConnectionError", "TimeoutError"})


def resolve(repo: str, revision: str) -> str:
    """The commit `revision` of `repo` points to now; one-line errors for no access, unknown repo or tag."""
    if _offline():
        raise HarnessError(f"{OFFLINE} (HF_HUB_OFFLINE is set)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )


    try:
        sha = HfApi(token=os.environ.get("HF_TOKEN") or None).model_info(repo, revision=revision).sha
    except RevisionNotFoundError:
        raise HarnessError(f"{repo}: the hub has no revision '{revision}'") from None
    except RepositoryNotFoundError:
        raise HarnessError(f"{repo}: no such model repository on the hub (or it is private: set HF_TOKEN)") from None
    except HfHubHTTPError as exc:  # before OSError: requests' HTTPError is one
        status = getattr(exc.response, "status_code", None)
        raise HarnessError(f"{repo}@{revision}: the hub answered HTTP {status}") from None
    except Exception as exc:
        if not _unreachable(exc):
            raise
        raise HarnessError(f"{OFFLINE} ({type(exc).__name__})") from None
    if not sha or not COMMIT.fullmatch(sha):
        raise HarnessError(f"{repo}@{revision}: the hub answered no commit hash ({sha!r})")
    return sha


def rewrite_revision(text: str, section: str | None, old: str, new: str) -> str:
    """`text` with the `revision:` line (top level, or inside `section:`) set to `new`; comments kept.

    A textual edit of that one line, so the card's comments and layout survive (a YAML re-dump would
    drop them). Its own trailing comment is replaced: it described the tag or branch.
    """
    lines = text.splitlines(keepends=True)
    inside = section is None
    for i, line in enumerate(lines):
        if section is not None and re.match(r"\S", line):  # a top-level key opens or closes the section
            inside = line.startswith(f"{section}:")
            continue
        match = re.match(r"(\s*)revision:\s*(\"[^\"]*\"|'[^']*'|[^#\s]+)", line)
        if inside and match and (section is None) == (match.group(1) == ""):
            if match.group(2).strip("\"'") != old:
                continue
            end = "\n" if line.endswith("\n") else ""
            lines[i] = f"{match.group(1)}revision: {new}  # {old} as resolved by `harness pin`{end}"
            return "".join(lines)
    where = f"{section}.revision" if section else "revision"
    raise HarnessError(f"no '{where}: {old}' line found to rewrite")


def pin_model(name: str, write: bool = False) -> list[str]:
    """One line per revision of the card (and its study checkpoint) not already a commit: `MODEL: ...`."""
    card = load_model(name)
    todo = [(None, card.hub_id, card.revision)]
    if card.study and card.study.get("revision"):
        todo.append(("study", card.study["hub_id"], card.study["revision"]))
    lines, changes = [], []
    for section, repo, revision in todo:
        key = f"{section}.revision" if section else "revision"
        if COMMIT.fullmatch(str(revision)):
            lines.append(f"{card.name}: {key} {revision} is already a commit")
            continue
        sha = resolve(repo, str(revision))
        lines.append(f"{card.name}: {key} {revision} -> {sha}")
        changes.append((section, str(revision), sha))
    if write and changes:
        path = Path(card.source_file)
        text = path.read_text()
        for section, old, new in changes:
            text = rewrite_revision(text, section, old, new)
        write_text_atomic(path, text)
        load_model(name)  # the rewritten card must still load
        lines.append(f"wrote {path}")
    return lines
