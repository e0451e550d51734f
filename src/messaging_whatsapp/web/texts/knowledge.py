"""Portuguese (Brazil) for the knowledge base page."""

PORTUGUESE: dict[str, str] = {
    "Knowledge base": "Base de conhecimento",
    "Search": "Pesquisar",
    "Ask as a customer would, e.g. what is the delivery time?": (
        "Pergunte como um cliente, por exemplo: qual o prazo de entrega?"
    ),
    "Add a document": "Adicionar documento",
    "Text, Markdown or PDF up to 2 MB, or a CSV of questions and answers (columns pergunta and "
    "resposta). Headings become each chunk's source.": (
        "Texto, Markdown ou PDF de até 2 MB, ou um CSV de perguntas e respostas (colunas pergunta e "
        "resposta). Os títulos viram a origem de cada trecho."
    ),
    "Title": "Título",
    "File": "Arquivo",
    "Or paste the text": "Ou cole o texto",
    "Add": "Adicionar",
    "Documents": "Documentos",
    "Chunks": "Trechos",
    "Updated at": "Atualizado em",
    "No documents yet: add the store's FAQ, price list or policies.": (
        "Nenhum documento ainda: adicione as perguntas frequentes, a tabela de preços ou as "
        "políticas da loja."
    ),
    "text": "texto",
    "markdown": "markdown",
    "pdf": "PDF",
    "qa": "perguntas e respostas",
    "Document added.": "Documento adicionado.",
    "Document deleted.": "Documento excluído.",
    "Delete this document and its chunks?": "Excluir este documento e seus trechos?",
    "Choose a file or paste a text.": "Escolha um arquivo ou cole um texto.",
    "No chunk answers this yet.": "Nenhum trecho responde a isso ainda.",
    "score": "pontuação",
    "similarity": "similaridade",
}
