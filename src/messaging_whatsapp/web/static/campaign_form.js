// The campaign form: builds the campaign API's body, shows its 422 errors next to their fields,
// previews each variation filled with a sample row of the CSV, and imports the CSV through the
// API's import endpoint, showing what it accepted and why it refused the rest.
(function () {
  "use strict";

  var form = document.getElementById("campaign-form");
  if (!form) return;
  var initial = JSON.parse(document.getElementById("campaign-initial").textContent);
  var sample = JSON.parse(document.getElementById("campaign-sample").textContent);
  var campaignId = form.dataset.campaignId || null;
  var variations = document.getElementById("variations");
  var template = document.getElementById("variation-template");
  var formError = form.querySelector("[data-testid=form-error]");
  var report = form.querySelector("[data-testid=import-report]");
  var csvInput = document.getElementById("csv-input");
  var csvSummary = form.querySelector("[data-csv-summary]");
  var saveButton = form.querySelector("[data-testid=save-campaign]");
  var openLink = form.querySelector("[data-testid=open-campaign]");
  var csvFile = null;
  var csvHeader = [];

  var PHONE = ["phone", "telefone", "celular", "whatsapp", "numero", "número", "fone", "mobile"];
  var NAMES = ["name", "nome", "first_name", "primeiro_nome"];
  var VARIABLE = /\{\{\s*([\w.-]+)\s*\}\}/g;

  // ---------------------------------------------------------------------------------------------
  // Variations and their preview

  function fill(text, values) {
    return text.replace(VARIABLE, function (_, key) {
      return values && values[key] !== undefined ? String(values[key]).trim() : (values ? "" : "{{" + key + "}}");
    });
  }

  function kindOf(block) { return block.dataset.kind || "text"; }

  function setKind(block, kind) {
    block.dataset.kind = kind;
    block.querySelectorAll("[data-kind]").forEach(function (button) {
      button.classList.toggle("is-active", button.dataset.kind === kind);
    });
    block.querySelector('[data-part="text"]').hidden = kind !== "text";
    block.querySelector('[data-part="template"]').hidden = kind !== "template";
    preview(block);
  }

  function value(block, key) { return block.querySelector('[data-key="' + key + '"]').value; }
  function setValue(block, key, text) { block.querySelector('[data-key="' + key + '"]').value = text == null ? "" : text; }

  function preview(block) {
    var out = block.querySelector("[data-preview]");
    var label = block.querySelector("[data-sample-label]");
    label.textContent = sample ? MW.t("Sample: {phone}", { phone: sample.phone || "" }) : MW.t("No CSV yet: variables show as written.");
    if (kindOf(block) === "template") {
      var parameters = value(block, "template.parameters").split("\n").filter(function (line) { return line.trim(); });
      out.textContent = MW.t("Template") + ": " + value(block, "template.name") + "\n" +
        parameters.map(function (line, index) { return "{{" + (index + 1) + "}} = " + fill(line, sample); }).join("\n");
      return;
    }
    out.textContent = fill(value(block, "content"), sample);
  }

  function renumber() {
    variations.querySelectorAll("[data-variation]").forEach(function (block, index) {
      block.querySelector("[data-title]").textContent = MW.t("Variation {n}", { n: index + 1 });
      block.dataset.index = String(index);
    });
  }

  function addVariation(item) {
    var block = template.content.firstElementChild.cloneNode(true);
    variations.appendChild(block);
    block.querySelectorAll("[data-kind]").forEach(function (button) {
      button.addEventListener("click", function () { setKind(block, button.dataset.kind); });
    });
    block.querySelector("[data-remove]").addEventListener("click", function () {
      if (variations.children.length > 1) { block.remove(); renumber(); }
    });
    block.addEventListener("input", function () { preview(block); });
    block.addEventListener("focusin", function (event) {
      if (event.target.matches("textarea, input")) lastFocused = event.target;
    });
    if (item && item.template) {
      setValue(block, "template.name", item.template.name);
      setValue(block, "template.language", item.template.language);
      setValue(block, "template.parameters", (item.template.parameters || []).join("\n"));
      setKind(block, "template");
    } else {
      if (item) setValue(block, "content", item.content);
      if (item && item.media) {
        ["type", "url", "caption", "filename"].forEach(function (key) { setValue(block, "media." + key, item.media[key]); });
        block.querySelector(".media-details").open = true;
      }
      setKind(block, "text");
    }
    renumber();
    return block;
  }

  var lastFocused = null;
  form.querySelector("[data-add-variation]").addEventListener("click", function () {
    addVariation(null).querySelector("textarea").focus();
  });

  // The CSV's columns as chips that insert {{variable}} where the cursor was.
  function showChips(columns) {
    var box = form.querySelector("[data-variable-chips]");
    box.textContent = "";
    columns.forEach(function (column) {
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = "{{" + column + "}}";
      chip.addEventListener("click", function () {
        var target = lastFocused || variations.querySelector("textarea");
        if (!target) return;
        var start = target.selectionStart || target.value.length;
        target.value = target.value.slice(0, start) + chip.textContent + target.value.slice(target.selectionEnd || start);
        target.dispatchEvent(new Event("input", { bubbles: true }));
        target.focus();
      });
      box.appendChild(chip);
    });
  }

  function refreshPreviews() { variations.querySelectorAll("[data-variation]").forEach(preview); }

  // ---------------------------------------------------------------------------------------------
  // The CSV: read in the page for the sample row; imported by the API on save.

  function splitLine(line, delimiter) {
    var cells = [];
    var cell = "";
    var quoted = false;
    for (var i = 0; i < line.length; i++) {
      var ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') { cell += '"'; i++; }
        else if (ch === '"') quoted = false;
        else cell += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === delimiter) { cells.push(cell); cell = ""; }
      else cell += ch;
    }
    cells.push(cell);
    return cells.map(function (text) { return text.trim(); });
  }

  function readCsv(text) {
    var lines = text.replace(/^\uFEFF/, "").split(/\r?\n/).filter(function (line) { return line.trim(); });
    if (!lines.length) return null;
    var head = text.slice(0, 4096);
    var delimiter = (head.split(";").length > head.split(",").length) ? ";" : ",";
    var header = splitLine(lines[0], delimiter).map(function (column) { return column.toLowerCase(); });
    var rows = lines.slice(1).map(function (line) { return splitLine(line, delimiter); });
    return { header: header, rows: rows };
  }

  function sampleOf(parsed) {
    var row = parsed.rows[0];
    if (!row) return null;
    var values = {};
    parsed.header.forEach(function (column, index) {
      var cell = row[index] || "";
      if (PHONE.indexOf(column) >= 0) values.phone = cell;
      else if (NAMES.indexOf(column) >= 0) values.name = cell;
      else if (column) values[column] = cell;
    });
    return values;
  }

  function variableColumns(header) {
    var columns = ["name"];
    header.forEach(function (column) {
      if (column && PHONE.indexOf(column) < 0 && NAMES.indexOf(column) < 0 && columns.indexOf(column) < 0) columns.push(column);
    });
    return columns;
  }

  csvInput.addEventListener("change", function () {
    csvFile = csvInput.files[0] || null;
    report.hidden = true;
    if (!csvFile) { csvSummary.textContent = ""; return; }
    csvFile.arrayBuffer().then(function (buffer) {
      var text;
      try { text = new TextDecoder("utf-8", { fatal: true }).decode(buffer); }
      catch (error) { text = new TextDecoder("latin1").decode(buffer); }
      var parsed = readCsv(text);
      if (!parsed) return;
      csvHeader = parsed.header;
      csvSummary.textContent = csvFile.name + " · " + MW.t("{rows} rows, columns: {columns}", {
        rows: parsed.rows.length, columns: parsed.header.join(", "),
      });
      sample = sampleOf(parsed) || sample;
      showChips(variableColumns(parsed.header));
      refreshPreviews();
    });
  });

  function showReport(result) {
    report.textContent = "";
    report.hidden = false;
    var head = document.createElement("p");
    head.className = "report-accepted";
    head.dataset.testid = "import-accepted";
    head.dataset.added = String(result.added);
    head.textContent = "✓ " + MW.t("{added} contacts accepted.", { added: result.added });
    report.appendChild(head);
    if (result.duplicates || result.opted_out) {
      var more = document.createElement("p");
      more.className = "muted";
      more.textContent = MW.t("{count} duplicates merged, {opted_out} opted out.", {
        count: result.duplicates, opted_out: result.opted_out,
      });
      report.appendChild(more);
    }
    if (!result.rejected.length) return;
    var refused = document.createElement("p");
    refused.className = "report-refused";
    refused.textContent = MW.t("{count} rows refused:", { count: result.rejected.length });
    report.appendChild(refused);
    var listing = document.createElement("ul");
    listing.className = "rejected-rows";
    listing.dataset.testid = "import-rejected";
    result.rejected.forEach(function (row) {
      var item = document.createElement("li");
      var where = document.createElement("strong");
      where.textContent = (row.line ? MW.t("line {line}", { line: row.line }) + " · " : "") + row.phone;
      item.appendChild(where);
      item.appendChild(document.createTextNode(": " + row.reason));
      listing.appendChild(item);
    });
    report.appendChild(listing);
  }

  function importCsv(id) {
    if (!csvFile) return Promise.resolve(true);
    csvSummary.textContent = MW.t("Importing the contacts...");
    // The file goes as the raw body (MW.api sends JSON), with the same CSRF header.
    return fetch("/api/v1/campaigns/" + encodeURIComponent(id) + "/contacts/import", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": MW.cookie("csrf"), "Content-Type": "text/csv" },
      body: csvFile,
    }).then(function (response) {
      if (!response.ok) {
        return MW.errorMessage(response).then(function (message) {
          markError("contacts", message);
          csvSummary.textContent = message;
          return false;
        });
      }
      return response.json().then(function (result) {
        csvSummary.textContent = csvFile.name;
        showReport(result);
        return true;
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The body the API takes

  function number(input) {
    var text = input.value.trim();
    return text === "" ? null : Number(text);
  }

  function pacingOf(container) {
    var out = {};
    container.querySelectorAll("[data-key]").forEach(function (input) {
      var key = input.dataset.key;
      if (input.tagName === "SELECT") {
        if (input.value !== "") out[key] = input.value === "true";
        return;
      }
      var found = number(input);
      if (found !== null) out[key] = found;
    });
    return out;
  }

  function picked() {
    return Array.prototype.filter.call(form.querySelectorAll("[data-pick]"), function (box) { return box.checked; });
  }

  function body() {
    var settings = pacingOf(form.querySelector('[data-pacing="settings"]'));
    settings.warmup = form.elements.warmup.checked;
    settings.send_window = null;
    if (form.elements.window_enabled.checked) {
      settings.send_window = {
        start: form.elements.window_start.value,
        end: form.elements.window_end.value,
        weekdays: Array.prototype.filter.call(form.querySelectorAll("[data-weekday]"), function (box) {
          return box.checked;
        }).map(function (box) { return Number(box.value); }),
      };
    }
    var instances = picked().map(function (box, index) {
      var card = box.closest("[data-number]");
      var pacing = card.querySelector("[data-pacing]");
      // The API names a number's errors by its place in the list: instances.0.daily_limit.
      pacing.querySelectorAll("[data-field]").forEach(function (field) {
        field.dataset.field = "instances." + index + "." + field.querySelector("[data-key]").dataset.key;
      });
      return Object.assign({ id: box.value }, pacingOf(pacing));
    });
    var messages = Array.prototype.map.call(variations.querySelectorAll("[data-variation]"), function (block, index) {
      block.querySelectorAll("[data-key-field]").forEach(function (field) {
        field.dataset.field = "messages." + index + "." + field.dataset.keyField;
      });
      if (kindOf(block) === "template") {
        return {
          order: index,
          template: {
            name: value(block, "template.name").trim(),
            language: value(block, "template.language").trim() || "pt_BR",
            parameters: value(block, "template.parameters").split("\n").filter(function (line) { return line.trim(); }),
          },
        };
      }
      var message = { order: index, content: value(block, "content") || null };
      var mediaType = value(block, "media.type");
      if (mediaType) {
        message.media = {
          type: mediaType,
          url: value(block, "media.url").trim(),
          caption: value(block, "media.caption") || null,
          filename: value(block, "media.filename") || null,
        };
      }
      return message;
    });
    var scheduled = form.elements.scheduled_at.value;
    return {
      name: form.elements.name.value.trim(),
      description: form.elements.description.value.trim() || null,
      rotation_mode: form.elements.rotation_mode.value,
      instances: instances,
      messages: messages,
      settings: settings,
      scheduled_at: scheduled ? new Date(scheduled).toISOString() : null,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Errors in place

  function clearErrors() {
    formError.hidden = true;
    form.querySelectorAll(".has-error").forEach(function (field) { field.classList.remove("has-error"); });
    form.querySelectorAll("[data-error]").forEach(function (node) { node.textContent = ""; });
  }

  // The field named by `location` (settings.send_window.start), or the nearest one above it; an
  // error about a whole object that names one of its fields (settings: "interval_max_s must not
  // be below interval_min_s") goes to the first field it names.
  function markError(location, message) {
    var named = (message.match(/[a-z_]+/g) || []).map(function (word) { return location + "." + word; });
    var candidates = named.filter(function (name) {
      return form.querySelector('[data-field="' + CSS.escape(name) + '"]');
    });
    var parts = (candidates[0] || location).split(".");
    var text = MW.t(message);
    while (parts.length) {
      var field = form.querySelector('[data-field="' + CSS.escape(parts.join(".")) + '"]');
      if (field) {
        field.classList.add("has-error");
        var slot = field.querySelector("[data-error]");
        slot.textContent = slot.textContent ? slot.textContent + " " + text : text;
        var details = field.closest("details");
        if (details) details.open = true;
        return true;
      }
      parts.pop();
    }
    return false;
  }

  // Domain refusals that concern the variations as a whole.
  var CODE_FIELDS = {
    template_required: "messages", template_unsupported: "messages",
    caption_unsupported: "messages", text_too_long: "messages", invalid_csv: "contacts",
  };

  function showErrors(response) {
    return response.json().catch(function () { return {}; }).then(function (payload) {
      var error = payload.error || {};
      var message = error.message || MW.t("Something went wrong. Try again.");
      var unplaced = [];
      if (error.code === "validation_error") {
        // "settings.interval_max_s: Value error, ...; name: String should have ..."
        message.split("; ").forEach(function (part) {
          var colon = part.indexOf(": ");
          var location = colon > 0 ? part.slice(0, colon) : "";
          var text = colon > 0 ? part.slice(colon + 2).replace(/^Value error, /, "") : part;
          if (!location || !markError(location, text)) unplaced.push(part);
        });
      } else if (CODE_FIELDS[error.code] && markError(CODE_FIELDS[error.code], message)) {
        unplaced = [];
      } else {
        unplaced.push(message);
      }
      formError.textContent = unplaced.length ? unplaced.join(" · ") : MW.t("Fix the fields marked in red.");
      formError.hidden = false;
      var first = form.querySelector(".has-error") || formError;
      first.scrollIntoView({ block: "center", behavior: "smooth" });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Saving

  function saved(id) {
    openLink.href = "/campaigns/" + encodeURIComponent(id);
    openLink.hidden = false;
    MW.toast(MW.t("Campaign saved."));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var data = body();
    saveButton.disabled = true;
    saveButton.textContent = MW.t("Saving...");
    var request = campaignId
      ? MW.api("PATCH", "/api/v1/campaigns/" + encodeURIComponent(campaignId), data)
      : MW.api("POST", "/api/v1/campaigns", data);
    request.then(function (response) {
      if (!response.ok) return showErrors(response);
      return response.json().then(function (campaign) {
        if (!campaignId) {
          campaignId = campaign.id;
          form.dataset.campaignId = campaign.id;
          // Saved once: saving again changes this draft instead of making another.
          history.replaceState(null, "", "/campaigns/" + encodeURIComponent(campaign.id) + "/edit");
        }
        return importCsv(campaign.id).then(function (imported) {
          if (imported) { csvFile = null; csvInput.value = ""; }
          saved(campaign.id);
        });
      });
    }).catch(function () {
      formError.textContent = MW.t("Something went wrong. Try again.");
      formError.hidden = false;
    }).then(function () {
      saveButton.disabled = false;
      saveButton.textContent = MW.t(campaignId ? "Save changes" : "Save draft");
    });
  });

  // ---------------------------------------------------------------------------------------------
  // The form as the campaign is (edit) or empty (new)

  form.elements.window_enabled.addEventListener("change", function () {
    form.querySelector("[data-window]").hidden = !form.elements.window_enabled.checked;
  });

  function load(campaign) {
    form.elements.name.value = campaign.name;
    form.elements.description.value = campaign.description || "";
    form.elements.rotation_mode.value = campaign.rotation_mode;
    var s = campaign.settings;
    form.elements.warmup.checked = s.warmup;
    var pacing = form.querySelector('[data-pacing="settings"]');
    pacing.querySelectorAll("[data-key]").forEach(function (input) {
      var found = s[input.dataset.key];
      input.value = found === null || found === undefined ? "" : String(found);
    });
    if (s.send_window) {
      form.elements.window_enabled.checked = true;
      form.querySelector("[data-window]").hidden = false;
      form.elements.window_start.value = s.send_window.start.slice(0, 5);
      form.elements.window_end.value = s.send_window.end.slice(0, 5);
      form.querySelectorAll("[data-weekday]").forEach(function (box) {
        box.checked = s.send_window.weekdays.indexOf(Number(box.value)) >= 0;
      });
    }
    if (campaign.scheduled_at) {
      var local = new Date(campaign.scheduled_at);
      local.setMinutes(local.getMinutes() - local.getTimezoneOffset());
      form.elements.scheduled_at.value = local.toISOString().slice(0, 16);
    }
    campaign.instances.forEach(function (link) {
      var card = form.querySelector('[data-number="' + CSS.escape(link.instance_id) + '"]');
      if (!card) return;
      card.querySelector("[data-pick]").checked = true;
      card.classList.add("is-picked");
      card.querySelectorAll("[data-pacing] [data-key]").forEach(function (input) {
        var found = link[input.dataset.key];
        input.value = found === null || found === undefined ? "" : String(found);
      });
    });
    campaign.messages.forEach(addVariation);
  }

  form.querySelectorAll("[data-pick]").forEach(function (box) {
    box.addEventListener("change", function () { box.closest("[data-number]").classList.toggle("is-picked", box.checked); });
  });

  if (initial) load(initial);
  if (!variations.children.length) addVariation(null);
  if (sample) showChips(variableColumns(Object.keys(sample)));
})();
