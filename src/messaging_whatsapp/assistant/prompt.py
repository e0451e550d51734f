"""What the model is told (the tenant's rules, the retrieved chunks, the conversation so far) and
how its answer is read (the citations, the handoff marker)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from messaging_whatsapp.assistant.masking import Masker

HANDOFF_MARKER = "[[handoff]]"
# The conversation's newest messages the model sees, each cut to this many characters.
HISTORY_MESSAGES = 12
HISTORY_CHARS = 1000
_CITATION = re.compile(r"\s*\[(\d{1,2})\]")
SOURCES_HEADING = "Fontes:"

_RULES = f"""Você é o assistente virtual de atendimento de {{business}} no WhatsApp.
Responda em português do Brasil, em poucas frases, com cordialidade.
Use SOMENTE as informações das fontes abaixo. Nunca invente preços, prazos, políticas, endereços \
ou qualquer dado que não esteja nelas.
Depois de cada informação, cite a fonte usada com o número dela entre colchetes, por exemplo [1].
Se as fontes não responderem à pergunta do cliente, responda apenas: {HANDOFF_MARKER}
Dados pessoais aparecem mascarados, como [email 1] ou [telefone 1]; mantenha-os assim."""


@dataclass(frozen=True)
class PromptChunk:
    """A retrieved chunk as the model sees it."""

    id: str
    source: str
    text: str


@dataclass(frozen=True)
class HistoryLine:
    """A message of the conversation: the customer's, or ours (an agent's, the assistant's...)."""

    from_customer: bool
    text: str


@dataclass(frozen=True)
class ModelAnswer:
    """The model's answer read: the text for the customer (citations taken out), the chunks it
    cited (1-based positions), and whether it asked for a person."""

    text: str
    cited: list[int]
    handoff: bool


def chat_messages(
    business: str,
    instructions: str,
    guardrails: str,
    chunks: list[PromptChunk],
    history: list[HistoryLine],
    masker: Masker,
) -> list[dict[str, str]]:
    """The chat completion's messages: a system message with the rules, the tenant's instructions
    and guardrails and the numbered sources, then the conversation (personal data masked)."""
    parts = [_RULES.format(business=business)]
    if instructions.strip():
        parts.append(f"Instruções da empresa:\n{instructions.strip()}")
    if guardrails.strip():
        parts.append(f"Limites que você nunca pode desrespeitar:\n{guardrails.strip()}")
    sources = "\n\n".join(f"[{n}] ({chunk.source})\n{chunk.text}" for n, chunk in enumerate(chunks, start=1))
    parts.append(f"{SOURCES_HEADING}\n{sources}" if chunks else f"{SOURCES_HEADING}\n(nenhuma)")
    messages = [{"role": "system", "content": masker.mask("\n\n".join(parts))}]
    for line in history[-HISTORY_MESSAGES:]:
        role = "user" if line.from_customer else "assistant"
        messages.append({"role": role, "content": masker.mask(line.text[:HISTORY_CHARS])})
    return messages


def read_answer(raw: str, chunk_count: int) -> ModelAnswer:
    """The model's answer: citations of existing chunks kept (in order, once), taken out of the
    text; the handoff marker, an empty answer or one citing nothing mean "call a person"."""
    if HANDOFF_MARKER in raw:
        return ModelAnswer("", [], handoff=True)
    cited: list[int] = []
    for match in _CITATION.finditer(raw):
        position = int(match.group(1))
        if 1 <= position <= chunk_count and position not in cited:
            cited.append(position)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", _CITATION.sub("", raw)).strip()
    return ModelAnswer(text, cited, handoff=not text or not cited)
