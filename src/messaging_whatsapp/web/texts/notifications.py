"""Portuguese (Brazil) for the events-in page (/integrations/events)."""

PORTUGUESE: dict[str, str] = {
    # The integrations area's tabs
    "Integrations": "Integrações",
    "Events in": "Eventos recebidos",
    "Refresh": "Atualizar",
    # The event types (seed 001)
    "Quote created": "Cotação criada",
    "Order status changed": "Status do pedido alterado",
    "Delivery started": "Entrega iniciada",
    "Delivery completed": "Entrega concluída",
    # The mappings
    "Event mappings": "Mapeamento de eventos",
    "Your other systems publish these events; each mapped one sends the customer an approved template. "
    "Parameters are payload keys, in the template's order.": (
        "Seus outros sistemas publicam estes eventos; cada um mapeado envia ao cliente um modelo "
        "aprovado. Os parâmetros são chaves do payload, na ordem do modelo."
    ),
    "Event": "Evento",
    "Template": "Modelo",
    "Language": "Idioma",
    "Parameters (payload keys)": "Parâmetros (chaves do payload)",
    "Number": "Número",
    "Not mapped": "Sem mapeamento",
    "Any number that can send templates": "Qualquer número que envie modelos",
    "Save": "Salvar",
    "Remove": "Remover",
    "Mapping saved": "Mapeamento salvo",
    "Mapping removed": "Mapeamento removido",
    # The events in
    "Latest events in": "Últimos eventos recebidos",
    "Received at": "Recebido em",
    "Event id": "Id do evento",
    "Outcome": "Resultado",
    "Why": "Motivo",
    "Message": "Mensagem",
    "Notified": "Notificado",
    "Skipped": "Ignorado",
    "Ignored": "Descartado",
    "Unusable": "Inutilizável",
    "Failed": "Falhou",
    "Processing": "Processando",
    "Not requested (notify_whatsapp false)": "Não solicitado (notify_whatsapp false)",
    "No mapping for this event": "Sem mapeamento para este evento",
    "The customer opted out": "O cliente pediu para não receber mensagens",
    "Unknown event type": "Tipo de evento desconhecido",
    "No customer_phone": "Sem customer_phone",
    "customer_phone is not a phone number": "customer_phone não é um número de telefone",
    "A value the template needs is missing": "Falta um valor que o modelo exige",
    "A value the template needs is not text": "Um valor que o modelo exige não é texto",
    "Unknown tenant": "Empresa desconhecida",
    "No event received yet. Publish one with POST /api/v1/events or on the events:materials stream.": (
        "Nenhum evento recebido ainda. Publique um com POST /api/v1/events ou no stream events:materials."
    ),
}
