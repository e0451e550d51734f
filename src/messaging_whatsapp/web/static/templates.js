// The templates page: an admin syncs the Meta numbers' templates and creates simulator templates
// through the API; the server renders the cards again after either.
(function () {
  "use strict";

  var content = document.getElementById("templates-content");
  var syncButton = document.getElementById("templates-sync");

  function refresh() {
    return MW.fragment("/templates/fragments/content").then(function (nodes) {
      if (!nodes) return;
      content.replaceChildren(nodes);
    }).catch(function () { /* a reload shows it */ });
  }

  function syncSummary(result) {
    var lines = [MW.t("Templates synced: {added} added, {updated} updated, {removed} removed", {
      added: result.added, updated: result.updated, removed: result.removed
    })];
    (result.numbers || []).forEach(function (number) {
      if (number.error) lines.push(MW.t("{number}: {error}", { number: number.name, error: number.error }));
    });
    return lines.join("\n");
  }

  if (syncButton) {
    syncButton.addEventListener("click", function () {
      var label = syncButton.textContent;
      syncButton.disabled = true;
      syncButton.textContent = MW.t("Syncing...");
      MW.api("POST", "/api/v1/templates/sync").then(function (response) {
        if (!response.ok) return MW.errorMessage(response).then(MW.toast);
        return response.json().then(function (result) {
          MW.toast(syncSummary(result));
          return refresh();
        });
      }).finally(function () {
        syncButton.disabled = false;
        syncButton.textContent = label;
      });
    });
  }

  content.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "template-create-form") return;
    event.preventDefault();
    var body = {
      instance_id: form.elements.instance_id.value,
      name: form.elements.name.value.trim(),
      language: form.elements.language.value.trim(),
      category: form.elements.category.value,
      body: form.elements.body.value
    };
    MW.api("POST", "/api/v1/templates", body).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Template created"));
      return refresh();
    });
  });

  MW.on("resync", refresh);
})();
