"""Phone identity: one canonical E.164 form per person, whatever form WhatsApp uses.

Two readings, never mixed:

- `canonical_phone` reads what is already international: provider ids and JIDs ("5511...",
  "...@s.whatsapp.net", "whatsapp:+55..."), stored numbers. A provider's "5511..." is Brazil
  whatever the tenant's country, so no default country applies.
- `typed_phone` reads what a person typed (the API's `to`, the CLI's --to and --phone, a CSV
  cell): "(11) 98765-4321" is national, read with the tenant's default country; it must be a
  valid number of that country, or of its own country when written with "+" and a country code.

Brazilian mobiles gained a ninth digit in 2012-2016, but WhatsApp ids of numbers outside area codes
11 to 28 usually still lack it. We store the form with the ninth digit and match both.
"""

from __future__ import annotations

import re

import phonenumbers

from messaging_whatsapp.errors import InvalidInput

# Brazil unless a tenant says otherwise (tenants.default_country).
DEFAULT_COUNTRY = "BR"
# +55, one of Brazil's area codes (DDD), then a mobile (9 + 8 digits) or a landline (2-5 + 7
# digits): exactly the numbers phonenumbers holds valid for these types, twenty times faster.
BRAZILIAN = re.compile(r"55(?:[14689][1-9]|2[12478]|3[1-578]|5[13-5]|7[13-579])(?:9\d{8}|[2-5]\d{7})")
# Already international however it is written: a WhatsApp JID or Twilio's address.
_JID_SUFFIXES = ("@s.whatsapp.net", "@c.us")
_TWILIO_PREFIX = "whatsapp:"


class InvalidPhone(InvalidInput, ValueError):
    """The text is not a phone number we can message (422 `invalid_phone` when a person typed it)."""

    code = "invalid_phone"


def _brazil_with_ninth_digit(digits: str) -> str:
    # 55 + DDD (2) + 8-digit subscriber starting 6-9 is a mobile written without its ninth digit.
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


def _international_digits(text: str) -> str | None:
    """The digits of a provider form (JID, whatsapp:+...), None when `text` is not one."""
    stripped = text.removeprefix(_TWILIO_PREFIX)
    for suffix in _JID_SUFFIXES:
        stripped = stripped.removesuffix(suffix)
    if stripped == text:
        return None
    return "".join(ch for ch in stripped if ch.isdigit())


def canonical_phone(raw: str) -> str:
    """Canonical E.164 with '+' ("+5531999887766") of a number already international (a provider's
    id or JID, digits with or without '+'); raises InvalidPhone when it is not a number. Never for
    typed input: that is `typed_phone`, with the tenant's country."""
    text = raw.strip()
    for suffix in _JID_SUFFIXES:
        text = text.removesuffix(suffix)
    text = text.removeprefix(_TWILIO_PREFIX)
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits or len(digits) > 15:
        raise InvalidPhone(f"not a phone number: {raw!r}")
    digits = _brazil_with_ninth_digit(digits)
    if BRAZILIAN.fullmatch(digits):
        # Most numbers we see; the regex is exact for them and 20 times faster than parsing.
        return "+" + digits
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {raw!r}") from exc
    # Lenient on purpose: a provider saw a person write from it, so a possible number is enough.
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def needs_country(text: str) -> bool:
    """Whether `typed_phone` would read `text` with the default country (it is not written
    international), so a caller loads the tenant's country only when it matters."""
    stripped = text.strip()
    return not stripped.startswith("+") and _international_digits(stripped) is None


def typed_phone(text: str, country: str) -> str:
    """Canonical E.164 of a phone a person typed: national forms ("(11) 98765-4321",
    "11987654321") read as numbers of `country` (ISO 3166 alpha-2), "+CC ..." as written. Raises
    InvalidPhone, naming the text, unless it is a valid number of that country (or its own)."""
    stripped = text.strip()
    international = _international_digits(stripped)
    if international is not None:
        stripped = "+" + international
    if stripped.startswith("+") and stripped[1:].isdigit():
        digits = _brazil_with_ninth_digit(stripped[1:])
        if BRAZILIAN.fullmatch(digits):
            return "+" + digits  # canonical input: the fast path
    try:
        number = phonenumbers.parse(stripped, country)
        digits = _brazil_with_ninth_digit(
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")
        )
        if BRAZILIAN.fullmatch(digits):
            return "+" + digits
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise _invalid(text, country) from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid(text, country)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _invalid(text: str, country: str) -> InvalidPhone:
    shown = text.strip()[:40]
    where = (
        "" if not needs_country(shown) else f" of {country} (another country's starts with + and its code)"
    )
    return InvalidPhone(f"{shown!r} is not a valid phone number{where}", details={"phone": shown})


def known_country(code: str) -> str | None:
    """The ISO 3166 alpha-2 code in upper case if phonenumbers knows its numbers, else None."""
    upper = code.strip().upper()
    return upper if upper in phonenumbers.SUPPORTED_REGIONS else None


def phone_variants(canonical: str) -> list[str]:
    """Every E.164 form the same person may appear under (the canonical one first)."""
    variants = [canonical]
    digits = canonical.removeprefix("+")
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        variants.append("+" + digits[:4] + digits[5:])
    return variants
