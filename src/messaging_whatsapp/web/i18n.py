"""The web UI's languages: Portuguese (Brazil) by default, English; dates in the tenant's time zone.

Strings are written in English in the templates and scripts (`t("Send")`); PORTUGUESE_TEXTS maps
each to its translation: the inbox's here, each other area's in its module of `web.texts` (a test
checks that every string the pages use has one). The language is the user's choice (the `lang`
cookie the switcher sets), else the browser's Accept-Language, else Portuguese.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from starlette.requests import Request

from messaging_whatsapp.web.texts import (
    admin,
    alerts,
    analytics,
    assistant,
    automation,
    campaigns,
    integrations,
    knowledge,
    notifications,
    numbers,
    ops,
    shell,
    templates,
)

LANG_COOKIE = "lang"
PORTUGUESE = "pt-BR"
ENGLISH = "en"
LANGUAGES = (PORTUGUESE, ENGLISH)

_INBOX_TEXTS: dict[str, str] = {
    # Login and the app bar
    "Team inbox": "Caixa de entrada da equipe",
    "Log in": "Entrar",
    "Log out": "Sair",
    "Email": "E-mail",
    "Password": "Senha",
    "Wrong email or password.": "E-mail ou senha incorretos.",
    "Too many attempts. Try again in {seconds} s.": "Muitas tentativas. Tente de novo em {seconds} s.",
    "Your session has expired. Log in again.": "Sua sessão expirou. Entre novamente.",
    "The form expired. Try again.": "O formulário expirou. Tente de novo.",
    "Language": "Idioma",
    "Answer your customers on WhatsApp, together.": "Atenda seus clientes no WhatsApp, em equipe.",
    "This conversation does not exist or is not yours.": "Esta conversa não existe ou não é sua.",
    "admin": "administrador",
    "supervisor": "supervisor",
    "agent": "agente",
    # Conversation list
    "Conversations": "Conversas",
    "Mine": "Minhas",
    "Unassigned": "Sem responsável",
    "All": "Todas",
    "Open": "Abertas",
    "Resolved": "Resolvidas",
    "All numbers": "Todos os números",
    "Search name, phone or message": "Buscar nome, telefone ou mensagem",
    "No conversations here.": "Nenhuma conversa aqui.",
    "Loading...": "Carregando...",
    "unread messages": "mensagens não lidas",
    "open": "aberto",
    "closed": "encerrado",
    "Nobody": "Ninguém",
    "You": "Você",
    "No messages yet": "Nenhuma mensagem ainda",
    # Chat
    "Select a conversation": "Selecione uma conversa",
    "Pick a conversation on the left to read and answer it.": (
        "Escolha uma conversa à esquerda para ler e responder."
    ),
    "Today": "Hoje",
    "Yesterday": "Ontem",
    "Customer": "Cliente",
    "Campaign": "Campanha",
    "AI": "IA",
    "System": "Sistema",
    "Business phone": "Celular da empresa",
    "Queued": "Na fila",
    "Sent": "Enviada",
    "Delivered": "Entregue",
    "Read": "Lida",
    "Failed": "Falhou",
    "Reply": "Responder",
    "Replying to": "Respondendo a",
    "Cancel reply": "Cancelar resposta",
    "Type a message": "Digite uma mensagem",
    "Send": "Enviar",
    "Enter sends, Shift+Enter breaks the line": "Enter envia, Shift+Enter quebra a linha",
    "{name} is typing...": "{name} está digitando...",
    "Image": "Imagem",
    "Audio": "Áudio",
    "Voice message": "Mensagem de voz",
    "Video": "Vídeo",
    "Document": "Documento",
    "Sticker": "Figurinha",
    "Location": "Localização",
    "Contact card": "Contato",
    "Reaction": "Reação",
    "Template": "Modelo",
    "Buttons": "Botões",
    "Message": "Mensagem",
    "Open map": "Abrir mapa",
    "Download": "Baixar",
    "The media is kept by the provider.": "A mídia fica no provedor.",
    "Unsupported message": "Mensagem não suportada",
    "Load older messages": "Carregar mensagens anteriores",
    "Could not send.": "Não foi possível enviar.",
    "Retry": "Tentar de novo",
    # 24-hour window
    "The 24-hour window is closed": "A janela de 24 horas está fechada",
    "This customer has not written in the last 24 hours: WhatsApp only lets this number send "
    "an approved template until they write again.": (
        "Este cliente não escreveu nas últimas 24 horas: o WhatsApp só permite enviar um modelo "
        "aprovado por este número até que ele escreva de novo."
    ),
    "Template name": "Nome do modelo",
    "Language code": "Código do idioma",
    "Parameters (one per line)": "Parâmetros (um por linha)",
    "Send template": "Enviar modelo",
    "Opted out": "Descadastrado",
    "This customer opted out: messages to them are refused.": (
        "Este cliente pediu para não receber mensagens: os envios são recusados."
    ),
    # Live connection
    "Live": "Ao vivo",
    "Offline: reconnecting...": "Sem conexão: reconectando...",
    # Lead panel
    "Lead": "Lead",
    "Name": "Nome",
    "Phone": "Telefone",
    "Save": "Salvar",
    "Edit name": "Editar nome",
    "Receives messages": "Recebe mensagens",
    "Opted out on {date}": "Descadastrado em {date}",
    "First touch": "Primeiro contato",
    "Source": "Origem",
    "Medium": "Mídia",
    "Ad": "Anúncio",
    "Tickets": "Atendimentos",
    "Status": "Status",
    "Outcome": "Resultado",
    "Opened": "Aberto em",
    "Closed": "Encerrado em",
    "Assignee": "Responsável",
    "Assign": "Atribuir",
    "Take it": "Assumir",
    "Give back": "Devolver",
    "Close as done": "Encerrar",
    "Close as sale": "Encerrar como venda",
    "Number": "Número",
    "No tickets.": "Nenhum atendimento.",
    "manual": "manual",
    "sale": "venda",
    "lost": "perdido",
    "inactivity": "inatividade",
    "follow_up_exhausted": "sem retorno",
    "direct": "direto",
    "Messages received": "Mensagens recebidas",
    "Something went wrong. Try again.": "Algo deu errado. Tente de novo.",
    # Follow-ups and scheduled messages (templates/followups.html, static/followups.js)
    "follow_up": "em follow-up",
    "Follow-up": "Follow-up",
    "Running": "Em andamento",
    "Stopped early": "Interrompido",
    "Ended without reply": "Encerrado sem resposta",
    "Ended, ticket kept open": "Concluído, atendimento mantido aberto",
    "the customer replied": "o cliente respondeu",
    "an agent replied": "um atendente respondeu",
    "the ticket was closed": "o atendimento foi encerrado",
    "the customer opted out": "o cliente pediu para não receber mensagens",
    "the customer asked for a person": "o cliente pediu um atendente",
    "cancelled by a user": "interrompido por um usuário",
    "Skipped": "Ignorado",
    "Refused": "Recusado",
    "Waiting": "Aguardando",
    "next: {when}": "próximo: {when}",
    "Stop follow-up": "Interromper follow-up",
    "Start a follow-up": "Iniciar follow-up",
    "New follow-up": "Novo follow-up",
    "Messages sent one after another while the customer does not answer; a reply stops them.": (
        "Mensagens enviadas uma após a outra enquanto o cliente não responde; uma resposta as interrompe."
    ),
    "Add a step": "Adicionar etapa",
    "Only in business hours": "Somente no horário de atendimento",
    "Close the ticket when it ends without reply": "Encerrar o atendimento se terminar sem resposta",
    "Cancel": "Cancelar",
    "Start": "Iniciar",
    "Wait": "Esperar",
    "Unit": "Unidade",
    "minutes": "minutos",
    "hours": "horas",
    "days": "dias",
    "Content": "Conteúdo",
    "Text": "Texto",
    "Remove step": "Remover etapa",
    "Scheduled messages": "Mensagens agendadas",
    "Nothing scheduled.": "Nada agendado.",
    "Send later": "Enviar mais tarde",
    "Send at ({zone})": "Enviar em ({zone})",
    "Schedule": "Agendar",
    "Give a date and time in the future.": "Informe uma data e hora no futuro.",
    "Write the message first.": "Escreva a mensagem primeiro.",
    "Scheduled for {when}.": "Agendada para {when}.",
}

# Each area's catalog; one English string has one translation across them all (a test checks).
CATALOGS: dict[str, dict[str, str]] = {
    "inbox": _INBOX_TEXTS,
    "shell": shell.PORTUGUESE,
    "campaigns": campaigns.PORTUGUESE,
    "numbers": numbers.PORTUGUESE,
    "analytics": analytics.PORTUGUESE,
    "alerts": alerts.PORTUGUESE,
    "admin": admin.PORTUGUESE,
    "ops": ops.PORTUGUESE,
    "automation": automation.PORTUGUESE,
    "templates": templates.PORTUGUESE,
    "notifications": notifications.PORTUGUESE,
    "integrations": integrations.PORTUGUESE,
    "knowledge": knowledge.PORTUGUESE,
    "assistant": assistant.PORTUGUESE,
}
PORTUGUESE_TEXTS: dict[str, str] = {
    text: out for catalog in CATALOGS.values() for text, out in catalog.items()
}

_MONTHS = {
    PORTUGUESE: [
        "janeiro",
        "fevereiro",
        "março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ],
    ENGLISH: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}
_SHORT_MONTHS = {
    PORTUGUESE: [
        "jan",
        "fev",
        "mar",
        "abr",
        "mai",
        "jun",
        "jul",
        "ago",
        "set",
        "out",
        "nov",
        "dez",
    ],
    ENGLISH: [
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ],
}


def choose_language(request: Request) -> str:
    """The user's choice (cookie), else the best of Accept-Language we speak, else Portuguese."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, str]] = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()))
    for _quality, tag in sorted(ranked, key=lambda item: -item[0]):
        if tag.startswith("pt"):
            return PORTUGUESE
        if tag.startswith("en"):
            return ENGLISH
    return PORTUGUESE


