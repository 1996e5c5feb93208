"""Texts per language that a cooperative gives for the public page (a product's name, a
step's place): {"vi": ..., "en": ...}, either or both; the page picks the reader's and
marks a fallback to the other (api/i18n.py)."""

from __future__ import annotations

from collections.abc import Mapping

from coffeetrace.errors import ValidationFailed

NAME_LANGUAGES = ("vi", "en")


def name_variants(
    given: Mapping[str, str] | None, field: str = "name_i18n"
) -> dict[str, str] | None:
    """A text per language as stored (a product's name, a step's place): only the page's
    languages, each a non-empty text."""
    if not given:
        return None
    unknown = sorted(set(given) - set(NAME_LANGUAGES))
    if unknown:
        raise ValidationFailed(
            f"{field}: languages are {', '.join(NAME_LANGUAGES)}, not {', '.join(unknown)}",
            field=field,
        )
    for lang, value in given.items():
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise ValidationFailed(
                f"{field}.{lang} must be a non-empty text", field=f"{field}.{lang}"
            )
    return {lang: given[lang] for lang in NAME_LANGUAGES if lang in given}
