"""Portuguese (Brazil) for the ops pages."""

PORTUGUESE: dict[str, str] = {
    "Every tenant · refreshed every 5 seconds": "Todas as empresas · atualizado a cada 5 segundos",
    "Pending entries": "Entradas pendentes",
    "Stale streams": "Streams atrasados",
    "Outbox backlog": "Fila do outbox",
    "oldest": "mais antiga",
    "Streams": "Streams",
    "Stream": "Stream",
    "Length": "Tamanho",
    "Pending": "Pendentes",
    "Oldest pending": "Pendente mais antiga",
    "Consumer groups": "Grupos de consumo",
    "Consumers": "Consumidores",
    "Unread": "Não lidas",
    "Stale": "Atrasado",
    "Webhooks waiting for the workers": "Webhooks aguardando os workers",
    "Messages waiting for the senders": "Mensagens aguardando o envio",
    "Events for other systems": "Eventos para outros sistemas",
    "Events from other systems": "Eventos de outros sistemas",
    "Entries that ran out of attempts": "Entradas que esgotaram as tentativas",
    "Highlighted: an entry has waited longer than {age}; /readyz fails while the inbound or outbound "
    "stream is so.": "Em destaque: uma entrada espera há mais de {age}; o /readyz falha enquanto o stream "
    "de entrada ou de saída estiver assim.",
    "Dead-letter queue": "Fila de mensagens mortas (DLQ)",
    "Replay all": "Reprocessar todas",
    "Replay": "Reprocessar",
    "When": "Quando",
    "Reason": "Motivo",
    "Provider": "Provedor",
    "Tenant": "Empresa",
    "From": "Origem",
    "Attempts": "Tentativas",
    "Showing the oldest {shown} of {total}; GET /api/v1/ops/dlq pages through them all.": (
        "Mostrando as {shown} mais antigas de {total}; GET /api/v1/ops/dlq percorre todas."
    ),
    "Nothing in the DLQ: every entry was applied.": "Nada na DLQ: todas as entradas foram aplicadas.",
    "Workers": "Workers",
    "{alive} of {total} alive": "{alive} de {total} ativos",
    "Role": "Perfil",
    "Runs": "Executa",
    "Host": "Host",
    "Started": "Iniciado",
    "Last heartbeat": "Último sinal",
    "Status": "Status",
    "{age} ago": "há {age}",
    "Alive": "Ativo",
    "Stopped": "Parado",
    "Not responding": "Sem resposta",
    "No process has written a heartbeat in the last hour.": "Nenhum processo deu sinal na última hora.",
    "{n} s": "{n} s",
    "{n} min": "{n} min",
    "{n} h": "{n} h",
    "{n} d": "{n} d",
    "Replay every entry of the DLQ? Each goes back to the stream it came from.": (
        "Reprocessar todas as entradas da DLQ? Cada uma volta ao stream de onde veio."
    ),
    "One entry replayed.": "Uma entrada reprocessada.",
    "{count} entries replayed.": "{count} entradas reprocessadas.",
    "Nothing was replayed: the entry already left the DLQ.": (
        "Nada foi reprocessado: a entrada já saiu da DLQ."
    ),
}
