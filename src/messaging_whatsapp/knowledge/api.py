"""The knowledge base's routes under /api/v1: thin over the service.

Documents go in as JSON (`{"title", "text"}`) or as one multipart file (text, Markdown, PDF, or a
CSV of questions and answers); admins (or keys with knowledge:write) change them, agents and up
(knowledge:read) read and search them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from messaging_whatsapp.deps import Context, DbSession
from messaging_whatsapp.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from messaging_whatsapp.knowledge import service
from messaging_whatsapp.knowledge.chunking import ChunkDraft, chunk_prose
from messaging_whatsapp.knowledge.embeddings import embedder_for
from messaging_whatsapp.knowledge.models import DocumentKind, KnowledgeDocument
from messaging_whatsapp.knowledge.schemas import (
    ChunkEdit,
    ChunkItem,
    DocumentDetail,
    DocumentIn,
    DocumentItem,
    DocumentUpdated,
    SearchAnswer,
    SearchItem,
)
from messaging_whatsapp.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from messaging_whatsapp.tenancy.deps import KnowledgeReader, KnowledgeWriter

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])

MAX_FILE_BYTES = 2 * 1024 * 1024
# The multipart envelope around the file (boundaries, headers, a title field).
ENVELOPE_BYTES = 64 * 1024
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]


# The body is read by hand (JSON or multipart): described here for the OpenAPI document.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 300},
                    },
                }
            },
        },
    }
}


@router.post("/documents", status_code=201, openapi_extra=UPLOAD_BODY)
async def create_document(
    request: Request, session: DbSession, context: Context, principal: KnowledgeWriter
) -> DocumentDetail:
    """Add a document: JSON `{"title", "text"}` (Markdown headings are kept as sources), or a
    multipart form with `file` (and an optional `title`)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        title, kind, drafts = await _uploaded(request)
    elif content_type.startswith("application/json"):
        try:
            body = DocumentIn.model_validate_json(await _body(request, MAX_FILE_BYTES * 2))
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_url=False, include_context=False)) from error
        title, kind, drafts = body.title, DocumentKind.MARKDOWN, chunk_prose(body.title, body.text)
    else:
        raise UnsupportedMediaType("Send JSON {title, text} or a multipart form with a file.")
    embedder = embedder_for(context.settings)
    document = await service.create_document(session, embedder, principal.tenant_id, title, kind, drafts)
    return await _detail(session, document)


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused past `limit` bytes."""
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise PayloadTooLarge(f"The document is over {limit // (1024 * 1024)} MB.")
    return bytes(data)


async def _uploaded(request: Request) -> tuple[str, DocumentKind, list[ChunkDraft]]:
    """The multipart upload's title, kind and chunks (size checked before the form is read)."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise InvalidInput("An upload needs a Content-Length.", code="length_required")
    if int(declared) > MAX_FILE_BYTES + ENVELOPE_BYTES:
        raise PayloadTooLarge("The file is over 2 MB.")
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Send the document as the form's `file` field.", code="file_missing")
        data = await upload.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise PayloadTooLarge("The file is over 2 MB.")
        filename = upload.filename or "document"
        kind = service.upload_kind(filename, upload.content_type)
        given = form.get("title")
        title = service.storable(given if isinstance(given, str) and given.strip() else filename)
        title = title.encode("utf-8", "replace").decode().strip()[:300] or "document"
    return title, kind, service.upload_drafts(title, kind, data)


async def _detail(session: DbSession, document: KnowledgeDocument) -> DocumentDetail:
    chunks = await service.document_chunks(session, document)
    return DocumentDetail(
        **DocumentItem.of(document, len(chunks)).model_dump(), chunks=[ChunkItem.of(c) for c in chunks]
    )


@router.get("/documents")
async def list_documents(
    session: DbSession, principal: KnowledgeReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[DocumentItem]:
    """The tenant's documents, newest first, each with its number of chunks."""
    found, next_cursor = await service.list_documents(session, principal.tenant_id, cursor, limit)
    return Page(items=[DocumentItem.of(d, count) for d, count in found], next_cursor=next_cursor)


@router.get("/documents/{document_id}")
async def get_document(document_id: str, session: DbSession, principal: KnowledgeReader) -> DocumentDetail:
    """One document with its chunks in order."""
    return await _detail(session, await service.get_document(session, principal.tenant_id, document_id))


@router.put("/documents/{document_id}")
async def replace_document(
    document_id: str, body: DocumentIn, session: DbSession, context: Context, principal: KnowledgeWriter
) -> DocumentUpdated:
    """New title and text for a prose document: rechunked, only changed chunks embedded again."""
    document, embedded = await service.replace_document_text(
        session, embedder_for(context.settings), principal.tenant_id, document_id, body.title, body.text
    )
    return DocumentUpdated(**(await _detail(session, document)).model_dump(), reembedded=embedded)


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: str, session: DbSession, principal: KnowledgeWriter) -> None:
    """Delete a document and its chunks (from the full-text and vector indexes)."""
    await service.delete_document(session, principal.tenant_id, document_id)


@router.patch("/chunks/{chunk_id}")
async def edit_chunk(
    chunk_id: str, body: ChunkEdit, session: DbSession, context: Context, principal: KnowledgeWriter
) -> ChunkItem:
    """A chunk's new text, or a question-and-answer pair's question and answer; only this chunk
    is embedded again."""
    chunk = await service.edit_chunk(
        session,
        embedder_for(context.settings),
        principal.tenant_id,
        chunk_id,
        new_text=body.text,
        question=body.question,
        answer=body.answer,
    )
    return ChunkItem.of(chunk)


@router.get("/search")
async def search(
    session: DbSession,
    context: Context,
    principal: KnowledgeReader,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> SearchAnswer:
    """The chunks that best answer `q`, best first: full-text and vector scores fused
    (score), with each chunk's cosine similarity to the question."""
    found = await service.search(session, embedder_for(context.settings), principal.tenant_id, q, limit)
    return SearchAnswer(items=[SearchItem.of(f) for f in found])
