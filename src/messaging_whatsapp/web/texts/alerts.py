"""Portuguese (Brazil) for the alerts pages and the alert banner."""

PORTUGUESE: dict[str, str] = {
    # The banner
    "1 open alert": "1 alerta aberto",
    "{count} open alerts": "{count} alertas abertos",
    "See alerts": "Ver alertas",
    # The rules' names
    "Send error rate": "Taxa de erro de envio",
    "Provider latency": "Latência do provedor",
    "Failures in a row": "Falhas seguidas",
    "Number disconnected": "Número desconectado",
    "Critical health": "Saúde crítica",
    "No webhooks": "Sem webhooks",
    # What broke a rule
    "{value} % of provider calls failed": "{value} % das chamadas ao provedor falharam",
    "{value} s per provider call on average": "{value} s por chamada ao provedor, em média",
    "{value} failures in a row": "{value} falhas seguidas",
    "disconnected for {time}": "desconectado por {time}",
    "health score {value}": "pontuação de saúde {value}",
    "no webhook for {time}": "sem webhook por {time}",
    # The rules' settings
    "over {threshold} % of at least {count} calls in {time}": (
        "acima de {threshold} % de pelo menos {count} chamadas em {time}"
    ),
    "average over {threshold} s, at least {count} calls in {time}": (
        "média acima de {threshold} s, pelo menos {count} chamadas em {time}"
    ),
    "{threshold} failures in a row on a number": "{threshold} falhas seguidas em um número",
    "a number disconnected for {time}": "um número desconectado por {time}",
    "a number's health score below {threshold}": "pontuação de saúde de um número abaixo de {threshold}",
    "a connected number that sent, without webhooks for {time}": (
        "um número conectado que enviou, sem webhooks por {time}"
    ),
    # The page
    "Alerts": "Alertas",
    "Open alerts": "Alertas abertos",
    "Alert": "Alerta",
    "What happened": "O que aconteceu",
    "Raised at": "Disparado em",
    "Resolved at": "Resolvido em",
    "Severity": "Gravidade",
    "Critical": "Crítica",
    "Warning": "Atenção",
    "No open alerts: every number and send is within its rules.": (
        "Nenhum alerta aberto: todos os números e envios estão dentro das regras."
    ),
    "Resolved recently": "Resolvidos recentemente",
    "No alert was resolved yet.": "Nenhum alerta foi resolvido ainda.",
    "Rules": "Regras",
    "The scheduler checks these rules every 30 seconds. An alert is raised once when a rule is broken "
    "and resolved once when it no longer is.": (
        "O agendador verifica estas regras a cada 30 segundos. Um alerta é disparado uma vez quando uma "
        "regra é violada e resolvido uma vez quando deixa de ser."
    ),
    "Raised when": "Dispara quando",
    "Enabled": "Ativa",
    "Threshold": "Limite",
    "Yes": "Sim",
    "No": "Não",
    "Rule saved": "Regra salva",
}
