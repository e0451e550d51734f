// The events-in page: mappings saved and removed in place through the API (its 422s shown as they
// come), the template names offered from GET /api/v1/templates when the engine has it.
(function () {
  "use strict";

  var content = document.getElementById("events-in-content");

  function refresh() {
    MW.fragment("/integrations/events/fragments/content").then(function (nodes) {
      if (!nodes) return;
      content.replaceChildren(nodes);
    }).catch(function () { /* a reload shows it */ });
  }

  function field(form, name) {
    return document.querySelector("[form='" + form.id + "'][name='" + name + "']");
  }

  function save(form) {
    var keys = field(form, "parameters").value.split(",").map(function (key) { return key.trim(); });
    var body = {
      template: field(form, "template").value,
      language: field(form, "language").value.trim(),
      parameters: keys.filter(function (key) { return key !== ""; }),
      instance_id: field(form, "instance_id").value || null,
    };
    var url = "/api/v1/event-mappings/" + encodeURIComponent(form.dataset.eventType);
    MW.api("PUT", url, body).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Mapping saved"));
      refresh();
    });
  }

  function remove(eventType) {
    MW.api("DELETE", "/api/v1/event-mappings/" + encodeURIComponent(eventType)).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Mapping removed"));
      refresh();
    });
  }

  // The tenant's templates as suggestions; without the templates API the field stays free text.
  function offerTemplates() {
    var list = document.getElementById("template-names");
    MW.api("GET", "/api/v1/templates").then(function (response) {
      if (!response.ok) return null;
      return response.json();
    }).then(function (page) {
      if (!page || !Array.isArray(page.items)) return;
      var seen = {};
      page.items.forEach(function (item) {
        if (!item || typeof item.name !== "string" || seen[item.name]) return;
        seen[item.name] = true;
        var option = document.createElement("option");
        option.value = item.name;
        if (typeof item.language === "string") option.label = item.name + " (" + item.language + ")";
        list.appendChild(option);
      });
    }).catch(function () { /* suggestions only */ });
  }

  content.addEventListener("submit", function (event) {
    if (!event.target.classList.contains("mapping-form")) return;
    event.preventDefault();
    save(event.target);
  });
  content.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove-mapping]");
    if (button) remove(button.dataset.removeMapping);
  });
  document.querySelector("[data-refresh-events]").addEventListener("click", refresh);
  MW.on("resync", refresh);
  offerTemplates();
})();
