"""The knowledge base on both databases: Portuguese questions find the right chunk with or
without accents, the same answers on SQLite and PostgreSQL, only changed chunks embedded again,
deletes leave both indexes, and tenants never see each other's chunks."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from messaging_whatsapp.context import EngineContext
from messaging_whatsapp.db import is_postgresql
from messaging_whatsapp.knowledge import retrieval, service
from messaging_whatsapp.knowledge.chunking import chunk_prose
from messaging_whatsapp.knowledge.models import DocumentKind, KnowledgeChunk
from messaging_whatsapp.knowledge.retrieval import fulltext_ranked, query_terms
from tests.helpers import create_tenant
from tests.knowledge.helpers import FAQ, CountingEmbedder


async def _add_faq(context: EngineContext, tenant_id: str, embedder: CountingEmbedder) -> str:
    async with context.sessions() as session, session.begin():
        document = await service.create_document(
            session, embedder, tenant_id, "FAQ", DocumentKind.MARKDOWN, chunk_prose("FAQ", FAQ)
        )
        return document.id


async def _search(
    context: EngineContext, tenant_id: str, typed: str, embedder: CountingEmbedder
) -> list[str]:
    async with context.sessions() as session:
        return [f.chunk.source for f in await service.search(session, embedder, tenant_id, typed, 3)]


async def test_portuguese_questions_find_their_chunk_with_or_without_accents(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    await _add_faq(context, tenant_id, embedder)
    questions = {
        "Qual o prazo para devolução?": "FAQ > Trocas e devoluções",
        "qual o prazo para devolucao": "FAQ > Trocas e devoluções",
        "Vocês abrem no sábado?": "FAQ > Horário de funcionamento",
        "voces abrem no sabado": "FAQ > Horário de funcionamento",
        "Quanto custa o frete?": "FAQ > Entrega",
        "Posso pagar com PIX?": "FAQ > Pagamento",
    }
    for typed, source in questions.items():
        assert (await _search(context, tenant_id, typed, embedder))[0] == source, typed


async def test_the_same_ranking_on_both_databases(context: EngineContext) -> None:
    """A fixed expected ranking: SQLite and PostgreSQL runs of this test both meet it."""
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    await _add_faq(context, tenant_id, embedder)
    assert await _search(context, tenant_id, "devolução do produto com defeito", embedder) == [
        "FAQ > Trocas e devoluções",
        "FAQ > Pagamento",
        "FAQ > Horário de funcionamento",
    ]
    async with context.sessions() as session:
        # Full text alone: accents folded on both, one match for "devolucoes"/"devolução".
        by_text = await fulltext_ranked(session, tenant_id, query_terms("DEVOLUÇÃO"))
        sources = (
            await session.scalars(select(KnowledgeChunk.source).where(KnowledgeChunk.id.in_(by_text)))
        ).all()
    assert list(sources) == ["FAQ > Trocas e devoluções"]


async def test_only_changed_chunks_are_embedded_again(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    document_id = await _add_faq(context, tenant_id, embedder)
    assert len(embedder.texts) == 4
    embedder.texts.clear()
    async with context.sessions() as session, session.begin():
        before = {
            c.source: c.id
            for c in await service.document_chunks(
                session, await service.get_document(session, tenant_id, document_id)
            )
        }
        changed = FAQ.replace("R$ 200", "R$ 250")
        _, embedded = await service.replace_document_text(
            session, embedder, tenant_id, document_id, "FAQ", changed
        )
    assert embedded == 1
    assert len(embedder.texts) == 1
    assert "R$ 250" in embedder.texts[0]
    async with context.sessions() as session:
        after = {
            c.source: c.id
            for c in await service.document_chunks(
                session, await service.get_document(session, tenant_id, document_id)
            )
        }
    # Unchanged chunks keep their rows (and vectors); the changed one is new.
    assert {s for s in before if before[s] == after[s]} == {
        "FAQ > Horário de funcionamento",
        "FAQ > Trocas e devoluções",
        "FAQ > Pagamento",
    }
    assert (await _search(context, tenant_id, "frete grátis acima de quanto?", embedder))[
        0
    ] == "FAQ > Entrega"

    embedder.texts.clear()
    async with context.sessions() as session, session.begin():
        chunk_id = after["FAQ > Pagamento"]
        await service.edit_chunk(session, embedder, tenant_id, chunk_id, new_text="Aceitamos só dinheiro.")
        # The same text again: nothing to embed.
        await service.edit_chunk(session, embedder, tenant_id, chunk_id, new_text="Aceitamos só dinheiro.")
    assert embedder.texts == ["Aceitamos só dinheiro."]
    assert (await _search(context, tenant_id, "dinheiro", embedder))[0] == "FAQ > Pagamento"


async def test_a_deleted_document_leaves_both_indexes(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    document_id = await _add_faq(context, tenant_id, embedder)
    assert await _search(context, tenant_id, "frete", embedder)
    async with context.sessions() as session, session.begin():
        await service.delete_document(session, tenant_id, document_id)
    assert await _search(context, tenant_id, "frete", embedder) == []
    async with context.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(KnowledgeChunk)) == 0
        if not is_postgresql(session):
            matches = await session.scalar(
                text("SELECT count(*) FROM knowledge_search WHERE knowledge_search MATCH 'frete'")
            )
            assert matches == 0


async def test_a_tenant_never_finds_another_tenants_chunks(context: EngineContext) -> None:
    mine = await create_tenant(context, "Minha")
    theirs = await create_tenant(context, "Outra")
    embedder = CountingEmbedder()
    await _add_faq(context, theirs, embedder)
    assert await _search(context, mine, "frete", embedder) == []
    async with context.sessions() as session:
        assert await fulltext_ranked(session, mine, ["frete"]) == []
        documents, _ = await service.list_documents(session, mine, None, 10)
    assert documents == []


async def test_odd_characters_in_a_question_are_only_words(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    await _add_faq(context, tenant_id, embedder)
    for typed in ["ⅷ x² ٣", "'\\\":* | & ! <->", "frete:* & !pix", "de o a"]:
        await _search(context, tenant_id, typed, embedder)
    assert (await _search(context, tenant_id, "frete:* & !pix", embedder))[0] in {
        "FAQ > Entrega",
        "FAQ > Pagamento",
    }


async def test_plural_singular_and_unaccented_words_find_each_other(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    await _add_faq(context, tenant_id, embedder)
    async with context.sessions() as session:
        for typed, source in [
            ("entregas", "FAQ > Entrega"),
            ("entregam", "FAQ > Entrega"),
            ("devolucoes", "FAQ > Trocas e devoluções"),
            ("sabado", "FAQ > Horário de funcionamento"),
            ("boletos", "FAQ > Pagamento"),
        ]:
            by_text = await fulltext_ranked(session, tenant_id, query_terms(typed))
            found = await session.scalar(select(KnowledgeChunk.source).where(KnowledgeChunk.id == by_text[0]))
            assert found == source, typed


async def test_what_the_base_holds_is_answerable_and_what_it_lacks_is_not(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    embedder = CountingEmbedder()
    await _add_faq(context, tenant_id, embedder)
    async with context.sessions() as session:
        for typed in [
            "Qual o horário no sábado?",
            "posso devolver um produto?",
            "Oi\ntudo bem?\nO frete é grátis?",
        ]:
            evidence = await service.gather_evidence(session, embedder, tenant_id, typed)
            assert evidence.answerable, typed
            assert evidence.found
        for typed in [
            "Vocês vendem ração para cachorro?",
            "Qual a senha do wi-fi?",
            "quem ganhou o jogo ontem",
        ]:
            evidence = await service.gather_evidence(session, embedder, tenant_id, typed)
            assert not evidence.answerable, typed


async def test_a_tenant_with_few_matches_among_many_still_finds_them(
    context: EngineContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the index's best matches of all tenants are ranked first; a tenant whose chunks
    are not among them has all its matches ranked instead (the same answer either way)."""
    mine = await create_tenant(context, "Minha")
    theirs = await create_tenant(context, "Outra")
    embedder = CountingEmbedder()
    await _add_faq(context, mine, embedder)
    for _ in range(3):
        await _add_faq(context, theirs, embedder)
    async with context.sessions() as session:
        expected = await fulltext_ranked(session, mine, query_terms("frete e pagamento"))
        monkeypatch.setattr(retrieval, "SQLITE_WIDE", 1)
        assert await fulltext_ranked(session, mine, query_terms("frete e pagamento")) == expected
    assert len(expected) == 2


async def test_an_empty_knowledge_base_answers_nothing(context: EngineContext) -> None:
    tenant_id = await create_tenant(context)
    async with context.sessions() as session:
        evidence = await service.gather_evidence(
            session, CountingEmbedder(), tenant_id, "Qual o prazo de entrega?"
        )
    assert evidence.found == []
    assert not evidence.answerable
