// The knowledge base's Assistant tab: save the settings (admins) through the API and fetch the
// card again; try a question and show the answer, its sources or the handoff with its reason.
// What the API answers (a tenant's text, a source's name) is shown with textContent only.
(function () {
  "use strict";

  var box = document.getElementById("assistant-settings-box");
  var previewForm = document.getElementById("assistant-preview-form");
  var answer = document.getElementById("assistant-preview-answer");
  if (!box || !previewForm) return;

  var REASONS = {
    no_knowledge: "Nothing in the knowledge base answers this.",
    model_handoff: "The model found no answer in the sources it was given.",
    ai_failed: "The AI server could not be reached or refused the question.",
    ai_not_configured: "No AI server is set up.",
  };

  function refresh() {
    return MW.fragment("/knowledge/fragments/assistant").then(function (nodes) {
      if (nodes) box.replaceChildren(nodes);
    });
  }

  // What the form changes: empty optional fields go back to the engine's (null); the key only
  // when one is typed, or removed on purpose.
  function changes(form) {
    var value = function (name) { return form.elements[name].value.trim(); };
    var body = {
      instructions: form.elements.instructions.value,
      guardrails: form.elements.guardrails.value,
      handoff_message: value("handoff_message") || null,
      base_url: value("base_url") || null,
      model: value("model") || null,
    };
    if (value("api_key")) body.api_key = value("api_key");
    else if (form.elements.remove_key && form.elements.remove_key.checked) body.api_key = null;
    return body;
  }

  box.addEventListener("submit", function (event) {
    var form = event.target.closest("#assistant-form");
    if (!form) return;
    event.preventDefault();
    var button = form.querySelector("[type=submit]");
    button.disabled = true;
    MW.api("PUT", "/api/v1/assistant/settings", changes(form)).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Assistant settings saved."));
      return refresh();
    }).finally(function () { button.disabled = false; });
  });

  function line(className, text) {
    var node = document.createElement("p");
    node.className = className;
    node.textContent = text;
    return node;
  }

  function show(result) {
    var handedOff = result.handed_off;
    var quiet = !handedOff && !result.text;
    answer.replaceChildren();
    answer.dataset.handedOff = String(handedOff);
    answer.dataset.reason = result.reason || "";
    var kind = line("preview-kind", MW.t(handedOff ? "Hands over to a person" : quiet ? "Would not answer" : "Answer"));
    answer.appendChild(kind);
    if (quiet) {
      answer.appendChild(line("muted", MW.t("A greeting or a thanks alone asks nothing: the assistant stays quiet.")));
    } else {
      answer.appendChild(line("preview-text", result.text));
    }
    if (handedOff) {
      answer.appendChild(line("preview-reason", MW.t("Why") + ": " + MW.t(REASONS[result.reason] || result.reason || "")));
    }
    if (result.sources.length) {
      var sources = document.createElement("div");
      sources.className = "ai-sources";
      sources.setAttribute("data-testid", "ai-sources");
      var label = document.createElement("span");
      label.className = "ai-sources-label";
      label.textContent = MW.t("Sources");
      var list = document.createElement("ul");
      result.sources.forEach(function (source) {
        var item = document.createElement("li");
        item.textContent = source.source;
        list.appendChild(item);
      });
      sources.append(label, list);
      answer.appendChild(sources);
    }
    answer.hidden = false;
  }

  previewForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = previewForm.elements.question.value.trim();
    if (!question) return;
    var button = previewForm.querySelector("[type=submit]");
    button.disabled = true;
    answer.hidden = false;
    answer.dataset.handedOff = "";
    answer.replaceChildren(line("muted", MW.t("Asking the assistant...")));
    MW.api("POST", "/api/v1/assistant/preview", { question: question }).then(function (response) {
      if (!response.ok) {
        answer.hidden = true;
        return MW.errorMessage(response).then(MW.toast);
      }
      return response.json().then(show);
    }).finally(function () { button.disabled = false; });
  });
})();
