"""Portuguese (Brazil) for the automation pages, and the inbox's "wants a person" flag."""

PORTUGUESE: dict[str, str] = {
    # The rules' list
    "Auto-reply rules": "Respostas automáticas",
    "Rules answer customers by themselves, in order. None answers the business's own messages, a group, a person who opted out, or a ticket whose customer asked for a person; each fires once per ticket unless it says otherwise.": (  # noqa: E501
        "As regras respondem aos clientes sozinhas, na ordem. Nenhuma responde às mensagens da própria "
        "empresa, a um grupo, a quem pediu para sair ou a um atendimento cujo cliente pediu uma pessoa; "
        "cada uma dispara uma vez por atendimento, salvo indicação em contrário."
    ),
    "Rule": "Regra",
    "When": "Quando",
    "Then": "Então",
    "once per ticket": "uma vez por atendimento",
    "every time": "toda vez",
    "No rule yet: customers get no automatic answer.": (
        "Nenhuma regra ainda: os clientes não recebem resposta automática."
    ),
    "New rule": "Nova regra",
    "Edit rule": "Editar regra",
    "Rule deleted": "Regra excluída",
    'Delete the rule "{name}"?': 'Excluir a regra "{name}"?',
    # How a rule reads
    "A customer's message opens a new ticket": "Uma mensagem do cliente abre um novo atendimento",
    "The message has one of the words: {words}": "A mensagem tem uma das palavras: {words}",
    "The customer asks for: {intent}": "O cliente pede: {intent}",
    "A message arrives outside business hours": "Uma mensagem chega fora do horário de atendimento",
    "Nobody of the team answers within {minutes} min": "Ninguém da equipe responde em {minutes} min",
    "Send the text: {body}": "Enviar o texto: {body}",
    "Send the away message": "Enviar a mensagem de ausência",
    "Send buttons: {titles}": "Enviar botões: {titles}",
    "Send the template {name} ({language})": "Enviar o modelo {name} ({language})",
    "Assign the ticket to {user}": "Atribuir o atendimento a {user}",
    "Close the ticket": "Encerrar o atendimento",
    "Start a follow-up of {count} steps": "Iniciar um follow-up de {count} etapas",
    "Steps, one per line: minutes to wait | text (or template:name)": (
        "Etapas, uma por linha: minutos de espera | texto (ou template:nome)"
    ),
    "60 | Did you see our quote?": "60 | Conseguiu ver nossa cotação?",
    "Close the ticket when the last step gets no answer": (
        "Encerrar o atendimento se a última etapa ficar sem resposta"
    ),
    "Send only within business hours": "Enviar só no horário de atendimento",
    # The rule form
    "Order": "Ordem",
    "Once per ticket": "Uma vez por atendimento",
    "New ticket": "Novo atendimento",
    "Keyword": "Palavra-chave",
    "Intent": "Intenção",
    "Outside business hours": "Fora do horário de atendimento",
    "No agent answer": "Sem resposta da equipe",
    "Words (comma-separated)": "Palavras (separadas por vírgula)",
    "price, quote": "preço, orçamento",
    "Minutes without an answer": "Minutos sem resposta",
    "Send a text": "Enviar um texto",
    "Send buttons": "Enviar botões",
    "Send a template": "Enviar um modelo",
    "Outside business hours, leave it empty to send the away message.": (
        "Fora do horário, deixe vazio para enviar a mensagem de ausência."
    ),
    "Buttons (up to 3; the id is what a tap sends back, e.g. an intent's name)": (
        "Botões (até 3; o id é o que um toque devolve, por exemplo o nome de uma intenção)"
    ),
    "id": "id",
    "Title (20 characters)": "Título (20 caracteres)",
    "Assign to": "Atribuir a",
    "None checked: every number.": "Nenhum marcado: todos os números.",
    # Intents
    "Intents": "Intenções",
    "default": "padrão",
    "What a customer asks for, found by whole words (case and accents do not matter) or by the button they tap. Each one found is published to your other systems as whatsapp_action_requested; talk_to_human also puts the ticket in the unassigned queue, flagged, and stops the automatic replies on it.": (  # noqa: E501
        "O que o cliente pede, reconhecido por palavras inteiras (maiúsculas e acentos não importam) ou "
        "pelo botão que ele toca. Cada intenção reconhecida é publicada para os seus outros sistemas "
        "como whatsapp_action_requested; talk_to_human também coloca o atendimento na fila sem "
        "responsável, sinalizado, e para as respostas automáticas nele."
    ),
    "Keywords": "Palavras-chave",
    "Add a word and press Enter": "Digite uma palavra e tecle Enter",
    "Button payloads (comma-separated)": "Payloads de botões (separados por vírgula)",
    "Add intent": "Adicionar intenção",
    "Save intents": "Salvar intenções",
    "Intents saved": "Intenções salvas",
    # Business hours
    "Business hours": "Horário de atendimento",
    "Open now": "Aberto agora",
    "Closed now": "Fechado agora",
    "In the tenant's time zone: {zone}. With no hours set, the business never counts as closed.": (
        "No fuso horário da empresa: {zone}. Sem horário definido, a empresa nunca conta como fechada."
    ),
    "First shift": "Primeiro turno",
    "Second shift": "Segundo turno",
    "Monday": "Segunda-feira",
    "Tuesday": "Terça-feira",
    "Wednesday": "Quarta-feira",
    "Thursday": "Quinta-feira",
    "Friday": "Sexta-feira",
    "Saturday": "Sábado",
    "Sunday": "Domingo",
    "start": "início",
    "end": "fim",
    "Away message": "Mensagem de ausência",
    "Sent by an outside-hours rule that names no text of its own.": (
        "Enviada por uma regra de fora do horário que não tenha texto próprio."
    ),
    "Save business hours": "Salvar horário",
    "No business hours": "Sem horário de atendimento",
    "Business hours saved": "Horário salvo",
    # The inbox
    "Wants a person": "Quer um atendente",
    "The customer asked to talk to a person: automatic replies stopped on this ticket.": (
        "O cliente pediu para falar com uma pessoa: as respostas automáticas pararam neste atendimento."
    ),
    "Automatic": "Automático",
}
