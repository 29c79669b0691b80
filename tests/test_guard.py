"""The lexical guard: table of question pairs it must let through or stop, with the reason."""

from __future__ import annotations

import pytest

from proxy.guard import differences, normalise


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Convert 5 miles to km", "Convert 50 miles to km", "numbers differ"),
        ("Sleep for two seconds in bash", "Sleep for 20 seconds in bash", "numbers differ"),
        ("Why is my code working?", "Why is my code not working?", "negation differs"),
        ("My tests pass", "My tests don't pass", "negation differs"),
        (
            "Find users with a verified email",
            "Find users without a verified email",
            "negation differs",
        ),
        ("What does `map()` do?", "What does `filter()` do?", "quoted or code tokens differ"),
        (
            "Fix the bug in calculate_total",
            "Fix the bug in calculate_subtotal",
            "quoted or code tokens differ",
        ),
        ('Translate "good night"', 'Translate "good morning"', "quoted or code tokens differ"),
        (
            "Sort a list ascending",
            "Sort a list descending",
            "content words differ: ascend, descend",
        ),
        (
            "How do I reverse a string in Python?",
            "How do I reverse a string in Rust?",
            "content words differ: python, rust",
        ),
        (
            "Run a command before each test",
            "Run a command after each test",
            "content words differ: after, befor",
        ),
        (
            "Convert Celsius to Fahrenheit",
            "Convert Fahrenheit to Celsius",
            "word order changes a relation",
        ),
        (
            "Is Python faster than Java?",
            "Is Java faster than Python?",
            "word order changes a relation",
        ),
        (
            "Does numpy depend on Python?",
            "Does Python depend on numpy?",
            "word order changes a relation",
        ),
    ],
)
def test_guard_stops(a, b, reason):
    found = differences(normalise(a), normalise(b))
    assert any(d.startswith(reason) for d in found), found


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reverse a string in Python?", "What's the way to reverse a Python string?"),
        ("HOW DO I EXIT VIM", "how do i exit vim?"),
        (
            "What is the difference between a list and a tuple?",
            "what's the difference between lists and tuples",
        ),
        ("How do I merge two dictionaries in Python?", "How can I merge 2 dicts in python"),
        ("How do I remove duplicates from a list in Python?", "python list remove duplicates"),
        ("Is a file-based cache case-sensitive?", "is a file based cache case sensitive"),
        ("When did World War II end?", "World War II ended when?"),
    ],
)
def test_guard_allows_paraphrases(a, b):
    assert differences(normalise(a), normalise(b)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  How DO I  exit Vim?? ", "how do i exit vim"),
        ("Ｃａｆé!", "café"),
        ("tabs\tand\nlines.", "tabs and lines"),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected
