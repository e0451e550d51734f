"""Chunking: headings become sources, paragraphs pack to the target size on sentence boundaries
with overlap, CSV rows become question-and-answer chunks, PDFs give their text; the
question's stems, the fusion of scores, and how much of a question chunks hold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from messaging_whatsapp.errors import InvalidInput
from messaging_whatsapp.knowledge.chunking import MAX_CHARS, TARGET_CHARS, chunk_prose, chunk_qa_csv, pdf_text
from messaging_whatsapp.knowledge.retrieval import (
    TenantMatrix,
    Vocabulary,
    coverage,
    fold,
    fuse_scores,
    query_terms,
    search_prefix,
    telling_terms,
)
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


def test_singular_plural_and_unaccented_words_share_a_stem() -> None:
    assert search_prefix("entregas") == search_prefix("entrega") == "entreg"
    # Typed without accents, a word stems as the written one does.
    assert (
        search_prefix("devolucao")
        == search_prefix("devolucoes")
        == search_prefix(fold("devoluções"))
        == "devolu"
    )
    assert search_prefix("parcelamento") == search_prefix("parcelar")


def test_the_fusion_weighs_full_text_and_similarity() -> None:
    # Three chunks; the question's vector is the second's.
    matrix = TenantMatrix((1, "m"), ["a", "b", "c"], np.eye(3, dtype=np.float32))
    query = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    by_text = [("a", 2.0), ("b", 1.0)]
    # Equal weights: "b" (half the best full text, the best similarity) beats "a".
    assert [chunk_id for chunk_id, _ in fuse_scores(by_text, matrix, query, 0.5)][:2] == ["b", "a"]
    # The full text weighted more: "a" first; "c", in neither's best, last.
    fused = fuse_scores(by_text, matrix, query, 0.9)
    assert [chunk_id for chunk_id, _ in fused] == ["a", "b", "c"]
    assert fused[0][1] == pytest.approx(0.9)


def test_coverage_weighs_the_words_the_base_rarely_uses() -> None:
    vocabulary = Vocabulary.of(["entrega na loja", "troca na loja", "frete da loja", "loja aberta"])
    terms = query_terms("vocês fazem entrega de cachorro na loja?")
    # "loja" is everywhere and "cachorro" nowhere: finding only "loja" covers little.
    assert coverage(["cachorro", "loja"], ["entrega na loja"], vocabulary) < 0.3
    assert coverage(["entregas"], ["entrega na loja"], vocabulary) == 1.0
    assert 0 < coverage(terms, ["entrega na loja"], vocabulary) < 1
    assert coverage([], ["entrega na loja"], vocabulary) == 0.0


def test_words_most_chunks_use_are_not_searched() -> None:
    vocabulary = Vocabulary.of(["entrega na loja", "troca na loja", "frete da loja", "loja aberta"])
    assert telling_terms(["loja", "frete"], vocabulary) == ["frete"]
    assert telling_terms(["loja"], vocabulary) == ["loja"]
