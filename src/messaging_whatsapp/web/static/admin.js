// The admin page: tabs, and every change through the API (MW.api sends the CSRF token). After a
// change the table is reloaded from the server (/admin/fragments/...); a refusal shows the API's
// reason next to its field or in the toast, in the page's language where the reason is known.
(function () {
  "use strict";

  var MW = window.MW;
  var root = document.querySelector("[data-testid=admin-page]");
  if (!root) return;

  // ---------------------------------------------------------------------------------------------
  // Tabs (the hash keeps the tab over a reload)

  function showTab(name) {
    var found = root.querySelector("[data-tab='" + name + "']");
    if (!found) return;
    root.querySelectorAll("[data-tab]").forEach(function (tab) {
      var active = tab === found;
      tab.classList.toggle("is-active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
    });
    root.querySelectorAll("[data-panel]").forEach(function (panel) {
      panel.hidden = panel.dataset.panel !== name;
    });
  }

  root.querySelectorAll("[data-tab]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      showTab(tab.dataset.tab);
      history.replaceState(null, "", "#" + tab.dataset.tab);
    });
  });
  showTab(location.hash.slice(1) || "users");
  window.addEventListener("hashchange", function () { showTab(location.hash.slice(1) || "users"); });

  // ---------------------------------------------------------------------------------------------
  // Refusals: the API's reason, put in words the page's language knows

  // Codes whose message carries values (an email, a name): one sentence per code instead.
  var CODE_TEXTS = {
    last_admin: "This is the tenant's last active admin: make another user admin first.",
    invalid_timezone: "Unknown time zone: pick one from the list, such as America/Sao_Paulo.",
    invalid_country: "Unknown country: pick one from the list.",
    invalid_retention: "Keep data 1 to 3650 days, or leave it empty to keep it forever.",
  };
  // A field's own sentence when the request's validation (422 validation_error) names it.
  var FIELD_TEXTS = {
    name: "Give the business a name.",
    timezone: "Unknown time zone: pick one from the list, such as America/Sao_Paulo.",
    default_country: "Unknown country: pick one from the list.",
    ticket_inactivity_minutes: "Use 0 (never close) to 527040 minutes.",
    retention_messages_days: "Keep data 1 to 3650 days, or leave it empty to keep it forever.",
    retention_closed_tickets_days: "Keep data 1 to 3650 days, or leave it empty to keep it forever.",
    retention_raw_requests_days: "Keep data 1 to 3650 days, or leave it empty to keep it forever.",
    email: "email is not valid",
  };

  function reasonOf(error) {
    if (CODE_TEXTS[error.code]) return MW.t(CODE_TEXTS[error.code]);
    if (error.code === "weak_password" && MW.t(error.message) === error.message) {
      // zxcvbn's own warning (English) follows "password is too weak:": the gist, translated.
      return MW.t("This password is too easy to guess: use a longer phrase of unrelated words.");
    }
    return MW.t(error.message);
  }

  // The field a refusal is about: by its code, else the field its validation message names.
  function fieldOf(error, form) {
    var byCode = {
      weak_password: "password",
      invalid_timezone: "timezone",
      invalid_country: "default_country",
    };
    if (byCode[error.code]) return byCode[error.code];
    if (error.code === "conflict" && form.id === "user-form") return "email";
    var named = null;
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      var field = slot.dataset.errorFor;
      if (!named && (error.message || "").indexOf(field) === 0) named = field;
    });
    return named;
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      slot.hidden = true;
      slot.textContent = "";
    });
    form.querySelectorAll(".has-error").forEach(function (node) { node.classList.remove("has-error"); });
  }

  function showError(form, field, message) {
    var slot = field && form.querySelector("[data-error-for='" + field + "']");
    if (!slot) { MW.toast(message); return; }
    slot.textContent = message;
    slot.hidden = false;
    var holder = form.querySelector("[data-field='" + field + "']");
    if (holder) holder.classList.add("has-error");
    var input = form.querySelector("[name='" + field + "']");
    if (input) input.focus();
  }

  // A validation refusal names each field ("field: problem; other: problem"): each in place.
  function refuseFields(message, form) {
    var shown = 0;
    message.split("; ").forEach(function (part) {
      var field = fieldOf({ code: "validation_error", message: part }, form);
      if (!field) return;
      showError(form, field, FIELD_TEXTS[field] ? MW.t(FIELD_TEXTS[field]) : part);
      shown += 1;
    });
    if (!shown) MW.toast(message);
  }

  // The refusal of `response` shown on `form` (next to its field) or in the toast.
  function refuse(response, form) {
    return response.json().then(
      function (body) {
        var error = body.error || {};
        if (form && error.code === "validation_error") { refuseFields(error.message || "", form); return; }
        var field = form ? fieldOf(error, form) : null;
        var message = error.code === "conflict" && field === "email"
            ? MW.t("A user with this email already exists.")
            : reasonOf(error);
        if (form) showError(form, field, message);
        else MW.toast(message);
      },
      function () { MW.toast(MW.t("Something went wrong. Try again.")); }
    );
  }

  function busy(form, on) {
    form.querySelectorAll("button[type=submit]").forEach(function (button) { button.disabled = on; });
  }

  // ---------------------------------------------------------------------------------------------
  // Confirming a change (a dialog of the page's own, saying what will happen)

  var dialog = document.getElementById("confirm-dialog");

  function confirmChange(message, label) {
    dialog.querySelector("[data-confirm-message]").textContent = message;
    dialog.querySelector("[data-confirm-ok]").textContent = label;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function done() {
        dialog.removeEventListener("close", done);
        resolve(dialog.returnValue === "ok");
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Reloading a table from the server

  function reload(url, bodyId, countTab) {
    return MW.fragment(url).then(function (nodes) {
      if (!nodes) return;
      var body = document.getElementById(bodyId);
      body.replaceChildren(nodes);
      var count = root.querySelector("[data-tab='" + countTab + "'] .tab-count");
      if (count) {
        count.textContent = body.querySelectorAll(countTab === "users"
          ? "[data-testid=user-row]"
          : "[data-testid=key-row][data-revoked=false]").length;
      }
    });
  }

  function reloadUsers() { return reload("/admin/fragments/users", "user-rows", "users"); }
  function reloadKeys() { return reload("/admin/fragments/api-keys", "key-rows", "api-keys"); }

  // ---------------------------------------------------------------------------------------------
  // Forms that open and close

  root.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-action=toggle-form]");
    if (!toggle) return;
    var form = document.getElementById(toggle.dataset.form);
    form.hidden = !form.hidden;
    clearErrors(form);
    if (form.hidden) { form.reset(); return; }
    var first = form.querySelector("input");
    if (first) first.focus();
  });

  // ---------------------------------------------------------------------------------------------
  // Users

  var userForm = document.getElementById("user-form");
  userForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(userForm);
    var data = new FormData(userForm);
    if (!String(data.get("email")).trim()) { showError(userForm, "email", MW.t("email is not valid")); return; }
    var body = { email: String(data.get("email")).trim(), password: String(data.get("password")), role: data.get("role") };
    busy(userForm, true);
    MW.api("POST", "/api/v1/users", body).then(function (response) {
      if (!response.ok) return refuse(response, userForm);
      userForm.reset();
      userForm.hidden = true;
      MW.toast(MW.t("User created."));
      return reloadUsers();
    }).finally(function () { busy(userForm, false); });
  });

  // Changing oneself ends one's own session too: the confirmation says so.
  function isMe(row) {
    return row.dataset.userId === root.dataset.me;
  }

  function userRow(node) {
    return node.closest("[data-testid=user-row]");
  }

  function changeUser(row, method, url, body, done) {
    return MW.api(method, url, body).then(function (response) {
      if (!response.ok) { refuse(response, null); return reloadUsers(); }
      MW.toast(MW.t(done));
      return reloadUsers();
    });
  }

  root.addEventListener("change", function (event) {
    var select = event.target.closest("[data-action=change-role]");
    if (!select) return;
    var row = userRow(select);
    var role = select.value;
    var message = isMe(row)
      ? MW.t("Change your own role to {role}? You will have to log in again.", { role: MW.t(role) })
      : MW.t("Change the role of {email} to {role}? They will have to log in again.", {
        email: row.dataset.email,
        role: MW.t(role),
      });
    confirmChange(message, MW.t("Change role")).then(function (yes) {
      if (!yes) { select.value = row.dataset.role; return; }
      changeUser(row, "PATCH", "/api/v1/users/" + row.dataset.userId, { role: role }, "Role changed.");
    });
  });

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action=deactivate], [data-action=reactivate]");
    if (!button) return;
    var row = userRow(button);
    var id = row.dataset.userId;
    if (button.dataset.action === "deactivate") {
      var message = isMe(row)
        ? MW.t("Deactivate your own account? You are logged out at once and can no longer log in.")
        : MW.t("Deactivate {email}? They are logged out at once and can no longer log in.", { email: row.dataset.email });
      confirmChange(message, MW.t("Deactivate")).then(function (yes) {
        if (yes) changeUser(row, "POST", "/api/v1/users/" + id + "/deactivate", undefined, "User deactivated.");
      });
      return;
    }
    var again = MW.t("Reactivate {email}? They can log in again.", { email: row.dataset.email });
    confirmChange(again, MW.t("Reactivate")).then(function (yes) {
      if (yes) changeUser(row, "PATCH", "/api/v1/users/" + id, { is_active: true }, "User reactivated.");
    });
  });

  // ---------------------------------------------------------------------------------------------
  // API keys

  var keyForm = document.getElementById("key-form");
  var scopeList = keyForm.querySelector("[data-scopes]");
  keyForm.addEventListener("change", function (event) {
    if (event.target.name === "limit") scopeList.hidden = event.target.value !== "scopes";
  });
  keyForm.addEventListener("reset", function () { scopeList.hidden = true; });

  keyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(keyForm);
    var data = new FormData(keyForm);
    var name = String(data.get("name")).trim();
    if (!name) { showError(keyForm, "name", MW.t("Give the key a name.")); return; }
    var body = { name: name, role: data.get("role") };
    if (data.get("limit") === "scopes") body.scopes = data.getAll("scope");
    busy(keyForm, true);
    MW.api("POST", "/api/v1/api-keys", body).then(function (response) {
      if (!response.ok) return refuse(response, keyForm);
      return response.json().then(function (created) {
        keyForm.reset();
        keyForm.hidden = true;
        reveal(created.api_key);
        return reloadKeys();
      });
    }).finally(function () { busy(keyForm, false); });
  });

  var revealBox = document.getElementById("key-reveal");
  var keyValue = document.getElementById("key-value");

  // The new key, shown once: it lives only in this element until "I have copied it".
  function reveal(raw) {
    keyValue.textContent = raw;
    revealBox.hidden = false;
    revealBox.scrollIntoView({ block: "nearest" });
  }

  function copied(ok) {
    MW.toast(ok ? MW.t("Copied.") : MW.t("Copy failed: select the key and copy it."));
  }

  revealBox.addEventListener("click", function (event) {
    var action = event.target.closest("[data-action]");
    if (!action) return;
    if (action.dataset.action === "hide-key") {
      keyValue.textContent = "";
      revealBox.hidden = true;
      return;
    }
    var raw = keyValue.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(raw).then(function () { copied(true); }, function () { copied(false); });
      return;
    }
    // Plain http (an intranet install): select the text and copy the old way.
    var range = document.createRange();
    range.selectNodeContents(keyValue);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (error) { ok = false; }
    copied(ok);
  });

  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action=revoke]");
    if (!button) return;
    var row = button.closest("[data-testid=key-row]");
    var message = MW.t("Revoke the API key {name}? Every system using it is refused at once.", { name: row.dataset.name });
    confirmChange(message, MW.t("Revoke")).then(function (yes) {
      if (!yes) return;
      MW.api("POST", "/api/v1/api-keys/" + row.dataset.keyId + "/revoke").then(function (response) {
        if (!response.ok) { refuse(response, null); return; }
        MW.toast(MW.t("API key revoked."));
        return reloadKeys();
      });
    });
  });

  // ---------------------------------------------------------------------------------------------
  // Settings

  var settingsForm = document.getElementById("settings-form");
  var NUMBERS = ["ticket_inactivity_minutes"];
  var RETENTION = ["retention_messages_days", "retention_closed_tickets_days", "retention_raw_requests_days"];

  function settingsBody() {
    var data = new FormData(settingsForm);
    var body = {
      name: String(data.get("name")).trim(),
      timezone: String(data.get("timezone")).trim(),
      default_country: data.get("default_country"),
    };
    NUMBERS.forEach(function (field) { body[field] = Number(data.get(field)); });
    // Empty: keep forever (null turns retention off).
    RETENTION.forEach(function (field) {
      var value = String(data.get(field)).trim();
      body[field] = value === "" ? null : Number(value);
    });
    return body;
  }

  // What the browser can tell before asking: an empty name, a number that is not whole.
  function firstProblem(body) {
    if (!body.name) return ["name", FIELD_TEXTS.name];
    var numeric = NUMBERS.concat(RETENTION).filter(function (field) {
      return body[field] !== null && !Number.isInteger(body[field]);
    });
    return numeric.length ? [numeric[0], FIELD_TEXTS[numeric[0]]] : null;
  }

  settingsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors(settingsForm);
    var body = settingsBody();
    var problem = firstProblem(body);
    if (problem) { showError(settingsForm, problem[0], MW.t(problem[1])); return; }
    busy(settingsForm, true);
    MW.api("PATCH", "/api/v1/tenant", body).then(function (response) {
      if (!response.ok) return refuse(response, settingsForm);
      return response.json().then(function (tenant) {
        settingsForm.querySelectorAll("input, select").forEach(function (input) {
          // What was saved becomes what "Undo changes" returns to.
          if (input.name in tenant) input.defaultValue = tenant[input.name] === null ? "" : tenant[input.name];
        });
        settingsForm.querySelectorAll("select[name=default_country] option").forEach(function (option) {
          option.defaultSelected = option.value === tenant.default_country;
        });
        document.querySelectorAll(".admin-tenant").forEach(function (node) { node.textContent = tenant.name; });
        MW.toast(MW.t("Settings saved."));
      });
    }).finally(function () { busy(settingsForm, false); });
  });
  settingsForm.addEventListener("reset", function () { clearErrors(settingsForm); });
})();
