"""Personal data is masked before a prompt leaves and put back in the answer; the business's own
figures (prices, order numbers, CEPs) stay as they are."""

from __future__ import annotations

import pytest

from messaging_whatsapp.assistant.masking import Masker


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("meu email é joao.silva+loja@gmail.com", "meu email é [email 1]"),
        ("CPF 123.456.789-09", "CPF [cpf 1]"),
        ("cpf 12345678909", "cpf [cpf 1]"),
        ("CNPJ 12.345.678/0001-90", "CNPJ [cnpj 1]"),
        ("liga no +55 (11) 98765-4321", "liga no [telefone 1]"),
        ("zap 11987654321", "zap [telefone 1]"),
        ("fixo 3456-7890", "fixo [telefone 1]"),
        ("5511987654321 é o meu", "[telefone 1] é o meu"),
    ],
)
def test_personal_data_becomes_placeholders(written: str, masked: str) -> None:
    assert Masker().mask(written) == masked


@pytest.mark.parametrize(
    "kept",
    ["pedido 12345", "CEP 01310-100", "R$ 1.299,90 em 10x", "entrega em 2 dias", "das 9h às 18h"],
)
def test_the_business_figures_are_left_alone(kept: str) -> None:
    assert Masker().mask(kept) == kept


def test_the_same_data_is_the_same_placeholder_and_comes_back_in_the_answer() -> None:
    masker = Masker()
    first = masker.mask("sou ana@exemplo.com e meu fone é (21) 99876-5432")
    second = masker.mask("repito: ana@exemplo.com")
    assert first == "sou [email 1] e meu fone é [telefone 1]"
    assert second == "repito: [email 1]"
    answer = "Certo! Enviaremos o código para [email 1]."
    assert masker.unmask(answer) == "Certo! Enviaremos o código para ana@exemplo.com."
