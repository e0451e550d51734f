"""Portuguese (Brazil) for the templates pages."""

PORTUGUESE: dict[str, str] = {
    # The page
    "Sync from Meta": "Sincronizar com a Meta",
    "Syncing...": "Sincronizando...",
    "Simulator": "Simulador",
    "WhatsApp Business Account {waba}": "Conta do WhatsApp Business {waba}",
    "Last sync: {time}": "Última sincronização: {time}",
    "Not synced yet": "Ainda não sincronizado",
    "Templates created here are approved at once: the simulator has no review.": (
        "Modelos criados aqui são aprovados na hora: o simulador não tem revisão."
    ),
    "Category": "Categoria",
    "Body": "Corpo",
    "{count} parameters": "{count} parâmetros",
    "1 parameter": "1 parâmetro",
    "No templates yet: sync them from Meta.": "Nenhum modelo ainda: sincronize com a Meta.",
    "No templates yet: create one below.": "Nenhum modelo ainda: crie um abaixo.",
    "These Meta numbers have no WhatsApp Business Account id, so their templates cannot be synced: "
    "set it on the Numbers page.": (
        "Estes números da Meta não têm o id da Conta do WhatsApp Business, então seus modelos não "
        "podem ser sincronizados: informe-o na página Números."
    ),
    "Twilio numbers send templates by their Content SID, created in Twilio's Content API; they are "
    "not listed or checked here.": (
        "Números da Twilio enviam modelos pelo Content SID, criado na Content API da Twilio; eles não "
        "são listados nem verificados aqui."
    ),
    "No number that sends templates: bind a Meta or simulator number first.": (
        "Nenhum número que envie modelos: conecte antes um número da Meta ou do simulador."
    ),
    # Statuses and categories (Meta's)
    "Approved": "Aprovado",
    "In review": "Em análise",
    "Rejected": "Rejeitado",
    "Disabled": "Desativado",
    "Marketing": "Marketing",
    "Utility": "Utilidade",
    "Authentication": "Autenticação",
    # Creating one
    "New template for a simulator number": "Novo modelo para um número do simulador",
    "Lowercase letters, digits and underscores.": "Letras minúsculas, números e sublinhados.",
    "Number the parameters in order: {example}. Each send gives their values.": (
        "Numere os parâmetros em ordem: {example}. Cada envio informa os valores."
    ),
    "Create template": "Criar modelo",
    "Template created": "Modelo criado",
    # The sync's toast
    "Templates synced: {added} added, {updated} updated, {removed} removed": (
        "Modelos sincronizados: {added} novos, {updated} atualizados, {removed} removidos"
    ),
    "{number}: {error}": "{number}: {error}",
}
