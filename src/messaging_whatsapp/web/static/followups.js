// The inbox's follow-ups and "send later": the lead panel's follow-up dialog, its stop button, the
// conversation's scheduled messages (cancel), and the composer's clock. Acts through the API and
// re-renders the lead panel from the server; nothing a customer wrote is built into markup here.
(function () {
  "use strict";

  var app = document.getElementById("app");
  if (!app) return;
  var chatColumn = document.getElementById("chat-column");
  var leadColumn = document.getElementById("lead-column");
  var t = MW.t;

  function conversationId() {
    var chat = chatColumn.querySelector("[data-testid=chat]");
    return chat ? chat.dataset.conversationId : null;
  }

  function refreshLead() {
    var id = conversationId();
    if (!id) return Promise.resolve();
    return MW.fragment("/inbox/fragments/lead/" + encodeURIComponent(id)).then(function (content) {
      if (content && conversationId() === id) leadColumn.replaceChildren(content);
    });
  }

  function call(method, url, body) {
    return MW.api(method, url, body).then(function (response) {
      if (!response.ok) {
        return MW.errorMessage(response).then(function (message) { MW.toast(message); return null; });
      }
      return response.json();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The follow-up dialog

  function addStep(form) {
    var dialog = form.closest("dialog");
    var row = dialog.querySelector("template.fu-step-template").content.firstElementChild.cloneNode(true);
    var steps = form.querySelector(".fu-steps");
    if (!steps.children.length) row.querySelector("input[name=amount]").value = "1";
    steps.appendChild(row);
  }

  function stepBody(row) {
    var seconds = Number(row.querySelector("input[name=amount]").value || 0) * Number(row.querySelector("select[name=unit]").value);
    var step = { delay_seconds: Math.round(seconds) };
    if (row.querySelector("select[name=kind]").value === "template") {
      step.template = {
        name: row.querySelector("input[name=name]").value.trim(),
        language: row.querySelector("input[name=language]").value.trim() || "pt_BR",
        parameters: [],
      };
    } else {
      step.text = row.querySelector("textarea[name=text]").value;
    }
    return step;
  }

  function startFollowUp(form) {
    var body = {
      steps: Array.from(form.querySelectorAll(".fu-step")).map(stepBody),
      business_hours_only: form.querySelector("input[name=business_hours_only]").checked,
      close_ticket: form.querySelector("input[name=close_ticket]").checked,
    };
    var url = "/api/v1/tickets/" + encodeURIComponent(form.dataset.ticketId) + "/follow-ups";
    return call("POST", url, body).then(function (created) {
      if (!created) return;
      form.closest("dialog").close();
      return refreshLead();
    });
  }

  leadColumn.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fu-action]");
    if (!button) return;
    var action = button.dataset.fuAction;
    var panel = button.closest("[data-testid=follow-up-panel]");
    if (action === "open") {
      var dialog = panel.querySelector("dialog");
      var form = dialog.querySelector("form");
      form.querySelector(".fu-steps").replaceChildren();
      addStep(form);
      dialog.showModal();
    } else if (action === "add-step") {
      addStep(button.closest("form"));
    } else if (action === "remove-step") {
      var steps = button.closest(".fu-steps");
      if (steps.children.length > 1) button.closest(".fu-step").remove();
    } else if (action === "close-dialog") {
      button.closest("dialog").close();
    } else if (action === "cancel") {
      call("POST", "/api/v1/follow-ups/" + encodeURIComponent(button.dataset.followUpId) + "/cancel").then(refreshLead);
    } else if (action === "unschedule") {
      call("DELETE", "/api/v1/scheduled-messages/" + encodeURIComponent(button.dataset.scheduledId)).then(refreshLead);
    }
  });

  leadColumn.addEventListener("change", function (event) {
    var kind = event.target.closest("select[name=kind]");
    if (!kind) return;
    var row = kind.closest(".fu-step");
    var template = kind.value === "template";
    row.querySelector("textarea[name=text]").hidden = template;
    row.querySelector(".fu-template").hidden = !template;
  });

  leadColumn.addEventListener("submit", function (event) {
    var form = event.target.closest("form.follow-up-form");
    if (!form) return;
    event.preventDefault();
    startFollowUp(form);
  });

  // ---------------------------------------------------------------------------------------------
  // Send later: the composer's text at a date and time of the tenant's time zone

  // The UTC offset ("-03:00") a time zone has at a moment.
  function offsetAt(zone, moment) {
    var parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" }).formatToParts(moment);
    var name = (parts.find(function (part) { return part.type === "timeZoneName"; }) || {}).value || "GMT";
    var match = /GMT([+-]\d{2}):?(\d{2})?/.exec(name);
    return match ? match[1] + ":" + (match[2] || "00") : "+00:00";
  }

  // "2026-12-24T09:00" read in `zone` as an ISO date-time with that zone's offset then.
  function zonedIso(local, zone) {
    var guess = new Date(local + ":00Z");
    var offset = offsetAt(zone, guess);
    var sign = offset[0] === "-" ? 1 : -1;
    var shifted = new Date(guess.getTime() + sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6))) * 60000);
    return local + ":00" + offsetAt(zone, shifted);
  }

  chatColumn.addEventListener("click", function (event) {
    var button = event.target.closest("[data-fu-action]");
    if (!button) return;
    var area = button.closest(".composer-area");
    var later = area && area.querySelector(".schedule-later");
    if (!later) return;
    if (button.dataset.fuAction === "schedule-toggle") {
      later.hidden = !later.hidden;
      if (!later.hidden) later.querySelector("input[name=send_at]").focus();
      return;
    }
    if (button.dataset.fuAction !== "schedule") return;
    var composer = area.querySelector(".composer");
    var textarea = composer.querySelector("textarea");
    var when = later.querySelector("input[name=send_at]").value;
    if (!textarea.value.trim()) { MW.toast(t("Write the message first.")); return; }
    if (!when) { MW.toast(t("Give a date and time in the future.")); return; }
    var body = {
      to: composer.dataset.to,
      instance_id: composer.dataset.instanceId,
      text: textarea.value,
      send_at: zonedIso(when, later.dataset.timezone),
    };
    call("POST", "/api/v1/messages", body).then(function (scheduled) {
      if (!scheduled) return;
      textarea.value = "";
      later.hidden = true;
      MW.toast(t("Scheduled for {when}.", { when: when.replace("T", " ") }));
      return refreshLead();
    });
  });

  // A follow-up started or ended: the chat header's ticket status follows.
  MW.on("follow_up_updated", function (data) {
    var id = conversationId();
    if (data.conversation_id !== id) return;
    MW.fragment("/inbox/fragments/chat/" + encodeURIComponent(id)).then(function (content) {
      var fresh = content && content.querySelector(".chat-title");
      var current = chatColumn.querySelector(".chat-title");
      if (fresh && current && conversationId() === id) current.replaceWith(fresh);
    });
  });

  // A follow-up's step went out: its outcome and the next step's time change in the panel.
  MW.on("new_message", function (data) {
    if (data.sender_type === "system" && data.conversation_id === conversationId() && leadColumn.querySelector("[data-testid=follow-up-status][data-status=running]")) refreshLead();
  });
  MW.on("scheduled_message_updated", function (data) {
    if (data.conversation_id && data.conversation_id === conversationId()) refreshLead();
  });
})();
