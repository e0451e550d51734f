"""Reading contact lists as Brazilian spreadsheets export them."""

from __future__ import annotations

import pytest

from messaging_whatsapp.campaigns.importing import ContactRow, decode, read_csv
from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.phones import InvalidPhone, typed_phone


def test_semicolons_latin1_and_extra_columns_become_variables() -> None:
    data = "Telefone;Nome;Cidade;Cupom\n(11) 98765-4321;João;São Paulo;BF10\n\n5521 99876 5432;Ana;Rio;\n"
    rows = list(read_csv(decode(data.encode("latin-1"))))
    assert rows == [
        ContactRow("(11) 98765-4321", "João", {"cidade": "São Paulo", "cupom": "BF10"}, line=2),
        ContactRow("5521 99876 5432", "Ana", {"cidade": "Rio"}, line=4),
    ]


def test_commas_and_a_utf8_bom() -> None:
    rows = list(read_csv(decode("\ufeffphone,name\n+5511987654321,Maria\n".encode())))
    assert rows == [ContactRow("+5511987654321", "Maria", {}, line=2)]


def test_a_consent_column_is_read_not_kept_as_a_variable() -> None:
    data = "telefone;nome;consentimento;cupom\n11987654321;Ana;Sim;BF\n21998765432;Caio;não;\n"
    data += "31987654321;Bia;;\n"
    rows = list(read_csv(data))
    assert [(row.name, row.opted_in, row.variables) for row in rows] == [
        ("Ana", True, {"cupom": "BF"}),
        ("Caio", False, {}),
        ("Bia", False, {}),
    ]


def test_a_file_without_a_phone_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no phone column"):
        list(read_csv("nome,cidade\nAna,Rio\n"))
    with pytest.raises(InvalidInput, match="empty"):
        list(read_csv(""))


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("(11) 98765-4321", "+5511987654321"),
        ("11 8765-4321", "+5511987654321"),
        ("(11) 3456-7890", "+551134567890"),
        ("5511987654321", "+5511987654321"),
        ("+55 11 98765-4321", "+5511987654321"),
        ("551187654321", "+5511987654321"),
        ("+1 415 555 2671", "+14155552671"),
    ],
)
def test_listed_phones_without_country_code_are_brazilian(raw: str, canonical: str) -> None:
    assert typed_phone(raw, "BR") == canonical


def test_a_listed_phone_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(InvalidPhone):
        typed_phone("abc", "BR")
