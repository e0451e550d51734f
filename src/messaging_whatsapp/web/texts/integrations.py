"""Portuguese (Brazil) for the integrations pages."""

PORTUGUESE: dict[str, str] = {
    # Tabs and the page's lead
    "Events out (webhooks)": "Eventos enviados (webhooks)",
    "Events in": "Eventos recebidos",
    "Other systems hear what happens here: each event is POSTed to the URLs subscribed to its type, "
    "signed by the Standard Webhooks convention, and retried for 24 hours until they answer 2xx.": (
        "Outros sistemas ficam sabendo do que acontece aqui: cada evento é enviado por POST às URLs "
        "inscritas no seu tipo, assinado pela convenção Standard Webhooks, e reenviado por 24 horas "
        "até que respondam 2xx."
    ),
    # The secret, shown once
    "The subscription's signing secret": "A chave secreta de assinatura da inscrição",
    "Copy it now: it is shown this once. Receivers verify every request's webhook-signature with it.": (
        "Copie agora: ela aparece só desta vez. Quem recebe confere com ela o webhook-signature de "
        "cada requisição."
    ),
    "Copy failed: select the secret and copy it.": "Não foi possível copiar: selecione a chave e copie.",
    # The form
    "New subscription": "Nova inscrição",
    "URL": "URL",
    "Description": "Descrição",
    "What this system does with the events": "O que esse sistema faz com os eventos",
    "Events": "Eventos",
    "All events, today's and future ones": "Todos os eventos, os de hoje e os que vierem",
    "All events": "Todos os eventos",
    "Create subscription": "Criar inscrição",
    "Choose at least one event type.": "Escolha pelo menos um tipo de evento.",
    # The event groups
    "Conversations and tickets": "Conversas e atendimentos",
    "Consent and privacy": "Consentimento e privacidade",
    "Campaigns and alerts": "Campanhas e alertas",
    # The subscriptions
    "Subscriptions": "Inscrições",
    "Send test event": "Enviar evento de teste",
    "No subscription yet: create one above and the events you choose start going to its URL.": (
        "Nenhuma inscrição ainda: crie uma acima e os eventos escolhidos passam a ir para a URL dela."
    ),
    "Subscription created": "Inscrição criada",
    "Subscription deleted": "Inscrição excluída",
    "Delete this subscription? Its deliveries are deleted too and nothing more is sent to it.": (
        "Excluir esta inscrição? As entregas dela também são excluídas e nada mais é enviado a ela."
    ),
    "Test event queued: it shows in the deliveries in a moment.": (
        "Evento de teste na fila: ele aparece nas entregas em instantes."
    ),
    # The deliveries
    "Recent deliveries": "Entregas recentes",
    "Refresh": "Atualizar",
    "Event": "Evento",
    "Last answer": "Última resposta",
    "Retrying": "Tentando de novo",
    "next at {time}": "próxima em {time}",
    "Answer": "Resposta",
    "Duration": "Duração",
    "No delivery yet: events of the chosen types show here as they happen (or send a test event).": (
        "Nenhuma entrega ainda: os eventos dos tipos escolhidos aparecem aqui quando acontecem (ou "
        "envie um evento de teste)."
    ),
}
