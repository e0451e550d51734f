"""Personal data out of what leaves for an AI endpoint: e-mails, CPFs and CNPJs, and phone numbers
become placeholders ("[email 1]", "[cpf 1]", "[telefone 1]") before a prompt goes out, and are put
back in the answer (it is the customer's own data, going back to the customer)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Order matters: an e-mail's digits are not a phone; a CPF's eleven digits are not one either.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("cnpj", re.compile(r"(?<!\d)\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}(?!\d)")),
    ("cpf", re.compile(r"(?<!\d)\d{3}\.\d{3}\.\d{3}-\d{2}(?!\d)")),
    # +55 (11) 98765-4321, 11 98765 4321, 5511987654321, (11)3456-7890: 8 to 15 digits in all.
    ("telefone", re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{6,18}\d(?![\w])")),
)
# With the area code (10+ digits), or a local number written as one (9876-5432, 98765-4321); a
# CEP (01310-100) or an order number is not a phone.
_MIN_PHONE_DIGITS = 10
_MAX_PHONE_DIGITS = 15
_LOCAL_PHONE = re.compile(r"9?\d{4}[-\s]\d{4}")
_BARE_CPF_DIGITS = 11
# What a placeholder looks like ("[email 1]"), for those who must look past them.
PLACEHOLDER = re.compile(r"\[(?:email|cnpj|cpf|telefone) \d+\]")


@dataclass
class Masker:
    """Masks one conversation's texts consistently (the same e-mail is the same placeholder in
    every message) and unmasks the answer."""

    originals: dict[str, str] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    def mask(self, text: str) -> str:
        """`text` with its e-mails, CPFs, CNPJs and phone numbers replaced by placeholders."""
        for kind, pattern in _PATTERNS:
            text = pattern.sub(lambda match, kind=kind: self._placeholder(kind, match.group(0)), text)  # type: ignore[misc]
        return text

    def unmask(self, text: str) -> str:
        """`text` with the placeholders this masker made put back."""
        for token, original in self.originals.items():
            text = text.replace(token, original)
        return text

    def _placeholder(self, kind: str, found: str) -> str:
        if kind == "telefone":
            digits = sum(char.isdigit() for char in found)
            local = _LOCAL_PHONE.fullmatch(found) is not None
            if not (local or _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS):
                return found
            if digits == _BARE_CPF_DIGITS and not found.lstrip().startswith(("+", "(")):
                # Eleven bare digits: a CPF as often as a mobile number; masked either way.
                kind = "cpf" if found.isdigit() and found[2] != "9" else kind
        token = self._tokens.get(found)
        if token is None:
            count = sum(1 for t in self._tokens.values() if t.startswith(f"[{kind} "))
            token = f"[{kind} {count + 1}]"
            self._tokens[found] = token
            self.originals[token] = found
        return token
