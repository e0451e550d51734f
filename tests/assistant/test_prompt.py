"""What the model is told and how its answer is read: numbered sources, the tenant's rules, the
conversation in roles; citations kept and taken out of the text; no citation means a person."""

from __future__ import annotations

from messaging_whatsapp.assistant import fake
from messaging_whatsapp.assistant.masking import Masker
from messaging_whatsapp.assistant.prompt import (
    HANDOFF_MARKER,
    HistoryLine,
    PromptChunk,
    chat_messages,
    read_answer,
)

CHUNKS = [
    PromptChunk("c1", "FAQ > Entrega", "Entregamos em até 2 dias úteis."),
    PromptChunk("c2", "FAQ > Pagamento", "Aceitamos Pix e cartão."),
]


def test_the_prompt_holds_the_rules_the_sources_and_the_conversation_masked() -> None:
    history = [
        HistoryLine(True, "Oi, meu email é bia@exemplo.com"),
        HistoryLine(False, "Olá! Como podemos ajudar?"),
        HistoryLine(True, "Quanto tempo leva a entrega?"),
    ]
    messages = chat_messages(
        "Loja Aurora", "Trate por você.", "Nunca prometa descontos.", CHUNKS, history, Masker()
    )
    system = messages[0]["content"]
    assert "Loja Aurora" in system
    assert "Trate por você." in system
    assert "Nunca prometa descontos." in system
    assert "[1] (FAQ > Entrega)\nEntregamos em até 2 dias úteis." in system
    assert "[2] (FAQ > Pagamento)" in system
    assert HANDOFF_MARKER in system
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[1]["content"] == "Oi, meu email é [email 1]"


def test_citations_are_kept_once_in_order_and_taken_out_of_the_text() -> None:
    answer = read_answer("Aceitamos Pix [2]. Entregamos em 2 dias [1] [2].", 2)
    assert answer.cited == [2, 1]
    assert answer.text == "Aceitamos Pix. Entregamos em 2 dias."
    assert not answer.handoff


def test_no_citation_a_made_up_citation_or_the_marker_hand_off() -> None:
    assert read_answer("Custa R$ 50.", 2).handoff  # nothing cited: not grounded
    assert read_answer("Custa R$ 50 [7].", 2).handoff  # no such source
    assert read_answer(f"Não sei. {HANDOFF_MARKER}", 2).handoff
    assert read_answer("   ", 2).handoff


def test_the_fake_model_answers_with_the_first_source_or_hands_off() -> None:
    messages = chat_messages("Loja", "", "", CHUNKS, [HistoryLine(True, "entrega?")], Masker())
    answer = fake.chat_completion({"model": "m", "messages": messages})["choices"][0]["message"]["content"]
    assert answer == "Entregamos em até 2 dias úteis. [1]"
    empty = chat_messages("Loja", "", "", [], [HistoryLine(True, "entrega?")], Masker())
    assert fake.chat_completion({"messages": empty})["choices"][0]["message"]["content"] == HANDOFF_MARKER
    vectors = fake.embeddings({"input": ["uma frase", "outra"]})["data"]
    assert [round(sum(v * v for v in row["embedding"]), 6) for row in vectors] == [1.0, 1.0]
