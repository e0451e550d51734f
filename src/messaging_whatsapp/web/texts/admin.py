"""Portuguese (Brazil) for the admin page (users, API keys, settings)."""

PORTUGUESE: dict[str, str] = {
    "Read the message templates": "Ler os modelos de mensagem",
    "Create and sync message templates": "Criar e sincronizar modelos de mensagem",
    "Read intents, auto-replies and business hours": "Ler intenções, respostas automáticas e horários",
    "Change intents, auto-replies and business hours": "Alterar intenções, respostas automáticas e horários",
    "Publish events from other systems": "Publicar eventos de outros sistemas",
    "Read event mappings and webhooks": "Ler mapeamentos de eventos e webhooks",
    "Change event mappings and webhooks": "Alterar mapeamentos de eventos e webhooks",
    "Search the knowledge base": "Pesquisar a base de conhecimento",
    "Change the knowledge base": "Alterar a base de conhecimento",
    # Tabs and headings
    "Users": "Usuários",
    "API keys": "Chaves de API",
    "Settings": "Configurações",
    "Team members": "Equipe",
    "Who can log in to this business, and what each one may do.": (
        "Quem pode entrar nesta empresa e o que cada um pode fazer."
    ),
    "For systems that use the API: each key has a role and, if you want, only some scopes.": (
        "Para sistemas que usam a API: cada chave tem um perfil e, se quiser, só alguns escopos."
    ),
    "How the engine treats this business's conversations and data.": (
        "Como o sistema trata as conversas e os dados desta empresa."
    ),
    # Users
    "New user": "Novo usuário",
    "Create user": "Criar usuário",
    "User": "Usuário",
    "Role": "Perfil",
    "Status": "Status",
    "Created": "Criado em",
    "Active": "Ativo",
    "Deactivated": "Desativado",
    "Deactivate": "Desativar",
    "Reactivate": "Reativar",
    "Change role": "Mudar perfil",
    "Cancel": "Cancelar",
    "At least 8 characters; a phrase of unrelated words is best.": (
        "Pelo menos 8 caracteres; o melhor é uma frase de palavras sem relação entre si."
    ),
    "works the inbox: their conversations and the unassigned queue.": (
        "atende: suas conversas e a fila sem responsável."
    ),
    "also sees every conversation, runs campaigns and reads the numbers.": (
        "também vê todas as conversas, faz campanhas e acompanha os números."
    ),
    "also manages users, API keys, numbers and settings.": (
        "também gerencia usuários, chaves de API, números e configurações."
    ),
    "User created.": "Usuário criado.",
    "Role changed.": "Perfil alterado.",
    "User deactivated.": "Usuário desativado.",
    "User reactivated.": "Usuário reativado.",
    "Change the role of {email} to {role}? They will have to log in again.": (
        "Mudar o perfil de {email} para {role}? A pessoa terá de entrar novamente."
    ),
    "Deactivate {email}? They are logged out at once and can no longer log in.": (
        "Desativar {email}? A sessão termina na hora e a pessoa não consegue mais entrar."
    ),
    "Reactivate {email}? They can log in again.": "Reativar {email}? A pessoa poderá entrar de novo.",
    "Change your own role to {role}? You will have to log in again.": (
        "Mudar o seu próprio perfil para {role}? Você terá de entrar novamente."
    ),
    "Deactivate your own account? You are logged out at once and can no longer log in.": (
        "Desativar a sua própria conta? Sua sessão termina na hora e você não consegue mais entrar."
    ),
    # Refusals of the API, in the page's words
    "A user with this email already exists.": "Já existe um usuário com este e-mail.",
    "This is the tenant's last active admin: make another user admin first.": (
        "Este é o último administrador ativo: torne outro usuário administrador antes."
    ),
    "This password is too easy to guess: use a longer phrase of unrelated words.": (
        "Esta senha é fácil de adivinhar: use uma frase mais longa de palavras sem relação entre si."
    ),
    "password must have at least 8 characters": "A senha deve ter pelo menos 8 caracteres.",
    "password must have at most 256 characters": "A senha deve ter no máximo 256 caracteres.",
    "password must not be only spaces": "A senha não pode ser só espaços.",
    "password must not contain your email": "A senha não pode conter o e-mail.",
    "password must not be built from your name, email or business's name and numbers": (
        "A senha não pode ser feita do nome, do e-mail ou do nome da empresa com números."
    ),
    "email is not valid": "E-mail inválido.",
    "Unknown time zone: pick one from the list, such as America/Sao_Paulo.": (
        "Fuso horário desconhecido: escolha um da lista, como America/Sao_Paulo."
    ),
    "Unknown country: pick one from the list.": "País desconhecido: escolha um da lista.",
    "Keep data 1 to 3650 days, or leave it empty to keep it forever.": (
        "Guarde de 1 a 3650 dias, ou deixe vazio para guardar para sempre."
    ),
    "Use 0 (never close) to 527040 minutes.": "Use de 0 (nunca encerrar) a 527040 minutos.",
    "Give the business a name.": "Dê um nome à empresa.",
    "Give the key a name.": "Dê um nome à chave.",
    # API keys
    "New API key": "Nova chave de API",
    "Create key": "Criar chave",
    "Name": "Nome",
    "Key": "Chave",
    "key": "chave",
    "Scopes": "Escopos",
    "Access": "Acesso",
    "Everything its role allows": "Tudo o que o perfil permite",
    "Only these scopes:": "Só estes escopos:",
    "e.g. CRM integration": "ex.: integração com o CRM",
    "Revoke": "Revogar",
    "Revoked": "Revogada",
    "In use": "Em uso",
    "API key revoked.": "Chave revogada.",
    "Revoke the API key {name}? Every system using it is refused at once.": (
        "Revogar a chave {name}? Todo sistema que a usa passa a ser recusado na hora."
    ),
    "No API keys yet. Create one for each system that uses the API.": (
        "Nenhuma chave ainda. Crie uma para cada sistema que usa a API."
    ),
    "Copy the key now": "Copie a chave agora",
    "This is the only time it is shown. Store it somewhere safe; if it is lost, create a new key "
    "and revoke this one.": (
        "Esta é a única vez que ela aparece. Guarde-a em local seguro; se a perder, crie uma chave "
        "nova e revogue esta."
    ),
    "Copy": "Copiar",
    "Copied.": "Copiada.",
    "Copy failed: select the key and copy it.": "Não foi possível copiar: selecione a chave e copie.",
    "Send it as": "Envie como",
    "I have copied it": "Já copiei",
    "Send messages": "Enviar mensagens",
    "Read contacts, conversations and tickets": "Ler contatos, conversas e atendimentos",
    "Mark read, close and assign tickets": "Marcar como lida, encerrar e atribuir atendimentos",
    "Read campaigns and their results": "Ler campanhas e seus resultados",
    "Create and run campaigns": "Criar e executar campanhas",
    "Read the numbers and their health": "Ler os números e sua saúde",
    "Read the delivery and volume figures": "Ler as análises de entrega e volume",
    "Pause and resume numbers": "Pausar e retomar números",
    "Manage users, API keys and settings": "Gerenciar usuários, chaves de API e configurações",
    # Settings
    "Business": "Empresa",
    "Time zone": "Fuso horário",
    "Dates in the pages and the campaigns' send windows follow it.": (
        "As datas nas páginas e as janelas de envio das campanhas seguem este fuso."
    ),
    "Default country": "País padrão",
    "Of phones typed without + and a country code.": "Dos telefones digitados sem + e código do país.",
    "Tickets": "Atendimentos",
    "Close a ticket after this many minutes without messages": (
        "Encerrar um atendimento após estes minutos sem mensagens"
    ),
    "1440 is a day; 0 never closes them.": "1440 é um dia; 0 nunca encerra.",
    "Data retention (LGPD)": "Retenção de dados (LGPD)",
    "The engine deletes older data by itself. Leave a field empty to keep that data forever.": (
        "O sistema apaga sozinho os dados mais antigos. Deixe um campo vazio para guardar aqueles "
        "dados para sempre."
    ),
    "Messages": "Mensagens",
    "Closed tickets": "Atendimentos encerrados",
    "Raw webhook requests": "Requisições brutas de webhook",
    "days": "dias",
    "Forever": "Para sempre",
    "Undo changes": "Desfazer alterações",
    "Save settings": "Salvar configurações",
    "Settings saved.": "Configurações salvas.",
}