class Texts:
    """One language's strings and date formats, in one time zone."""

    def __init__(self, language: str, timezone: str) -> None:
        self.language = language if language in LANGUAGES else PORTUGUESE
        self.zone = ZoneInfo(timezone)
        self._catalog = PORTUGUESE_TEXTS if self.language == PORTUGUESE else {}

    def __call__(self, text: str, **values: object) -> str:
        """The text in this language, with `{name}` placeholders filled."""
        translated = self._catalog.get(text, text)
        return translated.format(**values) if values else translated

    def local(self, moment: datetime) -> datetime:
        """A stored (UTC) time in the tenant's time zone."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def today(self) -> date:
        """Today in the tenant's time zone."""
        return datetime.now(self.zone).date()

    def clock(self, moment: datetime | None) -> str:
        """The time of day: 14:05 (pt-BR) or 2:05 PM (en)."""
        if moment is None:
            return ""
        local = self.local(moment)
        if self.language == PORTUGUESE:
            return local.strftime("%H:%M")
        return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"

    def short_date(self, day: date) -> str:
        """05/12/2026 (pt-BR) or 12/05/2026 (en)."""
        if self.language == PORTUGUESE:
            return day.strftime("%d/%m/%Y")
        return day.strftime("%m/%d/%Y")

    def when(self, moment: datetime | None) -> str:
        """A list item's time: the clock today, "Yesterday", else the short date."""
        if moment is None:
            return ""
        day = self.local(moment).date()
        delta = (self.today() - day).days
        if delta == 0:
            return self.clock(moment)
        if delta == 1:
            return self("Yesterday")
        return self.short_date(day)

    def day_label(self, day: date) -> str:
        """A chat's day separator: Today, Yesterday, or 5 de dezembro de 2026 / December 5, 2026."""
        delta = (self.today() - day).days
        if delta == 0:
            return self("Today")
        if delta == 1:
            return self("Yesterday")
        month = _MONTHS[self.language][day.month - 1]
        if self.language == PORTUGUESE:
            return f"{day.day} de {month} de {day.year}"
        return f"{month} {day.day}, {day.year}"

    def date_time(self, moment: datetime | None) -> str:
        """A full date and time: 5 dez 2026, 14:05 / Dec 5, 2026, 2:05 PM."""
        if moment is None:
            return ""
        local = self.local(moment)
        month = _SHORT_MONTHS[self.language][local.month - 1]
        if self.language == PORTUGUESE:
            return f"{local.day} {month} {local.year}, {self.clock(moment)}"
        return f"{month} {local.day}, {local.year}, {self.clock(moment)}"
