"""Phone identity: one canonical E.164 per person, whatever form WhatsApp uses."""

from __future__ import annotations

import phonenumbers
import pytest

from messaging_whatsapp.phones import (
    BRAZILIAN,
    InvalidPhone,
    canonical_phone,
    known_country,
    needs_country,
    phone_variants,
    typed_phone,
)


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


@pytest.mark.parametrize(
    ("text", "country", "e164"),
    [
        ("(11) 98765-4321", "BR", "+5511987654321"),
        ("11987654321", "BR", "+5511987654321"),
        ("(31) 9988-7766", "BR", "+5531999887766"),  # typed without the ninth digit
        ("+5511987654321", "BR", "+5511987654321"),  # canonical: the fast path
        ("+1 415 555 2671", "BR", "+14155552671"),  # "+CC": its own country, whatever the default
        ("5511987654321", "BR", "+5511987654321"),  # the country code without "+"
        ("(415) 555-2671", "US", "+14155552671"),
        ("+55 (11) 98765-4321", "US", "+5511987654321"),
        ("5511987654321@s.whatsapp.net", "US", "+5511987654321"),  # a JID is international
        ("whatsapp:+14155552671", "BR", "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_typed_phones_are_read_with_the_default_country(text: str, country: str, e164: str) -> None:
    assert typed_phone(text, country) == e164


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("(11) 98765-4321", "US"),  # a Brazilian mobile is no American number
        ("11987654321", "US"),
        ("5511987654321", "US"),  # without "+", a national US number: too long
        ("(11) 9876-543", "BR"),
        ("(20) 98765-4321", "BR"),  # no area code 20 in Brazil
        ("+5520987654321", "BR"),
        ("+1 555 555 5555", "BR"),  # no such American number
        ("abc", "BR"),
        ("", "BR"),
    ],
)
def test_a_typed_phone_that_is_not_a_valid_number_is_refused_naming_it(text: str, country: str) -> None:
    with pytest.raises(InvalidPhone) as refused:
        typed_phone(text, country)
    assert refused.value.code == "invalid_phone"
    assert repr(text) in refused.value.message


def test_provider_digits_are_international_whatever_the_country() -> None:
    # canonical_phone takes no country: a provider's 5511... is Brazil for an American tenant too.
    assert canonical_phone("5511987654321") == "+5511987654321"
    assert needs_country("(11) 98765-4321")
    assert needs_country("11987654321")
    assert not needs_country("+1 415 555 2671")
    assert not needs_country("5511987654321@s.whatsapp.net")


def test_countries_are_iso_codes_phonenumbers_knows() -> None:
    assert (known_country("br"), known_country(" US "), known_country("XX"), known_country("BRA")) == (
        "BR",
        "US",
        None,
        None,
    )


def test_the_fast_path_agrees_with_phonenumbers_on_brazilian_mobiles_and_landlines() -> None:
    kinds = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE}
    for area in range(10, 100):
        for subscriber in ("987654321", "34567890", "23456789"):
            digits = f"55{area}{subscriber}"
            number = phonenumbers.parse("+" + digits, None)
            valid = phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in kinds
            assert bool(BRAZILIAN.fullmatch(digits)) == valid, digits
