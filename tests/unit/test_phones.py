"""Phone identity: one canonical E.164 per person, whatever form WhatsApp uses."""

from __future__ import annotations

import pytest

from messaging_whatsapp.phones import InvalidPhone, canonical_phone, phone_variants


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("5511987654321", "+5511987654321"),
        ("+55 (11) 98765-4321", "+5511987654321"),
        ("553199887766", "+5531999887766"),  # BH id without the ninth digit
        ("5531999887766", "+5531999887766"),
        ("whatsapp:+553199887766", "+5531999887766"),
        ("553199887766@s.whatsapp.net", "+5531999887766"),
        ("551140028922", "+551140028922"),  # a landline keeps its 8 digits
        ("+14155238886", "+14155238886"),
    ],
)
def test_canonical_form(raw: str, canonical: str) -> None:
    assert canonical_phone(raw) == canonical


@pytest.mark.parametrize("raw", ["", "abc", "123", "+999999999999999999"])
def test_not_a_phone(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        canonical_phone(raw)


def test_variants_cover_both_brazilian_forms() -> None:
    assert phone_variants("+5531999887766") == ["+5531999887766", "+553199887766"]
    assert phone_variants("+551140028922") == ["+551140028922"]
