"""Chunking: headings become sources, paragraphs pack to the target size on sentence boundaries
with overlap, CSV rows become question-and-answer chunks, PDFs give their text; fusion by rank."""

from __future__ import annotations

import itertools

import pytest

from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.knowledge.chunking import MAX_CHARS, TARGET_CHARS, chunk_prose, chunk_qa_csv, pdf_text
from messaging_whatsapp.knowledge.retrieval import fuse, query_terms
from tests.knowledge.helpers import FAQ, tiny_pdf


def test_headings_become_sources_and_travel_with_their_text() -> None:
    chunks = chunk_prose("FAQ", FAQ)
    assert [c.source for c in chunks] == [
        "FAQ > Horário de funcionamento",
        "FAQ > Entrega",
        "FAQ > Trocas e devoluções",
        "FAQ > Pagamento",
    ]
    assert chunks[1].text.startswith("Entrega\nEntregamos em toda a cidade")


def test_long_text_packs_to_the_target_on_sentence_boundaries_with_overlap() -> None:
    sentences = [f"Frase número {n} fala de um assunto diferente da loja." for n in range(60)]
    chunks = chunk_prose("Doc", " ".join(sentences))
    assert len(chunks) > 3
    assert all(len(c.text) <= TARGET_CHARS + 60 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)
    # Each chunk starts with the sentence the previous one ended with.
    for before, after in itertools.pairwise(chunks):
        assert after.text.startswith(before.text.rsplit(". ", 1)[-1])


def test_a_huge_sentence_is_cut_at_a_word() -> None:
    chunks = chunk_prose("Doc", "palavra " * 500)
    assert all(len(c.text) <= MAX_CHARS for c in chunks)


@pytest.mark.parametrize(
    "data",
    [
        "question,answer\nQual o prazo?,Dois dias úteis.\n,sem pergunta\n",
        "pergunta;resposta\nQual o prazo?;Dois dias úteis.\n",
        "\ufeffPergunta\tResposta\nQual o prazo?\tDois dias úteis.\n",
    ],
)
def test_csv_rows_become_question_and_answer_chunks(data: str) -> None:
    chunks = chunk_qa_csv("FAQ", data.lstrip("\ufeff"))
    assert [(c.question, c.answer, c.text) for c in chunks] == [
        ("Qual o prazo?", "Dois dias úteis.", "Qual o prazo?\nDois dias úteis.")
    ]


def test_a_csv_without_the_columns_is_refused() -> None:
    with pytest.raises(InvalidInput, match="question and an answer column"):
        chunk_qa_csv("FAQ", "nome,telefone\nAna,1\n")


def test_pdf_text_is_extracted_and_garbage_refused() -> None:
    assert "Garantia de 12 meses" in pdf_text(tiny_pdf("Garantia de 12 meses"))
    with pytest.raises(InvalidInput, match="PDF could not be read"):
        pdf_text(b"%PDF-1.4 not really")


def test_query_terms_fold_accents_and_drop_search_syntax() -> None:
    assert query_terms('Qual é o PRAZO de devolução? "x" OR NEAR(a b) *') == [
        "prazo",
        "devolucao",
        # Quoted as plain words: no operator survives.
        "or",
        "near",
    ]


def test_reciprocal_rank_fusion_favours_what_both_rankings_hold() -> None:
    fused = fuse(["a", "b", "c"], ["c", "d", "a"])
    assert [chunk_id for chunk_id, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)


def test_a_weighted_ranking_counts_less() -> None:
    fused = fuse(["a", "b"], ["b", "a"], weights=(1.0, 0.5))
    assert [chunk_id for chunk_id, _ in fused] == ["a", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 0.5 / 62)
