"""What the knowledge base's tests share: a counting embedder around the local model, a small
Portuguese FAQ, and a tiny PDF built by hand."""

from __future__ import annotations

from messaging_whatsapp.knowledge.embeddings import Vectors, local_embedder

FAQ = """# Loja Boa Compra

## Horário de funcionamento
A loja abre de segunda a sexta, das 9h às 18h. Aos sábados abrimos das 9h às 13h.
Não abrimos aos domingos nem feriados.

## Entrega
Entregamos em toda a cidade em até 2 dias úteis.
O frete é grátis para compras acima de R$ 200; abaixo disso custa R$ 15.

## Trocas e devoluções
Você pode devolver um produto em até 7 dias após o recebimento, com a nota fiscal.
A troca por defeito vale por 30 dias.

## Pagamento
Aceitamos Pix, cartão de crédito em até 10 vezes sem juros e boleto bancário.
"""


class CountingEmbedder:
    """The local model, counting the texts it is asked to embed (incremental reindexing)."""

    def __init__(self) -> None:
        self.model = local_embedder()
        self.name = self.model.name
        self.texts: list[str] = []

    async def embed(self, texts: list[str]) -> Vectors:
        """The local model's vectors, the texts remembered."""
        self.texts.extend(texts)
        return await self.model.embed(texts)


def tiny_pdf(text: str) -> bytes:
    """A valid one-page PDF showing `text` (ASCII) in Helvetica, with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
