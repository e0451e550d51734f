"""Cutting documents into chunks: prose by headings and paragraphs to a target size, on sentence
boundaries with a sentence of overlap; a CSV of questions and answers one chunk per row; a PDF's
text extracted first (pypdf)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from messaging_whatsapp.errors import InvalidInput

# A chunk aims at this many characters and never grows past MAX_CHARS (one very long sentence is
# cut by words): long enough to hold an answer with its context, short enough to rank sharply.
TARGET_CHARS = 700
MAX_CHARS = 1000
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
QUESTION_COLUMNS = ("question", "pergunta")
ANSWER_COLUMNS = ("answer", "resposta")


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is stored: its text, source ("Title > Heading") and, for Q&A, its parts."""

    text: str
    source: str
    question: str | None = None
    answer: str | None = None


def qa_text(question: str, answer: str) -> str:
    """The text a question-and-answer pair is searched and embedded by."""
    return f"{question.strip()}\n{answer.strip()}"


def chunk_prose(title: str, text: str) -> list[ChunkDraft]:
    """`text` (plain or Markdown) cut into chunks under its headings."""
    drafts: list[ChunkDraft] = []
    for heading, paragraphs in _sections(text):
        source = f"{title} > {heading}" if heading else title
        # The heading travels with each of its chunks: it often names what the text answers.
        prefix = f"{heading}\n" if heading else ""
        drafts.extend(ChunkDraft(prefix + body, source[:500]) for body in _pack(paragraphs))
    return drafts


def _sections(text: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) in order; text before the first heading has none."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    paragraph: list[str] = []

    def close_paragraph() -> None:
        if paragraph:
            sections[-1][1].append(" ".join(paragraph))
            paragraph.clear()

    for line in text.replace("\r\n", "\n").split("\n"):
        heading = HEADING.match(line)
        if heading:
            close_paragraph()
            sections.append((heading.group(1).strip(), []))
        elif not line.strip():
            close_paragraph()
        else:
            paragraph.append(line.strip())
    close_paragraph()
    return [(heading, paragraphs) for heading, paragraphs in sections if paragraphs]


def _pack(paragraphs: list[str]) -> list[str]:
    """Sentences packed into chunks of about TARGET_CHARS, whole paragraphs kept together when
    they fit; a new chunk repeats the previous chunk's last sentence (overlap)."""
    sentences: list[str] = []
    for paragraph in paragraphs:
        sentences.extend(_split_long(s) for s in SENTENCE_END.split(paragraph) if s.strip())
    chunks: list[str] = []
    current: list[str] = []
    for sentence in sentences:
        if current and len(" ".join([*current, sentence])) > TARGET_CHARS:
            chunks.append(" ".join(current))
            overlap = current[-1]
            current = [overlap] if len(overlap) + len(sentence) < TARGET_CHARS else []
        current.append(sentence)
    if current:
        chunks.append(" ".join(current))
    return chunks


def _split_long(sentence: str) -> str:
    """A sentence longer than MAX_CHARS cut at a word boundary (what follows is rare and lost in
    search rather than making one huge chunk)."""
    sentence = sentence.strip()
    if len(sentence) <= MAX_CHARS:
        return sentence
    return sentence[:MAX_CHARS].rsplit(" ", 1)[0]


def chunk_qa_csv(title: str, data: str) -> list[ChunkDraft]:
    """One chunk per row of a CSV with question/answer (or pergunta/resposta) columns."""
    sample = data[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(data), dialect=dialect)
    columns = {name.strip().lower(): name for name in reader.fieldnames or [] if name}
    question_column = next((columns[c] for c in QUESTION_COLUMNS if c in columns), None)
    answer_column = next((columns[c] for c in ANSWER_COLUMNS if c in columns), None)
    if question_column is None or answer_column is None:
        raise InvalidInput(
            "The CSV needs a question and an answer column (question/answer or pergunta/resposta).",
            code="csv_columns_missing",
        )
    drafts = []
    for row in reader:
        question = (row.get(question_column) or "").strip()
        answer = (row.get(answer_column) or "").strip()
        if question and answer:
            drafts.append(ChunkDraft(qa_text(question, answer), title[:500], question, answer))
    return drafts


def pdf_text(data: bytes) -> str:
    """The text of a PDF's pages, a blank line between pages (no OCR: a scanned PDF has none)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as error:
        raise InvalidInput("The PDF could not be read.", code="invalid_pdf") from error
    return "\n\n".join(pages)
