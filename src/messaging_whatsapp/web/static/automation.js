// The automation page: rules (enable, create, edit, delete), intents (keywords as chips) and
// business hours, all through the automation API. A 422 names its field; its message goes in the
// field's error slot (data-error-for), else at the foot of the form.
(function () {
  "use strict";

  var rulesBox = document.getElementById("automation-rules");
  var editor = document.querySelector("[data-testid=rule-editor]");
  var ruleForm = document.querySelector("[data-testid=rule-form]");
  var intentsForm = document.querySelector("[data-testid=intents-form]");
  var hoursForm = document.querySelector("[data-testid=business-hours-form]");
  var RULES = "/api/v1/automation/rules";

  function rulesData() {
    var node = document.getElementById("rules-data");
    return node ? JSON.parse(node.textContent) : [];
  }

  function refreshRules() {
    return MW.fragment("/automation/fragments/rules").then(function (nodes) {
      if (nodes) rulesBox.replaceChildren(nodes);
    }).catch(function () { /* a reload shows it */ });
  }

  // ---- errors next to their fields

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (slot) { slot.textContent = ""; });
    form.querySelectorAll(".has-error").forEach(function (node) { node.classList.remove("has-error"); });
  }

  // "then.buttons.buttons.0.title" (pydantic, with the union's tag) -> "then.buttons.0.title";
  // "intents[1].name" -> "intents.1.name".
  function fieldPath(error, message) {
    var path = error.field || (message.indexOf(": ") > 0 ? message.slice(0, message.indexOf(": ")) : "");
    var parts = path.replace(/\[(\d+)\]/g, ".$1").split(".").filter(Boolean);
    if ((parts[0] === "when" || parts[0] === "then") && parts.length > 2 && parts[1] === parts[2]) parts.splice(1, 1);
    else if ((parts[0] === "when" || parts[0] === "then") && parts.length > 1 && /^(new_ticket|keyword|intent|outside_hours|no_agent_answer|text|buttons|template|assign|close|follow_up)$/.test(parts[1]) && parts.length > 2) parts.splice(1, 1);
    return parts.join(".");
  }

  function showError(form, response) {
    return response.json().then(function (body) {
      var error = (body && body.error) || {};
      var message = error.message || MW.t("Something went wrong. Try again.");
      var path = fieldPath(error, message);
      var best = null;
      form.querySelectorAll("[data-error-for]").forEach(function (slot) {
        var key = slot.dataset.errorFor;
        if (key && (path === key || path.indexOf(key + ".") === 0) && (!best || key.length > best.dataset.errorFor.length)) best = slot;
      });
      // Next to its field the message needs no path in front of it.
      if (best && path === best.dataset.errorFor && message.indexOf(": ") > 0) message = message.slice(message.indexOf(": ") + 2);
      best = best || form.querySelector("[data-error-for='']");
      best.textContent = message;
      var field = best.closest(".field");
      if (field) field.classList.add("has-error");
    }, function () { MW.toast(MW.t("Something went wrong. Try again.")); });
  }

  // ---- the rule form

  function showParts() {
    if (!ruleForm) return;
    var when = ruleForm.elements.when_type.value;
    var then = ruleForm.elements.then_type.value;
    ruleForm.querySelectorAll("[data-when]").forEach(function (node) { node.hidden = node.dataset.when.split(" ").indexOf(when) < 0; });
    ruleForm.querySelectorAll("[data-then]").forEach(function (node) { node.hidden = node.dataset.then.split(" ").indexOf(then) < 0; });
  }

  function openForm(rule) {
    clearErrors(ruleForm);
    ruleForm.reset();
    var f = ruleForm.elements;
    f.id.value = rule ? rule.id : "";
    editor.querySelector("[data-role=form-title]").textContent = MW.t(rule ? "Edit rule" : "New rule");
    if (rule) {
      f.name.value = rule.name;
      f.position.value = rule.position;
      f.enabled.checked = rule.enabled;
      f.once_per_ticket.checked = rule.once_per_ticket;
      f.when_type.value = rule.when.type;
      f.when_keywords.value = (rule.when.keywords || []).join(", ");
      if (rule.when.intent) f.when_intent.value = rule.when.intent;
      if (rule.when.minutes) f.when_minutes.value = rule.when.minutes;
      f.then_type.value = rule.then.type;
      f.then_text.value = rule.then.text || "";
      (rule.then.buttons || []).forEach(function (button, index) {
        f["button_id_" + index].value = button.id;
        f["button_title_" + index].value = button.title;
      });
      if (rule.then.template) {
        f.template_name.value = rule.then.template.name;
        f.template_language.value = rule.then.template.language;
        f.template_parameters.value = (rule.then.template.parameters || []).join("\n");
      }
      if (rule.then.user_id) f.then_user_id.value = rule.then.user_id;
      if (rule.then.steps) {
        f.follow_up_steps.value = rule.then.steps.map(stepLine).join("\n");
        f.follow_up_close.checked = rule.then.close_ticket !== false;
        f.follow_up_hours.checked = !!rule.then.business_hours_only;
      }
      ruleForm.querySelectorAll("input[name=instance_ids]").forEach(function (box) { box.checked = rule.instance_ids.indexOf(box.value) >= 0; });
    } else {
      // A new rule starts as seed 001's greeting: the default buttons on every new ticket.
      f.then_type.value = "buttons";
    }
    showParts();
    editor.hidden = false;
    editor.scrollIntoView({ behavior: "smooth", block: "start" });
    f.name.focus();
  }

  // A follow-up step as the form writes it: "60 | text" or "60 | template:name" (minutes).
  function stepLine(step) {
    var what = step.template ? "template:" + step.template.name : step.text;
    return Math.round(step.delay_seconds / 60) + " | " + what;
  }

  function parseStep(line) {
    var bar = line.indexOf("|");
    var minutes = bar < 0 ? NaN : Number(line.slice(0, bar).trim());
    var what = bar < 0 ? line.trim() : line.slice(bar + 1).trim();
    // A line the API cannot take is sent as it is, so its 422 says what is wrong with it.
    var step = { delay_seconds: isNaN(minutes) ? -1 : Math.round(minutes * 60) };
    if (/^template:/.test(what)) step.template = { name: what.slice(9).trim(), language: "pt_BR" };
    else step.text = what;
    return step;
  }

  function splitList(text) {
    return String(text || "").split(/[,\n]/).map(function (part) { return part.trim(); }).filter(Boolean);
  }

  function ruleBody() {
    var f = ruleForm.elements;
    var when = { type: f.when_type.value };
    if (when.type === "keyword") when.keywords = splitList(f.when_keywords.value);
    if (when.type === "intent") when.intent = f.when_intent.value;
    if (when.type === "no_agent_answer") when.minutes = Number(f.when_minutes.value);
    var then = { type: f.then_type.value };
    var text = f.then_text.value.trim();
    if (then.type === "text" && text) then.text = text;
    if (then.type === "buttons") {
      if (text) then.text = text;
      var buttons = [];
      for (var i = 0; i < 3; i++) {
        var id = f["button_id_" + i].value.trim();
        var title = f["button_title_" + i].value.trim();
        if (id || title) buttons.push({ id: id, title: title });
      }
      if (buttons.length) then.buttons = buttons;
    }
    if (then.type === "template") {
      then.template = { name: f.template_name.value.trim(), language: f.template_language.value.trim(), parameters: f.template_parameters.value.split("\n").map(function (p) { return p.trim(); }).filter(Boolean) };
    }
    if (then.type === "assign") then.user_id = f.then_user_id.value;
    if (then.type === "follow_up") {
      then.steps = f.follow_up_steps.value.split("\n").filter(function (line) { return line.trim(); }).map(parseStep);
      then.close_ticket = f.follow_up_close.checked;
      then.business_hours_only = f.follow_up_hours.checked;
    }
    var instances = Array.prototype.filter.call(ruleForm.querySelectorAll("input[name=instance_ids]"), function (box) { return box.checked; })
      .map(function (box) { return box.value; });
    return {
      name: f.name.value.trim(),
      position: Number(f.position.value || 0),
      enabled: f.enabled.checked,
      once_per_ticket: f.once_per_ticket.checked,
      instance_ids: instances,
      when: when,
      then: then,
    };
  }

  if (ruleForm) {
    ruleForm.addEventListener("change", function (event) {
      if (event.target.name === "when_type" || event.target.name === "then_type") showParts();
    });
    ruleForm.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(ruleForm);
      var id = ruleForm.elements.id.value;
      var request = id ? MW.api("PATCH", RULES + "/" + encodeURIComponent(id), ruleBody()) : MW.api("POST", RULES, ruleBody());
      request.then(function (response) {
        if (!response.ok) return showError(ruleForm, response);
        editor.hidden = true;
        MW.toast(MW.t("Rule saved"));
        return refreshRules();
      });
    });
    editor.addEventListener("click", function (event) {
      if (event.target.closest("[data-action=cancel-rule]")) editor.hidden = true;
    });
  }

  rulesBox.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button) return;
    var row = button.closest("[data-rule-id]");
    if (button.dataset.action === "new-rule") return openForm(null);
    if (!row) return;
    var id = row.dataset.ruleId;
    if (button.dataset.action === "edit-rule") {
      var rule = rulesData().find(function (r) { return r.id === id; });
      if (rule) openForm(rule);
    }
    if (button.dataset.action === "delete-rule") {
      if (!window.confirm(MW.t("Delete the rule \"{name}\"?", { name: button.dataset.name }))) return;
      MW.api("DELETE", RULES + "/" + encodeURIComponent(id)).then(function (response) {
        if (!response.ok) return MW.errorMessage(response).then(MW.toast);
        MW.toast(MW.t("Rule deleted"));
        return refreshRules();
      });
    }
  });

  rulesBox.addEventListener("change", function (event) {
    if (!event.target.classList.contains("rule-enabled")) return;
    var row = event.target.closest("[data-rule-id]");
    MW.api("PATCH", RULES + "/" + encodeURIComponent(row.dataset.ruleId), { enabled: event.target.checked }).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Rule saved"));
      return refreshRules();
    });
  });

  // ---- intents: keywords as chips

  function addChip(input) {
    var value = input.value.replace(/,/g, " ").trim();
    input.value = "";
    if (!value) return;
    var chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.value = value;
    chip.textContent = value;
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "chip-remove";
    remove.setAttribute("aria-label", MW.t("Remove"));
    remove.textContent = "×";
    chip.appendChild(remove);
    input.parentNode.insertBefore(chip, input);
  }

  if (intentsForm && intentsForm.querySelector("[data-testid=save-intents]")) {
    intentsForm.addEventListener("keydown", function (event) {
      if (!event.target.classList.contains("chip-input")) return;
      if (event.key === "Enter" || event.key === ",") {
        event.preventDefault();
        addChip(event.target);
      } else if (event.key === "Backspace" && !event.target.value) {
        var last = event.target.previousElementSibling;
        if (last && last.classList.contains("chip")) last.remove();
      }
    });
    intentsForm.addEventListener("focusout", function (event) {
      if (event.target.classList.contains("chip-input")) addChip(event.target);
    });
    intentsForm.addEventListener("click", function (event) {
      if (event.target.closest(".chip-remove")) event.target.closest(".chip").remove();
      if (event.target.closest("[data-action=remove-intent]")) event.target.closest(".intent-row").remove();
      if (event.target.closest("[data-action=add-intent]")) {
        var row = document.getElementById("intent-template").content.firstElementChild.cloneNode(true);
        intentsForm.querySelector(".intent-list").appendChild(row);
        row.querySelector("input").focus();
      }
    });
    intentsForm.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(intentsForm);
      intentsForm.querySelectorAll(".chip-input").forEach(addChip);
      var intents = Array.prototype.map.call(intentsForm.querySelectorAll(".intent-row"), function (row) {
        return {
          name: row.querySelector("[name=intent_name]").value.trim(),
          keywords: Array.prototype.map.call(row.querySelectorAll(".chip"), function (chip) { return chip.dataset.value; }),
          button_payloads: splitList(row.querySelector("[name=intent_payloads]").value),
        };
      });
      MW.api("PUT", "/api/v1/automation/intents", { intents: intents }).then(function (response) {
        if (!response.ok) return showError(intentsForm, response);
        MW.toast(MW.t("Intents saved"));
      });
    });
  }

  // ---- business hours

  function schedule() {
    var week = {};
    hoursForm.querySelectorAll("tr[data-day]").forEach(function (row) {
      var day = row.dataset.day;
      week[day] = [];
      row.querySelectorAll("td.shift").forEach(function (cell) {
        var times = cell.querySelectorAll("input[type=time]");
        var start = times[0].value, end = times[1].value;
        // A shift to 23:59 runs to midnight.
        if (start && end) week[day].push([start, end === "23:59" ? "24:00" : end]);
      });
    });
    return week;
  }

  function saveHours(body) {
    clearErrors(hoursForm);
    MW.api("PUT", "/api/v1/automation/business-hours", body).then(function (response) {
      if (!response.ok) return showError(hoursForm, response);
      MW.toast(MW.t("Business hours saved"));
      if (body.schedule === null) hoursForm.querySelectorAll("input[type=time]").forEach(function (input) { input.value = ""; });
    });
  }

  if (hoursForm && hoursForm.querySelector("[data-testid=save-hours]")) {
    hoursForm.addEventListener("submit", function (event) {
      event.preventDefault();
      saveHours({ schedule: schedule(), away_message: hoursForm.elements.away_message.value });
    });
    hoursForm.addEventListener("click", function (event) {
      if (event.target.closest("[data-action=clear-hours]")) saveHours({ schedule: null, away_message: hoursForm.elements.away_message.value });
    });
  }
})();
