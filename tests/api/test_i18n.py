"""Choosing the page language."""

from __future__ import annotations

import pytest

from coffeetrace.api import i18n


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        (None, None, "vi"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"),
        (None, "fr-FR,fr;q=0.9,en;q=0.8,vi;q=0.5", "en"),
        (None, "en;q=0.2,vi;q=0.8", "vi"),
        (None, "de-DE", "vi"),
        (None, "en;q=abc, vi", "vi"),
        ("en", "vi-VN", "en"),
        ("xx", "en", "en"),
    ],
)
def test_negotiate(query: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate(query, header) == expected


def test_both_languages_have_the_same_texts() -> None:
    en, vi = i18n.texts("en"), i18n.texts("vi")
    assert en.keys() == vi.keys()
    assert en["steps"].keys() == vi["steps"].keys() and en["kinds"].keys() == vi["kinds"].keys()
    assert len(en["months"]) == len(vi["months"]) == 12
