// The numbers page: cards kept live from `instance_updated` events (each card fetched again from the
// server by id), pause and resume through the instances API, the bind form (one fieldset per
// provider, errors shown at their fields) and the QR dialog of a gateway's number. Markup only ever
// comes from the server; what the API says in JSON is shown with textContent.
(function () {
  "use strict";

  var MW = window.MW;
  var list = document.getElementById("number-list");
  if (!list) return;
  // Gateways rotate their QR code (about every 20 to 40 s): ask again while the dialog is open.
  var QR_REFRESH_MS = 15000;
  var QR_PROVIDERS = ["evolution", "wuzapi"];
  var WEBHOOK_SHOWN = ["meta", "twilio"];

  // -----------------------------------------------------------------------------------------------
  // Cards

  function cardOf(id) {
    return list.querySelector('[data-testid=instance-row][data-instance-id="' + CSS.escape(id) + '"]');
  }

  function updateSummary() {
    var cards = Array.prototype.slice.call(list.querySelectorAll("[data-testid=instance-row]"));
    var values = {
      numbers: cards.length,
      connected: cards.filter(function (c) { return c.dataset.connection === "open"; }).length,
      healthy: cards.filter(function (c) { return c.dataset.healthy === "true"; }).length,
      sent: cards.reduce(function (sum, c) {
        var today = c.querySelector("[data-testid=instance-today]");
        return sum + (today ? Number(today.dataset.sent) || 0 : 0);
      }, 0),
    };
    Object.keys(values).forEach(function (key) {
      var node = document.querySelector('[data-summary="' + key + '"]');
      if (node) node.textContent = String(values[key]);
    });
    var empty = document.getElementById("numbers-empty");
    if (empty) empty.hidden = cards.length > 0;
  }

  // One fetch at a time per number, so an older answer never replaces a newer one.
  var chains = {};
  function refresh(id) {
    var previous = chains[id] || Promise.resolve();
    var next = previous.then(function () {
      return MW.fragment("/numbers/fragments/number/" + encodeURIComponent(id)).then(function (nodes) {
        var old = cardOf(id);
        if (!nodes) { if (old) old.remove(); }
        else if (old) old.replaceWith(nodes);
        else list.appendChild(nodes);
        updateSummary();
      });
    }).catch(function (error) { console.error(error); });
    chains[id] = next;
    return next;
  }

  // A message's status moves a number's counters (sent, delivered, read, failed today) without an
  // event of the number's own: its card is fetched again, once per burst of statuses.
  var COUNTERS_SETTLE_MS = 1500;
  var settling = {};
  function counted(data) {
    var id = data.instance_id;
    if (!id || settling[id] || !cardOf(id)) return;
    settling[id] = setTimeout(function () {
      delete settling[id];
      refresh(id);
    }, COUNTERS_SETTLE_MS);
  }
  MW.on("message_status", counted);
  MW.on("new_message", counted);

  MW.on("instance_updated", function (data) {
    if (!data.instance_id) return;
    refresh(data.instance_id);
    if (data.connection_state === "open" && qr.current === data.instance_id) showConnected();
  });

  function act(id, action) {
    return MW.api("POST", "/api/v1/instances/" + encodeURIComponent(id) + "/" + action).then(function (response) {
      // A refusal says why; the card is fetched again either way (it may have changed meanwhile).
      var said = response.ok
        ? Promise.resolve(MW.t(action === "pause" ? "Paused." : "Resumed."))
        : MW.errorMessage(response);
      return said.then(function (message) {
        MW.toast(message);
        return refresh(id);
      });
    });
  }

  list.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var id = button.closest("[data-testid=instance-row]").dataset.instanceId;
    var action = button.dataset.action;
    if (action === "connect") { openQr(id); return; }
    button.disabled = true;
    act(id, action).finally(function () { button.disabled = false; });
  });

  // The AI assistant's mode of a number (admins): saved at once, the card fetched again either way.
  list.addEventListener("change", function (event) {
    var select = event.target.closest("[data-testid=ai-mode-select]");
    if (!select) return;
    var id = select.closest("[data-testid=instance-row]").dataset.instanceId;
    select.disabled = true;
    MW.api("PATCH", "/api/v1/instances/" + encodeURIComponent(id), { ai_mode: select.value }).then(function (response) {
      var said = response.ok ? Promise.resolve(MW.t("AI assistant mode saved.")) : MW.errorMessage(response);
      return said.then(function (message) {
        MW.toast(message);
        return refresh(id);
      });
    }).finally(function () { select.disabled = false; });
  });

  document.querySelectorAll("dialog [data-close]").forEach(function (button) {
    button.addEventListener("click", function () { button.closest("dialog").close(); });
  });

  // -----------------------------------------------------------------------------------------------
  // Binding a number

  var bindDialog = document.getElementById("bind-dialog");
  var bindForm = document.getElementById("bind-form");
  var bindError = bindDialog && bindDialog.querySelector("[data-testid=bind-error]");
  var bindDone = bindDialog && bindDialog.querySelector("[data-testid=bind-done]");

  function provider() {
    var checked = bindForm.querySelector("input[name=provider]:checked");
    return checked ? checked.value : "meta";
  }

  function showProvider() {
    var chosen = provider();
    bindForm.querySelectorAll(".provider-fields").forEach(function (fieldset) {
      var active = fieldset.dataset.provider === chosen;
      fieldset.disabled = !active;
      fieldset.hidden = !active;
    });
    showMode();
    clearErrors();
  }

  function activeFieldset() {
    return bindForm.querySelector("fieldset:not([disabled])");
  }

  // Whether the gateway's instance is to be made there (Evolution API, WuzAPI), not only bound.
  function creating() {
    var box = activeFieldset().querySelector("input[name=create_on_gateway]");
    return Boolean(box && box.checked);
  }

  // Inputs of the fields that apply: the chosen provider's, in the mode chosen, and the limits.
  function showMode() {
    var mode = creating() ? "create" : "bind";
    bindForm.querySelectorAll("[data-mode]").forEach(function (part) {
      var shown = part.dataset.mode === mode;
      part.hidden = !shown;
      part.querySelectorAll("input").forEach(function (input) { input.disabled = !shown; });
    });
  }

  function activeInputs() {
    var inputs = bindForm.querySelectorAll(
      "fieldset:not([disabled]) input:not([disabled]):not([type=checkbox]), .advanced input:not([disabled])"
    );
    return Array.prototype.slice.call(inputs);
  }

  function clearErrors() {
    bindForm.querySelectorAll(".field.has-error").forEach(function (field) {
      field.classList.remove("has-error");
      var note = field.querySelector(".field-error");
      note.textContent = "";
      note.hidden = true;
    });
    bindError.textContent = "";
    bindError.hidden = true;
  }

  function escaped(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  // Whether a part of the API's message names this field (as api_url, --api-url or "api url").
  function names(part, name) {
    var spellings = [name, "--" + name.replace(/_/g, "-"), name.replace(/_/g, " ")];
    return spellings.some(function (spelling) {
      return new RegExp("(^|[^a-z_-])" + escaped(spelling) + "($|[^a-z_-])", "i").test(part);
    });
  }

  function placeErrors(message) {
    var placed = false;
    message.split("; ").forEach(function (part) {
      activeInputs().forEach(function (input) {
        if (!names(part, input.name)) return;
        var field = input.closest(".field");
        var note = field.querySelector(".field-error");
        field.classList.add("has-error");
        note.textContent = / needs /.test(part) ? MW.t("Required.") : part;
        note.hidden = false;
        placed = true;
      });
    });
    bindError.textContent = placed ? MW.t("Check the fields marked in red.") : message;
    bindError.hidden = false;
  }

  function bindBody() {
    var body = { provider: provider() };
    activeInputs().forEach(function (input) {
      var value = input.value.trim();
      if (!value) return;
      body[input.name] = input.type === "number" ? Number(value) : value;
    });
    return body;
  }

  function bound(item, chosen) {
    MW.toast(MW.t("Number bound."));
    refresh(item.id);
    if (QR_PROVIDERS.indexOf(chosen) >= 0) {
      bindDialog.close();
      openQr(item.id);
    } else if (WEBHOOK_SHOWN.indexOf(chosen) >= 0) {
      bindForm.hidden = true;
      bindDone.hidden = false;
      bindDone.querySelector("[data-testid=bind-webhook-url]").value = item.webhook_url;
    } else {
      bindDialog.close();
    }
  }

  if (bindDialog) {
    document.querySelector("[data-action=bind]").addEventListener("click", function () {
      bindForm.reset();
      bindForm.hidden = false;
      bindDone.hidden = true;
      showProvider();
      bindDialog.showModal();
    });
    bindForm.querySelectorAll("input[name=provider]").forEach(function (radio) {
      radio.addEventListener("change", showProvider);
    });
    bindForm.querySelectorAll("input[name=create_on_gateway]").forEach(function (box) {
      box.addEventListener("change", function () { showMode(); clearErrors(); });
    });
    bindForm.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors();
      var submit = bindForm.querySelector("[type=submit]");
      var chosen = provider();
      submit.disabled = true;
      MW.api("POST", creating() ? "/api/v1/instances/gateway" : "/api/v1/instances", bindBody())
        .then(function (response) {
          if (response.ok) return response.json().then(function (item) { bound(item, chosen); });
          return MW.errorMessage(response).then(placeErrors);
        })
        .finally(function () { submit.disabled = false; });
    });
  }

  // -----------------------------------------------------------------------------------------------
  // Linking a gateway's phone by QR code

  var qrDialog = document.getElementById("qr-dialog");
  var qr = { current: null, timer: null };

  function qrPart(name) {
    return qrDialog.querySelector("[data-testid=" + name + "]");
  }

  function stopQr() {
    clearInterval(qr.timer);
    qr.timer = null;
  }

  function showConnected() {
    if (!qrPart("qr-connected").hidden) return;
    stopQr();
    // Asked once more now that the phone is linked: a number bound without its phone number
    // learns it from the gateway; then its card is fetched again.
    var id = qr.current;
    MW.api("POST", "/numbers/fragments/qr/" + encodeURIComponent(id)).then(function () { return refresh(id); });
    qrDialog.querySelector(".qr-body").hidden = true;
    qrPart("qr-error").hidden = true;
    qrPart("qr-connected").hidden = false;
  }

  function loadQr() {
    var id = qr.current;
    return MW.api("POST", "/numbers/fragments/qr/" + encodeURIComponent(id)).then(function (response) {
      if (qr.current !== id) return null;
      if (!response.ok) {
        return MW.errorMessage(response).then(function (message) {
          qrPart("qr-error").textContent = message;
          qrPart("qr-error").hidden = false;
        });
      }
      return response.text().then(function (html) {
        if (qr.current !== id || !qrPart("qr-connected").hidden) return;
        var template = document.createElement("template");
        template.innerHTML = html; // the server's markup: the QR drawing and our own texts
        qrPart("qr-error").hidden = true;
        qrPart("qr-panel").replaceChildren(template.content);
        var answer = qrPart("qr-answer");
        if (answer && answer.dataset.state === "open") showConnected();
      });
    });
  }

  function openQr(id) {
    if (!qrDialog) return;
    stopQr();
    qr.current = id;
    var waiting = document.createElement("p");
    waiting.className = "muted qr-waiting";
    waiting.textContent = MW.t("Asking the gateway for a QR code...");
    qrPart("qr-panel").replaceChildren(waiting);
    qrDialog.querySelector(".qr-body").hidden = false;
    qrPart("qr-connected").hidden = true;
    qrPart("qr-error").hidden = true;
    if (!qrDialog.open) qrDialog.showModal();
    loadQr();
    qr.timer = setInterval(loadQr, QR_REFRESH_MS);
  }

  if (qrDialog) {
    qrDialog.addEventListener("close", function () {
      stopQr();
      qr.current = null;
    });
  }
})();
