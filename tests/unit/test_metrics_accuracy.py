"""Official ChartQA relaxed accuracy (quirks included), its lenient variant, exact match."""

import itertools

import pytest

from harness.metrics import answer_type, get_metric, lenient_correctness, relaxed_correctness, to_float


@pytest.mark.parametrize(
    ("target", "prediction", "expected"),
    [
        # years are numbers: within 5% of each other
        ("2010", "2008", True),
        # "2%" is 0.02, so "2%" vs "2" is wrong both ways, and 0.02 vs 2% is right
        ("2", "2%", False),
        ("2%", "2", False),
        ("2%", "0.02", True),
        ("0.02", "2%", True),
        # no comma stripping: compared as text
        ("1000", "1,000", False),
        ("1,000", "1000", False),
        ("1,000", "1,000", True),
        # a zero target needs the exact string
        ("0", "0", True),
        ("0", "0.0", False),
        ("0", "0.001", False),
        # tolerance: relative, 5% inclusive
        ("100", "105", True),
        ("100", "95", True),
        ("100", "105.1", False),
        ("-100", "-96", True),
        ("12", "12.5", True),
        # text: case-insensitive; prediction stripped, target unchanged
        ("Yes", "yes", True),
        ("yes", "  YES \n", True),
        ("Yes ", "Yes", False),
        ("New York", "new york", True),
        ("New York", "newyork", False),
        # numeric prediction vs text target and vice versa: string equality
        ("Yes", "1", False),
        ("12", "twelve", False),
        ("", "", True),
        ("5", "", False),
    ],
)
def test_relaxed_correctness_official_rule(target, prediction, expected):
    assert relaxed_correctness(target, prediction) is expected


def test_to_float_matches_pix2struct_parser():
    assert to_float("12") == 12.0
    assert to_float("12%") == pytest.approx(0.12)
    assert to_float("1,000") is None
    assert to_float("$5") is None
    assert to_float("%") is None
    assert to_float("") is None


def test_relaxed_accuracy_metric_max_over_references_and_mean():
    metric = get_metric("relaxed_accuracy")
    assert metric.per_sample("b", ["a", "B"]) == 1.0
    assert metric.per_sample("51", ["100", "50"]) == 1.0
    assert metric.per_sample("x", ["a", "b"]) == 0.0
    assert metric.aggregate(["1", "x"], [["1"], ["y"]]) == 0.5
    assert metric.higher_is_better and metric.scale == "fraction"


@pytest.mark.parametrize(
    ("target", "prediction", "expected"),
    [
        ("1000", "1,000", True),
        ("1,000", "1000", True),
        ("1000", "$1,000", True),
        ("12", "12 kg", True),
        ("12", "12 million", True),
        ("2", "2%", True),
        ("2%", "2", True),
        ("2%", "0.02", True),
        ("0.02", "2%", True),
        ("45", "45 percent", True),
        ("2010", "2008", False),  # years must match exactly
        ("2010", "2010", True),
        ("2010", "2010.0", True),
        ("2,010", "2008", True),  # a comma says quantity, not year: tolerance applies
        ("0", "0.0", True),
        ("0", "0.001", False),
        ("100", "104", True),
        ("100", "106", False),
        ("Yes", "yes.", True),
        ("new  york", " New York ", True),
        ("Yes", "no", False),
        ("12", "twelve", False),
        ("5", "", False),
    ],
)
def test_lenient_correctness_fixes(target, prediction, expected):
    assert lenient_correctness(target, prediction) is expected


def test_lenient_accepts_everything_official_accepts_except_years():
    answers = [
        "0",
        "0.0",
        "2",
        "2%",
        "0.02",
        "1,000",
        "1000",
        "2008",
        "2010",
        "Yes",
        "yes ",
        "12.5",
        "-3",
        "1e3",
    ]
    for target, prediction in itertools.product(answers, answers):
        is_year = target.isdigit() and len(target) == 4 and 1900 <= int(target) <= 2100
        if relaxed_correctness(target, prediction) and not is_year:
            assert lenient_correctness(target, prediction), (target, prediction)


def test_exact_match():
    metric = get_metric("exact_match")
    assert metric.per_sample(" Yes ", ["no", "yes"]) == 1.0
    assert metric.per_sample("yes.", ["yes"]) == 0.0
    assert metric.per_sample("12.0", ["12"]) == 0.0


def test_answer_type():
    assert answer_type(["12"]) == "numeric"
    assert answer_type(["12%", "x"]) == "numeric"
    assert answer_type(["1,000"]) == "text"
    assert answer_type(["Yes", "12"]) == "text"
