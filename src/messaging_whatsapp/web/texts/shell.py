"""Portuguese (Brazil) for the app shell: navigation, the 403 page."""

PORTUGUESE: dict[str, str] = {
    "Main menu": "Menu principal",
    "Inbox": "Atendimento",
    "Campaigns": "Campanhas",
    "Numbers": "Números",
    "Analytics": "Análises",
    "Admin": "Admin",
    "Administration": "Administração",
    "Operations": "Operação",
    "Automation": "Automação",
    "Templates": "Modelos",
    "Integrations": "Integrações",
    "Knowledge": "Conhecimento",
    "Not allowed": "Sem permissão",
    "Your role does not allow this page. Ask an administrator if you need it.": (
        "Seu perfil não permite abrir esta página. Peça a um administrador se precisar dela."
    ),
    "Back to the inbox": "Voltar ao atendimento",
}
