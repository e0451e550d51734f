"""Portuguese (Brazil) for the numbers pages."""

PORTUGUESE: dict[str, str] = {
    # The list
    "Numbers": "Números",
    "Connected": "Conectado",
    "Connecting": "Conectando",
    "Disconnected": "Desconectado",
    "Active": "Ativo",
    "Paused": "Em pausa",
    "Inactive": "Inativo",
    "Unbound": "Desvinculado",
    "Excellent": "Excelente",
    "Good": "Boa",
    "Warning": "Atenção",
    "Critical": "Crítica",
    "Healthy": "Saudáveis",
    "Online": "Conectados",
    "Sent today": "Enviadas hoje",
    "No numbers yet": "Nenhum número ainda",
    "Bind a WhatsApp number to start sending and receiving.": (
        "Vincule um número de WhatsApp para começar a enviar e receber."
    ),
    "An administrator binds the WhatsApp numbers.": "Um administrador vincula os números de WhatsApp.",
    "Phone not linked yet": "Celular ainda não conectado",
    "Meta Cloud API": "Meta Cloud API",
    "Twilio": "Twilio",
    "Evolution API": "Evolution API",
    "WuzAPI": "WuzAPI",
    "Simulator": "Simulador",
    "Health": "Saúde",
    "{count} errors in a row": "{count} erros seguidos",
    "Not sending: below the healthy score or at today's limit": (
        "Sem envios: abaixo da pontuação saudável ou no limite de hoje"
    ),
    "{sent} of {cap} sent": "{sent} de {cap} enviadas",
    "sent": "enviadas",
    "delivered": "entregues",
    "read": "lidas",
    "failed": "falhas",
    "Warm-up day {day}: up to {cap} campaign messages today": (
        "Aquecimento, dia {day}: até {cap} mensagens de campanha hoje"
    ),
    "Warmed up (day {day}): campaigns may use the whole daily limit": (
        "Aquecimento concluído (dia {day}): campanhas podem usar todo o limite diário"
    ),
    "Last error": "Último erro",
    "Connect with QR code": "Conectar com QR code",
    "QR code": "QR code",
    "Pause": "Pausar",
    "Resume": "Retomar",
    "Paused.": "Pausado.",
    "Resumed.": "Retomado.",
    # Binding
    "Bind a number": "Vincular número",
    "Provider": "Provedor",
    "Close": "Fechar",
    "Cancel": "Cancelar",
    "Bind": "Vincular",
    "Done": "Pronto",
    "Number bound": "Número vinculado",
    "Number bound.": "Número vinculado.",
    "Required.": "Obrigatório.",
    "Check the fields marked in red.": "Confira os campos marcados em vermelho.",
    "The official API: the number's ids and a permanent token from Meta's Business Manager.": (
        "A API oficial: os IDs do número e um token permanente do Gerenciador de Negócios da Meta."
    ),
    "A WhatsApp sender on Twilio: your account SID and auth token.": (
        "Um remetente de WhatsApp na Twilio: o SID da conta e o token de autenticação."
    ),
    "A number on your Evolution API server. After binding, scan the QR code with the phone.": (
        "Um número no seu servidor Evolution API. Depois de vincular, leia o QR code com o celular."
    ),
    "A user on your WuzAPI server. After binding, scan the QR code with the phone.": (
        "Um usuário no seu servidor WuzAPI. Depois de vincular, leia o QR code com o celular."
    ),
    "A pretend number for trying the engine: it delivers and reads without WhatsApp.": (
        "Um número de teste para experimentar o motor: entrega e lê sem o WhatsApp."
    ),
    "Create the instance on the gateway (with the server's global key)": (
        "Criar a instância no gateway (com a chave global do servidor)"
    ),
    "Create the user on the gateway (with its admin token)": (
        "Criar o usuário no gateway (com o token de administrador dele)"
    ),
    "Admin token": "Token de administrador",
    "WUZAPI_ADMIN_TOKEN of the server; not stored.": "O WUZAPI_ADMIN_TOKEN do servidor; não é guardado.",
    "Phone number": "Número de telefone",
    "Name in the app": "Nome no app",
    "Phone number ID": "ID do número de telefone",
    "WhatsApp Business account ID": "ID da conta do WhatsApp Business",
    "Access token": "Token de acesso",
    "App secret": "Chave secreta do app",
    "Checks the signature of Meta's webhooks.": "Confere a assinatura dos webhooks da Meta.",
    "Verify token": "Token de verificação",
    "What Meta repeats when you register the webhook.": "O que a Meta repete ao registrar o webhook.",
    "Account SID": "SID da conta",
    "Auth token": "Token de autenticação",
    "Instance name": "Nome da instância",
    "Gateway URL": "URL do gateway",
    "API key": "Chave de API",
    "The instance's token or the server's global key.": "O token da instância ou a chave global do servidor.",
    "Optional: learnt from the phone once it is linked.": (
        "Opcional: vem do celular quando ele for conectado."
    ),
    "User token": "Token do usuário",
    "HMAC key": "Chave HMAC",
    "Optional: signs the gateway's webhooks.": "Opcional: assina os webhooks do gateway.",
    "Limits": "Limites",
    "Daily limit (messages)": "Limite diário (mensagens)",
    "Time zone of the daily counters": "Fuso horário dos contadores diários",
    "Empty: the business's.": "Vazio: o da empresa.",
    "Give the provider this webhook URL, so the number's messages and receipts reach the engine:": (
        "Informe ao provedor esta URL de webhook, para que as mensagens e confirmações do número "
        "cheguem ao motor:"
    ),
    # Connecting by QR code
    "Connect the phone": "Conectar o celular",
    "Asking the gateway for a QR code...": "Pedindo um QR code ao gateway...",
    "Open WhatsApp on the phone of this number.": "Abra o WhatsApp no celular deste número.",
    "Tap Settings, then Linked devices, then Link a device.": (
        "Toque em Configurações, depois em Dispositivos conectados e em Conectar um dispositivo."
    ),
    "Point the phone at this code. It is renewed while this window is open.": (
        "Aponte o celular para este código. Ele é renovado enquanto esta janela estiver aberta."
    ),
    "Or type this code on the phone": "Ou digite este código no celular",
    "The gateway gave no QR code yet. It is asked again in a few seconds.": (
        "O gateway ainda não deu um QR code. Ele é pedido de novo em alguns segundos."
    ),
    "This number is already connected.": "Este número já está conectado.",
    "The phone is linked: this number sends and receives through the gateway now.": (
        "O celular está conectado: este número já envia e recebe pelo gateway."
    ),
}
