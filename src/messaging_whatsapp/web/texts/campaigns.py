"""Portuguese (Brazil) for the campaigns pages."""

PORTUGUESE: dict[str, str] = {
    # List
    "New campaign": "Nova campanha",
    "Running now": "Em andamento",
    "Messages sent": "Mensagens enviadas",
    "Delivery rate": "Taxa de entrega",
    "Read rate": "Taxa de leitura",
    "Failure rate": "Taxa de falha",
    "Campaign": "Campanha",
    "Progress": "Progresso",
    "Contacts": "Contatos",
    "Created on": "Criada em",
    "Campaign created": "Campanha criada",
    "No campaigns yet": "Nenhuma campanha ainda",
    "A campaign sends one message, in a few variations, to a list of contacts through your numbers.": (
        "Uma campanha envia uma mensagem, em algumas variações, para uma lista de contatos pelos "
        "seus números."
    ),
    "This campaign does not exist or belongs to another account.": (
        "Esta campanha não existe ou pertence a outra conta."
    ),
    "Back to the campaigns": "Voltar às campanhas",
    # Statuses
    "Draft": "Rascunho",
    "Scheduled": "Agendada",
    "Running": "Em andamento",
    "Paused": "Em pausa",
    "Completed": "Concluída",
    "Cancelled": "Cancelada",
    "Waiting": "Aguardando",
    "Sending": "Enviando",
    "Opted out": "Descadastrado",
    "Skipped": "Ignorado",
    "Info": "Info",
    "Warning": "Atenção",
    "Error": "Erro",
    "Critical": "Crítica",
    "Excellent": "Excelente",
    "Good": "Boa",
    # Log types
    "Campaign started": "Campanha iniciada",
    "Campaign paused": "Campanha pausada",
    "Campaign completed": "Campanha concluída",
    "Campaign cancelled": "Campanha cancelada",
    "Started on": "Iniciada em",
    "Campaign resumed": "Campanha retomada",
    "Number selected": "Número selecionado",
    "Number paused": "Número pausado",
    "Number resumed": "Número retomado",
    "Message sent": "Mensagem enviada",
    "Message delivered": "Mensagem entregue",
    "Message read": "Mensagem lida",
    "Message failed": "Falha no envio",
    "Rotation changed": "Rotação alterada",
    "Contacts added": "Contatos adicionados",
    "Contact removed": "Contato removido",
    "Limit reached": "Limite atingido",
    "Health issue": "Problema de saúde do número",
    "Contact opted out": "Contato descadastrado",
    "Number disconnected": "Número desconectado",
    # Rotation
    "Intelligent": "Inteligente",
    "Balanced": "Equilibrada",
    "Round robin": "Revezamento",
    "Intelligent: favour healthy numbers with room left today": (
        "Inteligente: prefere os números saudáveis com mais espaço hoje"
    ),
    "Balanced: the number that sent least today goes next": (
        "Equilibrada: envia pelo número que menos enviou hoje"
    ),
    "Round robin: one number after the other": "Revezamento: um número depois do outro",
    # Detail
    "Start": "Iniciar",
    "Resume": "Retomar",
    "Pause": "Pausar",
    "Edit": "Editar",
    "Cancel campaign": "Cancelar campanha",
    "Delete": "Excluir",
    "Rotation": "Rotação",
    "Scheduled for": "Agendada para",
    "Finished": "Encerrada em",
    "Paused: every number of the campaign is disconnected; it resumes when one reconnects.": (
        "Pausada: todos os números da campanha estão desconectados; ela volta sozinha quando um reconectar."
    ),
    "Paused by a user.": "Pausada por um usuário.",
    "delivered of sent": "entregues das enviadas",
    "read of delivered": "lidas das entregues",
    "failed of attempted": "falhas das tentativas",
    "Sends over time": "Envios ao longo do tempo",
    "Time": "Horário",
    "Interval": "Intervalo",
    "Per minute": "Por minuto",
    "Per hour": "Por hora",
    "No sends yet.": "Nenhum envio ainda.",
    "Sent per number": "Enviadas por número",
    "Health": "Saúde",
    "Sent in this campaign": "Enviadas nesta campanha",
    "State": "Estado",
    "Active": "Ativo",
    "No numbers yet.": "Nenhum número ainda.",
    "Variation": "Variação",
    "Used {count} times": "Usada {count} vezes",
    "Media": "Mídia",
    "No message yet.": "Nenhuma mensagem ainda.",
    "Interval between messages": "Intervalo entre mensagens",
    "Provider default": "Padrão do provedor",
    "Daily limit": "Limite diário",
    "Numbers' own": "O de cada número",
    "Warm-up": "Aquecimento",
    "On": "Ligado",
    "Off": "Desligado",
    "Sending window": "Janela de envio",
    "Any time": "Qualquer horário",
    "Export CSV": "Exportar CSV",
    "No contacts here.": "Nenhum contato aqui.",
    "Show more": "Mostrar mais",
    "Log": "Registro",
    "Type": "Tipo",
    "Severity": "Gravidade",
    "When": "Quando",
    "What happened": "O que aconteceu",
    "Nothing logged here.": "Nada registrado aqui.",
    "Campaign started.": "Campanha iniciada.",
    "Campaign paused.": "Campanha pausada.",
    "Campaign resumed.": "Campanha retomada.",
    "Campaign cancelled.": "Campanha cancelada.",
    "Campaign deleted.": "Campanha excluída.",
    "Cancel this campaign? Contacts not yet sent will be skipped.": (
        "Cancelar esta campanha? Os contatos ainda não enviados serão ignorados."
    ),
    "Delete this draft? This cannot be undone.": "Excluir este rascunho? Não dá para desfazer.",
    # Form
    "Only a draft or a paused campaign can be changed. This one is {status}.": (
        "Só uma campanha em rascunho ou pausada pode ser alterada. Esta está: {status}."
    ),
    "About the campaign": "Sobre a campanha",
    "Only your team sees it.": "Só a sua equipe vê.",
    "e.g. Black Friday, loyal customers": "ex.: Black Friday, clientes fiéis",
    "Description (optional)": "Descrição (opcional)",
    "How to spread the contacts over the numbers": "Como distribuir os contatos entre os números",
    "Pick the numbers that send. Each shows its health, its warm-up and how many messages it may still send today.": (  # noqa: E501
        "Escolha os números que vão enviar. Cada um mostra a saúde, o aquecimento e quantas mensagens "
        "ainda pode enviar hoje."
    ),
    "Warm-up: a new number sends a little more each day": (
        "Aquecimento: um número novo envia um pouco mais a cada dia"
    ),
    "Warm-up day {day}: up to {cap} today": "Aquecimento, dia {day}: até {cap} hoje",
    "left today": "restantes hoje",
    "{sent} of {limit} sent": "{sent} de {limit} enviadas",
    "Pacing for this number": "Ritmo deste número",
    "No numbers yet: an administrator binds them on the Numbers page.": (
        "Nenhum número ainda: um administrador os conecta na página Números."
    ),
    "A CSV file with a phone column (phone, telefone, celular or whatsapp), optionally a name column; every other column becomes a {{variable}} for the message. Separated by ; or ,.": (  # noqa: E501
        "Um arquivo CSV com uma coluna de telefone (telefone, celular, whatsapp ou phone) e, se quiser, uma "
        "de nome; cada outra coluna vira uma {{variável}} da mensagem. Separado por ; ou ,."
    ),
    "{count} contacts in the campaign.": "{count} contatos na campanha.",
    "Choose a CSV file": "Escolher arquivo CSV",
    "Write one or more variations: each contact gets one of them. Use {{name}} or any column of the CSV, e.g. {{cupom}}. On Meta and Twilio numbers a contact outside the 24-hour window only receives an approved template.": (  # noqa: E501
        "Escreva uma ou mais variações: cada contato recebe uma delas. Use {{name}} ou qualquer coluna do "
        "CSV, como {{cupom}}. Nos números Meta e Twilio, quem está fora da janela de 24 horas só recebe um "
        "modelo aprovado."
    ),
    "Add a variation": "Adicionar variação",
    "When to send": "Quando enviar",
    "Start at (optional)": "Começar em (opcional)",
    "In your computer's time. Left empty, the campaign starts when you press Start.": (
        "No horário do seu computador. Em branco, a campanha começa quando você clicar em Iniciar."
    ),
    "Only send within these hours": "Enviar só neste horário",
    "Start time": "Início",
    "End time": "Fim",
    "Mon": "Seg",
    "Tue": "Ter",
    "Wed": "Qua",
    "Thu": "Qui",
    "Fri": "Sex",
    "Sat": "Sáb",
    "Sun": "Dom",
    "In your account's time zone. An end before the start crosses midnight.": (
        "No fuso horário da sua conta. Um fim antes do início atravessa a meia-noite."
    ),
    "Pacing": "Ritmo de envio",
    "Left empty, each number keeps its provider's defaults: Evolution and WuzAPI send like a person (5 to 30 s apart, at most 8 a minute and 200 an hour); Meta and Twilio as fast as their limits allow.": (  # noqa: E501
        "Em branco, cada número segue o padrão do provedor: Evolution e WuzAPI enviam como uma pessoa "
        "(de 5 a 30 s entre mensagens, no máximo 8 por minuto e 200 por hora); Meta e Twilio tão rápido "
        "quanto os limites deles permitem."
    ),
    "Warm up new numbers (a few messages the first day, more each day)": (
        "Aquecer números novos (poucas mensagens no primeiro dia, mais a cada dia)"
    ),
    "Minimum interval (s)": "Intervalo mínimo (s)",
    "Maximum interval (s)": "Intervalo máximo (s)",
    "Per minute at most": "Máximo por minuto",
    "Per hour at most": "Máximo por hora",
    "Identical texts per hour": "Textos iguais por hora",
    "Show typing indicator": 'Mostrar "digitando..."',
    "Default": "Padrão",
    "As the campaign": "Como a campanha",
    "Yes": "Sim",
    "No": "Não",
    "Back": "Voltar",
    "Save draft": "Salvar rascunho",
    "Save changes": "Salvar alterações",
    "Saving...": "Salvando...",
    "Open the campaign": "Abrir a campanha",
    "Text": "Texto",
    "Remove": "Remover",
    "Hi {{name}}, ...": "Olá {{name}}, ...",
    "Media (optional)": "Mídia (opcional)",
    "Kind": "Tipo",
    "None": "Nenhuma",
    "Public URL": "URL pública",
    "Caption": "Legenda",
    "File name": "Nome do arquivo",
    "Template name or Content SID": "Nome do modelo ou Content SID",
    "Parameters, one per line": "Parâmetros, um por linha",
    "For Meta and Twilio numbers: the only message that reaches someone outside the 24-hour window.": (
        "Para números Meta e Twilio: a única mensagem que chega a quem está fora da janela de 24 horas."
    ),
    "Variation {n}": "Variação {n}",
    "Sample: {phone}": "Exemplo: {phone}",
    "No CSV yet: variables show as written.": "Sem CSV ainda: as variáveis aparecem como escritas.",
    "{rows} rows, columns: {columns}": "{rows} linhas, colunas: {columns}",
    "Campaign saved.": "Campanha salva.",
    "Importing the contacts...": "Importando os contatos...",
    "{added} contacts accepted.": "{added} contatos aceitos.",
    "{count} rows refused:": "{count} linhas recusadas:",
    "{count} duplicates merged, {opted_out} opted out.": (
        "{count} repetidos unidos, {opted_out} descadastrados."
    ),
    "line {line}": "linha {line}",
    "Fix the fields marked in red.": "Corrija os campos marcados em vermelho.",
    # The API's validation messages
    "Field required": "Obrigatório.",
    "String should have at least 1 character": "Preencha este campo.",
    "Input should be greater than or equal to 0": "Use um número a partir de 0.",
    "Input should be greater than or equal to 1": "Use um número a partir de 1.",
    "String should match pattern '^https?://'": "Use um endereço que comece com http:// ou https://.",
    "interval_max_s must not be below interval_min_s": "O intervalo máximo não pode ser menor que o mínimo.",
    "send_window start and end must differ": "O início e o fim do horário precisam ser diferentes.",
    "a variation has exactly one of content or template": "Escreva o texto da variação (ou use um modelo).",
    "a template variation takes no media (the template defines its header)": (
        "Uma variação com modelo não leva mídia (o próprio modelo define o cabeçalho)."
    ),
}
