"""Answer-matching metrics: the official ChartQA relaxed accuracy, a lenient variant, exact match.

`relaxed_accuracy` reproduces pix2struct's `relaxed_correctness` (also used by VLMEvalKit and
lmms-eval) quirks included, so numbers stay comparable with published ones. `relaxed_accuracy_lenient`
sits next to it, never instead of it, and fixes the quirks users complain about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from harness.metrics.base import Metric, register_metric

__all__ = [
    "to_float",
    "relaxed_correctness",
    "lenient_correctness",
    "answer_type",
    "RELAXED_ACCURACY",
    "RELAXED_ACCURACY_LENIENT",
    "EXACT_MATCH",
]

MAX_RELATIVE_CHANGE = 0.05


# --- official rule ---------------------------------------------------------------------------------


def to_float(text: str) -> float | None:
    """pix2struct's number parser: a trailing `%` divides by 100, else `float(text)`; None if neither.

    No comma, currency or unit stripping: "1,000" and "$5" are not numbers.
    """
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_correctness(
    target: str, prediction: str, max_relative_change: float = MAX_RELATIVE_CHANGE
) -> bool:
    """The official ChartQA rule (pix2struct), with the prediction stripped of surrounding white space.

    Numeric prediction and non-zero numeric target: relative error <= 5%. Otherwise case-insensitive
    string equality, the target unchanged. Quirks kept on purpose: years are numbers (2008 ~ 2010),
    "2%" (0.02) vs "2" is wrong, a target of 0 needs the exact string.
    """
    prediction = prediction.strip()
    prediction_float = to_float(prediction)
    target_float = to_float(target)
    if prediction_float is not None and target_float:
        return abs(prediction_float - target_float) / abs(target_float) <= max_relative_change
    return prediction.lower() == target.lower()


def _relaxed_accuracy(prediction: str, references: Sequence[str]) -> float:
    return max(1.0 if relaxed_correctness(ref, prediction) else 0.0 for ref in references)


def answer_type(references: Sequence[str]) -> str:
    """Return "numeric" if the first reference is a number under the official rule, else "text"."""
    return "numeric" if references and to_float(references[0]) is not None else "text"


# --- lenient variant -------------------------------------------------------------------------------

_CURRENCY = str.maketrans("", "", "$€£¥₹")
_NUMBER_WITH_UNIT = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*(?P<pct>%)?\s*(?P<unit>[a-z][a-z.\s]*)?"
)
_PERCENT_WORDS = frozenset({"percent", "per cent", "pct", "percentage points", "percentage point"})
_YEAR = re.compile(r"[0-9]{4}")


def _lenient_number(text: str) -> tuple[float, bool] | None:
    """(value, had_percent) after dropping commas, currency symbols, a `%` and one trailing unit phrase."""
    s = text.strip().lower().replace(",", "").translate(_CURRENCY).strip()
    percent = s.endswith("%")
    if percent:
        s = s.rstrip("%").strip()
    try:
        return float(s), percent
    except ValueError:
        pass
    match = _NUMBER_WITH_UNIT.fullmatch(s)
    if match is None:
        return None
    unit = " ".join((match["unit"] or "").rstrip(".").split())
    return float(match["num"]), percent or bool(match["pct"]) or unit in _PERCENT_WORDS


def _normalize_text(text: str) -> str:
    s = " ".join(text.lower().split())
    return s[:-1].rstrip() if s.endswith(".") else s


def _close(prediction: float, target: float, max_relative_change: float) -> bool:
    if target == 0:
        return prediction == 0
    return abs(prediction - target) / abs(target) <= max_relative_change


def lenient_correctness(
    target: str, prediction: str, max_relative_change: float = MAX_RELATIVE_CHANGE
) -> bool:
    """Relaxed correctness with the quirks fixed; the fixes are listed in the metric description.

    Every answer the official rule accepts is accepted here too, except a year off by <= 5%.
    """
    if _normalize_text(prediction) == _normalize_text(target):
        return True
    target_number = _lenient_number(target)
    prediction_number = _lenient_number(prediction)
    if target_number is None or prediction_number is None:
        return False
    (t, t_percent), (p, p_percent) = target_number, prediction_number
    stripped = target.strip()
    if _YEAR.fullmatch(stripped) and 1900 <= int(stripped) <= 2100:
        return not p_percent and p == t
    targets = (t, t / 100.0) if t_percent else (t,)
    predictions = (p, p / 100.0) if p_percent else (p,)
    return any(_close(pv, tv, max_relative_change) for pv in predictions for tv in targets)


def _relaxed_accuracy_lenient(prediction: str, references: Sequence[str]) -> float:
    return max(1.0 if lenient_correctness(ref, prediction) else 0.0 for ref in references)


# --- exact match -----------------------------------------------------------------------------------


def _exact_match(prediction: str, references: Sequence[str]) -> float:
    p = prediction.strip().lower()
    return max(1.0 if p == ref.strip().lower() else 0.0 for ref in references)


RELAXED_ACCURACY = register_metric(
    Metric(
        name="relaxed_accuracy",
        higher_is_better=True,
        version="1",
        scale="fraction",
        description=(
            "official ChartQA relaxed accuracy (pix2struct relaxed_correctness): prediction stripped; "
            "numbers parsed with float(), trailing % divides by 100, no comma stripping; numeric "
            "prediction vs non-zero numeric target correct within 5% relative error, otherwise "
            "case-insensitive string equality; max over references, mean over samples"
        ),
        per_sample_fn=_relaxed_accuracy,
    )
)

RELAXED_ACCURACY_LENIENT = register_metric(
    Metric(
        name="relaxed_accuracy_lenient",
        higher_is_better=True,
        version="1",
        scale="fraction",
        description=(
            "relaxed accuracy with quirks fixed: correct if texts are equal after lowercasing, "
            "collapsing white space and dropping one trailing period; else numbers are parsed after "
            "removing commas and $€£¥₹, a trailing % or one trailing unit phrase (kept as a label, no "
            "scaling); a % answer may mean x or x/100 on either side; 4-digit targets 1900-2100 "
            "(years) need the exact value; a 0 target needs 0; otherwise within 5% relative error; "
            "max over references, mean over samples"
        ),
        per_sample_fn=_relaxed_accuracy_lenient,
    )
)

EXACT_MATCH = register_metric(
    Metric(
        name="exact_match",
        higher_is_better=True,
        version="1",
        scale="fraction",
        description=(
            "1 if prediction.strip().lower() equals reference.strip().lower() for any reference, "
            "else 0; mean over samples"
        ),
        per_sample_fn=_exact_match,
    )
)
