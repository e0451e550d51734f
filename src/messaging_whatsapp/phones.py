"""Phone identity: one canonical E.164 form per person, whatever form WhatsApp uses.

Brazilian mobiles gained a ninth digit in 2012-2016, but WhatsApp ids of numbers outside area codes
11 to 28 usually still lack it. We store the form with the ninth digit and match both.
"""

from __future__ import annotations

import re

import phonenumbers

# +55, a two-digit area code (11-99), then a mobile (9 + 8 digits) or a landline (2-5 + 7 digits).
BRAZILIAN = re.compile(r"55[1-9][1-9](?:9\d{8}|[2-5]\d{7})")


class InvalidPhone(ValueError):
    """The text is not a phone number we can message."""


def _brazil_with_ninth_digit(digits: str) -> str:
    # 55 + DDD (2) + 8-digit subscriber starting 6-9 is a mobile written without its ninth digit.
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


def canonical_phone(raw: str) -> str:
    """Canonical E.164 with '+' ("+5531999887766"); raises InvalidPhone when it is not a number."""
    text = raw.strip()
    for suffix in ("@s.whatsapp.net", "@c.us"):
        text = text.removesuffix(suffix)
    text = text.removeprefix("whatsapp:")
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
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(f"not a possible phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_variants(canonical: str) -> list[str]:
    """Every E.164 form the same person may appear under (the canonical one first)."""
    variants = [canonical]
    digits = canonical.removeprefix("+")
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        variants.append("+" + digits[:4] + digits[5:])
    return variants


def canonical_listed_phone(raw: str, country_code: str = "55") -> str:
    """Like canonical_phone, for numbers from a contact list: one written the national way, without
    '+' and country code ("(11) 98765-4321", 10 or 11 digits in Brazil), is read as the country's."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not raw.strip().startswith("+") and len(digits) in (10, 11):
        return canonical_phone(country_code + digits)
    return canonical_phone(raw)
