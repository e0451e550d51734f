"""Portuguese (Brazil) for the AI assistant's pieces: its messages and suggested replies in the
inbox, its mode on the numbers page, and the Assistant tab of the knowledge base."""

PORTUGUESE: dict[str, str] = {
    # The inbox
    "Answered by the assistant from the knowledge base": (
        "Respondida pelo assistente com a base de conhecimento"
    ),
    "Sources": "Fontes",
    "Suggested reply": "Resposta sugerida",
    "from the knowledge base: check it before sending": "da base de conhecimento: confira antes de enviar",
    "Discard": "Descartar",
    "Use reply": "Usar resposta",
    "The assistant is writing a suggestion...": "O assistente está escrevendo uma sugestão...",
    "The assistant found no answer in the knowledge base: this one is for you to answer.": (
        "O assistente não encontrou a resposta na base de conhecimento: esta é com você."
    ),
    "The assistant could not reach its AI server: this one is for you to answer.": (
        "O assistente não conseguiu falar com o servidor de IA: esta é com você."
    ),
    "The assistant has no AI server set up (Knowledge base > Assistant): this one is for you to answer.": (
        "O assistente não tem servidor de IA configurado (Base de conhecimento > Assistente): esta é "
        "com você."
    ),
    # The numbers page
    "AI assistant": "Assistente de IA",
    "Turned off": "Desligada",
    "Suggestions to the agent": "Sugestões ao agente",
    "Automatic replies": "Automática",
    "Suggests a reply from the knowledge base in the agent's composer; nothing is sent by itself.": (
        "Sugere uma resposta da base de conhecimento no campo de mensagem do agente; nada é enviado sozinho."
    ),
    "Answers customers from the knowledge base by itself, until a person takes over the ticket.": (
        "Responde os clientes sozinha com a base de conhecimento, até uma pessoa assumir o atendimento."
    ),
    "The assistant does not answer this number's customers.": (
        "O assistente não responde aos clientes deste número."
    ),
    "AI assistant mode saved.": "Modo do assistente de IA salvo.",
    # The knowledge base's Assistant tab
    "Assistant": "Assistente",
    "On numbers in suggestions or automatic mode (Numbers page), the assistant answers customers "
    "only from this knowledge base, cites where each answer comes from, and calls a person when the "
    "base has no answer.": (
        "Nos números com sugestões ou modo automático (página Números), o assistente responde aos "
        "clientes apenas com esta base de conhecimento, cita de onde vem cada resposta e chama uma "
        "pessoa quando a base não tem a resposta."
    ),
    "Where answers come from": "De onde vêm as respostas",
    "your own AI server": "o seu próprio servidor de IA",
    "model": "modelo",
    "the engine's built-in demo model: it repeats the best passage of the knowledge base, cited (set AI_BASE_URL for a real model)": (  # noqa: E501
        "o modelo de demonstração do motor: repete o trecho mais próximo da base de conhecimento, "
        "com a fonte (configure AI_BASE_URL para um modelo de verdade)"
    ),
    "the engine's AI server (set by whoever runs the engine)": (
        "o servidor de IA do motor (configurado por quem opera o motor)"
    ),
    "nowhere yet: no AI server is set up, so every question goes to a person. Give your own server below.": (
        "de nenhum lugar ainda: não há servidor de IA configurado, então toda pergunta vai para uma "
        "pessoa. Informe o seu servidor abaixo."
    ),
    "Instructions": "Instruções",
    "e.g. Speak informally, call the customer by name, offer home delivery.": (
        "ex.: Fale de forma descontraída, chame o cliente pelo nome, ofereça entrega em casa."
    ),
    "How the assistant speaks and what it offers.": "Como o assistente fala e o que ele oferece.",
    "Guardrails": "Limites",
    "e.g. Never promise discounts; never talk about other stores.": (
        "ex.: Nunca prometa descontos; nunca fale de outras lojas."
    ),
    "What it must never do. It never invents prices or facts that are not in the knowledge base.": (
        "O que ele nunca deve fazer. Ele nunca inventa preços ou fatos que não estejam na base de "
        "conhecimento."
    ),
    "Handoff message": "Mensagem de transferência",
    "What the customer reads when the assistant calls a person. Empty: the default shown.": (
        "O que o cliente lê quando o assistente chama uma pessoa. Vazio: a mensagem padrão mostrada."
    ),
    "Own AI server (OpenAI-compatible)": "Servidor de IA próprio (compatível com OpenAI)",
    "Server URL": "URL do servidor",
    "Empty: the engine's server, when it has one.": "Vazio: o servidor do motor, quando houver.",
    "A key is set: type a new one to replace it": "Há uma chave: digite outra para substituí-la",
    "No key set": "Nenhuma chave",
    "A key is set (it is never shown again).": "Há uma chave configurada (ela nunca é mostrada de novo).",
    "No key set.": "Nenhuma chave configurada.",
    "Remove the key": "Remover a chave",
    "Model": "Modelo",
    "Empty: the engine's model ({model}).": "Vazio: o modelo do motor ({model}).",
    "Only administrators change the assistant.": "Só administradores alteram o assistente.",
    "Try the assistant": "Testar o assistente",
    "Ask as a customer would: you see what it would answer and where the answer comes from. Nothing "
    "is sent or stored.": (
        "Pergunte como um cliente: você vê o que ele responderia e de onde vem a resposta. Nada é "
        "enviado nem guardado."
    ),
    "Question": "Pergunta",
    "Test": "Testar",
    "Assistant settings saved.": "Configurações do assistente salvas.",
    "Answer": "Resposta",
    "Hands over to a person": "Passa para uma pessoa",
    "Would not answer": "Não responderia",
    "Why": "Motivo",
    "Nothing in the knowledge base answers this.": "Nada na base de conhecimento responde a isso.",
    "The model found no answer in the sources it was given.": (
        "O modelo não encontrou a resposta nos trechos que recebeu."
    ),
    "The AI server could not be reached or refused the question.": (
        "O servidor de IA não respondeu ou recusou a pergunta."
    ),
    "No AI server is set up.": "Não há servidor de IA configurado.",
    "A greeting or a thanks alone asks nothing: the assistant stays quiet.": (
        "Um cumprimento ou agradecimento sozinho não pergunta nada: o assistente fica em silêncio."
    ),
    "Asking the assistant...": "Perguntando ao assistente...",
}
