// The inbox's client: the live connection, opening conversations, sending, and the lead panel.
//
// Events are hints carrying ids; on one, the server-rendered fragment for that id is fetched and
// put in place. Whatever a customer wrote reaches the page only inside those fragments (escaped
// by the server) or through textContent: never as markup built here.
(function () {
  "use strict";

  var app = document.getElementById("app");
  if (!app) return;
  var ME = app.dataset.me;
  var list = document.getElementById("conversation-list");
  var chatColumn = document.getElementById("chat-column");
  var leadColumn = document.getElementById("lead-column");
  var state = {
    conversationId: app.dataset.conversationId || null,
    replyTo: null,
    typingSentAt: 0,
    typingTimer: null,
  };

  var t = MW.t;
  var api = MW.api;
  var toast = MW.toast;
  var errorMessage = MW.errorMessage;
  var fragment = MW.fragment;

  // A random id for Idempotency-Key (crypto.randomUUID needs a secure context; this does not).
  function randomKey() {
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function firstElement(content) {
    return content ? content.firstElementChild : null;
  }

  function filterQuery() {
    var form = document.getElementById("filters");
    return new URLSearchParams(new FormData(form)).toString();
  }

  // ---------------------------------------------------------------------------------------------
  // Conversation list

  function listItem(id) {
    return list.querySelector('[data-testid=conversation-item][data-conversation-id="' + CSS.escape(id) + '"]');
  }

  // The tab's title counts the conversations waiting to be read, as a chat app's does.
  var baseTitle = document.title;
  function countUnread() {
    var waiting = list.querySelectorAll("[data-testid=unread]").length;
    document.title = waiting ? "(" + waiting + ") " + baseTitle : baseTitle;
  }

  function markActive() {
    list.querySelectorAll(".conv.is-active").forEach(function (item) { item.classList.remove("is-active"); });
    var item = state.conversationId && listItem(state.conversationId);
    if (item) item.classList.add("is-active");
    countUnread();
  }

  // Refresh one item; `toTop` moves it first (a new message). Searching, only items shown move.
  function refreshItem(id, toTop) {
    return fragment("/inbox/fragments/conversation/" + encodeURIComponent(id) + "?" + filterQuery()).then(function (content) {
      var current = listItem(id);
      var fresh = firstElement(content);
      if (!fresh) { if (current) current.remove(); return; }
      if (current) {
        if (toTop) { current.remove(); list.prepend(fresh); } else { current.replaceWith(fresh); }
      } else if (toTop && !new URLSearchParams(filterQuery()).get("q")) {
        list.prepend(fresh);
        var empty = list.querySelector(".list-empty");
        if (empty) empty.remove();
      }
      markActive();
    });
  }

  function reloadList() {
    return fragment("/inbox/fragments/conversations?" + filterQuery()).then(function (content) {
      if (!content) return;
      list.replaceChildren(content);
      htmx.process(list);
      markActive();
    });
  }

  list.addEventListener("click", function (event) {
    var link = event.target.closest(".conv-link");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    openConversation(link.closest("[data-conversation-id]").dataset.conversationId, true);
  });
  document.body.addEventListener("htmx:afterSwap", markActive);

  // ---------------------------------------------------------------------------------------------
  // Chat

  function chat() {
    return chatColumn.querySelector("[data-testid=chat]");
  }

  function messagesBox() {
    return chatColumn.querySelector(".messages");
  }

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  function scrollToBottom() {
    var box = messagesBox();
    if (box) box.scrollTop = box.scrollHeight;
  }

  // Day separators and sender grouping, recomputed whenever messages come or go.
  function regroup() {
    var box = messagesBox();
    if (!box) return;
    box.querySelectorAll(".day-separator").forEach(function (node) { node.remove(); });
    var lastDay = null;
    var lastGroup = null;
    box.querySelectorAll("[data-testid=message]").forEach(function (message) {
      var day = message.dataset.day;
      if (day && day !== lastDay) {
        var separator = document.createElement("div");
        separator.className = "day-separator";
        var label = document.createElement("span");
        label.textContent = message.dataset.dayLabel || day;
        separator.appendChild(label);
        message.before(separator);
        lastDay = day;
        lastGroup = null;
      }
      var group = message.dataset.group || "";
      message.classList.toggle("continued", group === lastGroup);
      lastGroup = group;
    });
  }

  function messageElement(id) {
    var box = messagesBox();
    return box && box.querySelector('[data-testid=message][data-message-id="' + CSS.escape(id) + '"]');
  }

  // Put a fresh message in place: over its optimistic copy, over an older copy of itself (unless
  // that one is further along), or at the end.
  function placeMessage(fresh) {
    var box = messagesBox();
    if (!box || !fresh || !chat() || fresh.dataset.messageId === "") return;
    var current = messageElement(fresh.dataset.messageId);
    var key = fresh.dataset.clientKey;
    var optimistic = key && box.querySelector('[data-testid=message][data-client-key="' + CSS.escape(key) + '"]');
    var stick = nearBottom(box);
    if (current) {
      if (Number(current.dataset.rank || 0) > Number(fresh.dataset.rank || 0)) return;
      current.replaceWith(fresh);
      if (optimistic && optimistic !== current) optimistic.remove();
    } else if (optimistic) {
      optimistic.replaceWith(fresh);
    } else {
      box.appendChild(fresh);
    }
    regroup();
    if (stick) scrollToBottom();
  }

  function refreshMessage(id) {
    return fragment("/inbox/fragments/message/" + encodeURIComponent(id)).then(function (content) {
      placeMessage(firstElement(content));
    });
  }

  function refreshLead() {
    if (!state.conversationId) return Promise.resolve();
    var id = state.conversationId;
    return fragment("/inbox/fragments/lead/" + encodeURIComponent(id)).then(function (content) {
      if (content && state.conversationId === id) leadColumn.replaceChildren(content);
    });
  }

  function markRead(id) {
    return api("POST", "/api/v1/conversations/" + encodeURIComponent(id) + "/read").then(function () {
      return refreshItem(id, false);
    });
  }

  function openConversation(id, push) {
    state.conversationId = id;
    state.replyTo = null;
    app.dataset.conversationId = id;
    app.classList.add("has-chat");
    markActive();
    if (push) history.pushState({ conversationId: id }, "", "/inbox/" + encodeURIComponent(id) + "?" + filterQuery());
    return Promise.all([
      fragment("/inbox/fragments/chat/" + encodeURIComponent(id)),
      fragment("/inbox/fragments/lead/" + encodeURIComponent(id)),
    ]).then(function (parts) {
      if (state.conversationId !== id) return;
      if (parts[0]) chatColumn.replaceChildren(parts[0]);
      if (parts[1]) leadColumn.replaceChildren(parts[1]);
      setUpChat();
      return markRead(id);
    });
  }

  window.addEventListener("popstate", function () {
    var match = location.pathname.match(/^\/inbox\/([^/]+)$/);
    if (match) openConversation(decodeURIComponent(match[1]), false);
    else location.reload();
  });

  function setUpChat() {
    regroup();
    scrollToBottom();
    var textarea = chatColumn.querySelector(".composer textarea");
    if (textarea) textarea.focus();
  }

  chatColumn.addEventListener("click", function (event) {
    var older = event.target.closest(".load-older");
    if (older) {
      loadOlder(older);
      return;
    }
    var reply = event.target.closest("[data-action=reply]");
    if (reply) {
      var message = reply.closest("[data-testid=message]");
      startReply(message);
      return;
    }
    if (event.target.closest(".cancel-reply")) { stopReply(); return; }
    if (event.target.closest("[data-action=back]")) {
      app.classList.remove("has-chat");
      return;
    }
    var retry = event.target.closest(".retry");
    if (retry) {
      var failed = retry.closest("[data-testid=message]");
      if (failed && failed._send) failed._send();
    }
  });

  // Older messages above the ones shown (the fragment brings its own button to go further back),
  // keeping the reader where they were.
  function loadOlder(button) {
    var box = messagesBox();
    var id = state.conversationId;
    button.disabled = true;
    fragment("/inbox/fragments/messages/" + encodeURIComponent(id) + "?cursor=" + encodeURIComponent(button.dataset.cursor)).then(function (content) {
      if (!content || state.conversationId !== id) return;
      var height = box.scrollHeight;
      content.querySelectorAll("[data-testid=message]").forEach(function (message) {
        if (messageElement(message.dataset.messageId)) message.remove();
      });
      button.replaceWith(content);
      regroup();
      box.scrollTop = box.scrollHeight - height;
    });
  }

  function startReply(message) {
    if (!message || !message.dataset.messageId) return;
    var preview = chatColumn.querySelector(".reply-preview");
    if (!preview) return;
    state.replyTo = message.dataset.messageId;
    var sender = message.querySelector(".sender");
    var text = message.querySelector(".text") || message.querySelector(".bubble");
    preview.querySelector(".quote-text").textContent = (sender ? sender.textContent + ": " : "") + (text ? text.textContent.trim() : "");
    preview.hidden = false;
    var textarea = chatColumn.querySelector(".composer textarea");
    if (textarea) textarea.focus();
  }

  function stopReply() {
    state.replyTo = null;
    var preview = chatColumn.querySelector(".reply-preview");
    if (preview) preview.hidden = true;
  }

  // ---------------------------------------------------------------------------------------------
  // Sending: the message shows at once, its Idempotency-Key made once; a lost answer is retried
  // with the same key, so the engine stores and sends it once whatever happens to the network.

  function optimistic(text, quoteText) {
    var node = document.getElementById("optimistic-message").content.firstElementChild.cloneNode(true);
    var now = new Date();
    node.dataset.clientKey = randomKey();
    node.dataset.day = now.getFullYear() + "-" + String(now.getMonth() + 1).padStart(2, "0") + "-" + String(now.getDate()).padStart(2, "0");
    node.dataset.dayLabel = t("Today");
    node.dataset.group = "outbound:user:" + ME;
    node.querySelector(".text").textContent = text;
    node.querySelector("time").textContent = now.toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
    if (quoteText) {
      var quote = node.querySelector(".quote");
      quote.hidden = false;
      quote.querySelector(".quote-text").textContent = quoteText;
    }
    return node;
  }

  function submit(node, body) {
    var conversationId = state.conversationId;
    var attempt = 0;
    function send() {
      node.querySelector(".error").hidden = true;
      node.dataset.status = "queued";
      api("POST", "/api/v1/messages", body, { "Idempotency-Key": node.dataset.clientKey }).then(
        function (response) {
          if (!response.ok) {
            return errorMessage(response).then(function (message) { failed(node, message); });
          }
          return response.json().then(function (message) {
            node.dataset.messageId = message.id;
            node.classList.remove("pending");
            refreshItem(conversationId, true);
            return refreshMessage(message.id);
          });
        },
        function () {
          // No answer at all: the same key again, after a pause that grows.
          attempt += 1;
          if (attempt > 6) { failed(node, t("Could not send.")); return; }
          setTimeout(send, Math.min(8000, 500 * Math.pow(2, attempt)));
        }
      );
    }
    node._send = function () { attempt = 0; send(); };
    send();
  }

  function failed(node, message) {
    node.dataset.status = "failed";
    var box = node.querySelector(".error");
    box.hidden = false;
    box.querySelector(".error-text").textContent = message;
  }

  function sendText(form) {
    var textarea = form.querySelector("textarea");
    var text = textarea.value.trim();
    if (!text) return;
    var quoteText = null;
    if (state.replyTo) quoteText = chatColumn.querySelector(".reply-preview .quote-text").textContent;
    var node = optimistic(text, quoteText);
    messagesBox().appendChild(node);
    regroup();
    scrollToBottom();
    var body = { to: form.dataset.to, instance_id: form.dataset.instanceId, text: text };
    if (state.replyTo) body.reply_to = state.replyTo;
    textarea.value = "";
    grow(textarea);
    stopReply();
    submit(node, body);
  }

  function sendTemplate(form) {
    var data = new FormData(form);
    var name = String(data.get("name") || "").trim();
    if (!name) return;
    var parameters = String(data.get("parameters") || "").split("\n").map(function (p) { return p.trim(); }).filter(Boolean);
    var node = optimistic(name, null);
    messagesBox().appendChild(node);
    regroup();
    scrollToBottom();
    submit(node, {
      to: form.dataset.to,
      instance_id: form.dataset.instanceId,
      template: { name: name, language: String(data.get("language") || "pt_BR").trim(), parameters: parameters },
    });
  }

  function grow(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight, 160) + "px";
  }

  function typing() {
    var now = Date.now();
    if (!state.conversationId || now - state.typingSentAt < 3000) return;
    state.typingSentAt = now;
    api("POST", "/api/v1/conversations/" + encodeURIComponent(state.conversationId) + "/typing").catch(function () {});
  }

  chatColumn.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches(".composer")) { event.preventDefault(); sendText(form); }
    else if (form.matches(".template-form")) { event.preventDefault(); sendTemplate(form); }
  });
  chatColumn.addEventListener("keydown", function (event) {
    var textarea = event.target.closest(".composer textarea");
    if (!textarea) return;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText(textarea.form);
    } else if (event.key === "Escape") {
      stopReply();
    }
  });
  chatColumn.addEventListener("input", function (event) {
    var textarea = event.target.closest(".composer textarea");
    if (!textarea) return;
    grow(textarea);
    if (textarea.value.trim()) typing();
  });

  // ---------------------------------------------------------------------------------------------
  // The assistant's suggestion above the composer (drafts mode): fetched again when the assistant
  // or anyone in the conversation acts. "Use reply" only fills the composer: the agent edits and
  // sends it as their own message, through the normal send.

  function refreshSuggestion(id) {
    return fragment("/inbox/fragments/ai-draft/" + encodeURIComponent(id)).then(function (content) {
      var fresh = firstElement(content);
      var current = chatColumn.querySelector("#ai-suggestion");
      if (fresh && current && state.conversationId === id) current.replaceWith(fresh);
    });
  }

  function useDraft(card) {
    var textarea = chatColumn.querySelector(".composer textarea");
    if (!textarea) return;
    textarea.value = card.querySelector(".ai-draft-text").textContent;
    grow(textarea);
    card.remove();
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  }

  function discardDraft(card, button) {
    button.disabled = true;
    api("POST", "/api/v1/ai-replies/" + encodeURIComponent(card.dataset.replyId) + "/discard").then(function (response) {
      if (response.ok) { card.remove(); return; }
      // Gone meanwhile (a colleague answered or discarded it): say why, show what is there now.
      return errorMessage(response).then(function (message) {
        toast(message);
        return refreshSuggestion(state.conversationId);
      });
    });
  }

  chatColumn.addEventListener("click", function (event) {
    var button = event.target.closest("[data-ai-action]");
    if (!button) return;
    var action = button.dataset.aiAction;
    if (action === "hide") { button.closest(".ai-handoff").remove(); return; }
    var card = button.closest("[data-testid=ai-draft]");
    if (action === "use") useDraft(card);
    else if (action === "discard") discardDraft(card, button);
  });

  // ---------------------------------------------------------------------------------------------
  // Lead panel: rename, assign, close

  function ticketAction(url, body) {
    return api("POST", url, body).then(function (response) {
      if (!response.ok) return errorMessage(response).then(function (message) { toast(message); });
      var id = state.conversationId;
      return Promise.all([refreshLead(), refreshItem(id, false)]);
    });
  }

  leadColumn.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var ticket = button.closest("[data-ticket-id]");
    if (!ticket) return;
    var base = "/api/v1/tickets/" + encodeURIComponent(ticket.dataset.ticketId);
    if (button.dataset.action === "close") ticketAction(base + "/close", { reason: button.dataset.reason });
    if (button.dataset.action === "assign") ticketAction(base + "/assign", { user_id: button.dataset.userId || null });
  });
  leadColumn.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-action=assign]");
    if (!select) return;
    var ticket = select.closest("[data-ticket-id]");
    ticketAction("/api/v1/tickets/" + encodeURIComponent(ticket.dataset.ticketId) + "/assign", { user_id: select.value || null });
  });
  leadColumn.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-action=rename]");
    if (!form) return;
    event.preventDefault();
    var contactId = form.closest("[data-contact-id]").dataset.contactId;
    var name = form.querySelector("input[name=name]").value.trim();
    api("PATCH", "/api/v1/contacts/" + encodeURIComponent(contactId), { name: name || null }).then(function (response) {
      if (!response.ok) return errorMessage(response).then(function (message) { toast(message); });
      var id = state.conversationId;
      return Promise.all([refreshLead(), refreshItem(id, false), openConversationHeader(id)]);
    });
  });

  function openConversationHeader(id) {
    return fragment("/inbox/fragments/chat/" + encodeURIComponent(id)).then(function (content) {
      var fresh = content && content.querySelector(".chat-title");
      var current = chatColumn.querySelector(".chat-title");
      if (fresh && current && state.conversationId === id) current.replaceWith(fresh);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Live: each event names what changed; the fragment for it is fetched and put in place.

  var handlers = {
    new_message: function (data) {
      refreshItem(data.conversation_id, true);
      // A team member's answer ends the "wants a person" flag of the chat's header.
      if (data.conversation_id === state.conversationId && data.direction === "outbound") openConversationHeader(data.conversation_id);
      if (data.conversation_id === state.conversationId) {
        // A message from either side may end the assistant's suggestion (the agent answered).
        refreshSuggestion(data.conversation_id);
        refreshMessage(data.message_id).then(function () {
          if (data.direction !== "outbound" && document.visibilityState === "visible") markRead(data.conversation_id);
        });
      }
    },
    message_status: function (data) {
      if (data.conversation_id === state.conversationId && messageElement(data.message_id)) refreshMessage(data.message_id);
      if (listItem(data.conversation_id)) refreshItem(data.conversation_id, false);
    },
    conversation_updated: function (data) {
      if (listItem(data.conversation_id)) refreshItem(data.conversation_id, false);
      if (data.conversation_id === state.conversationId && (data.opted_out !== undefined || data.erased)) refreshLead();
    },
    ticket_updated: function (data) {
      refreshItem(data.conversation_id, false);
      if (data.conversation_id === state.conversationId) refreshLead();
      if (data.conversation_id === state.conversationId) openConversationHeader(data.conversation_id);
    },
    ai_reply: function (data) {
      if (data.conversation_id === state.conversationId) refreshSuggestion(data.conversation_id);
    },
    typing: function (data) {
      if (data.conversation_id !== state.conversationId || data.user_id === ME) return;
      var line = chatColumn.querySelector("[data-testid=typing]");
      if (!line) return;
      line.textContent = t("{name} is typing...", { name: data.user_name || "" });
      line.hidden = false;
      clearTimeout(state.typingTimer);
      state.typingTimer = setTimeout(function () { line.hidden = true; }, 5000);
    },
    resync: function () {
      reloadList();
      if (state.conversationId) openConversation(state.conversationId, false);
    },
  };

  Object.keys(handlers).forEach(function (type) { MW.on(type, handlers[type]); });

  markActive();
  if (state.conversationId && chat()) {
    setUpChat();
    markRead(state.conversationId);
  }
  MW.start(app.dataset.lastEventId);
})();