// The knowledge base page: search through the API (results shown as text), upload a file or a
// pasted text, delete a document after confirming; the documents' table is fetched again after.
(function () {
  "use strict";

  var box = document.getElementById("knowledge-documents-box");
  var results = document.getElementById("knowledge-results");

  function csrf() {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf("csrf=") === 0; })[0];
    return found ? decodeURIComponent(found.slice(5)) : "";
  }

  function refresh() {
    MW.fragment("/knowledge/fragments/documents").then(function (nodes) {
      if (nodes) box.replaceChildren(nodes);
    }).catch(function () { /* a reload shows it */ });
  }

  function showResults(items) {
    results.replaceChildren();
    if (!items.length) {
      var none = document.createElement("li");
      none.className = "muted";
      none.textContent = MW.t("No chunk answers this yet.");
      results.appendChild(none);
      return;
    }
    items.forEach(function (item) {
      var li = document.createElement("li");
      li.dataset.testid = "knowledge-result";
      li.setAttribute("data-testid", "knowledge-result");
      li.dataset.chunkId = item.chunk_id;
      var head = document.createElement("div");
      head.className = "knowledge-result-head";
      var source = document.createElement("strong");
      source.textContent = item.source;
      var score = document.createElement("span");
      score.className = "badge";
      score.textContent = MW.t("score") + " " + item.score.toFixed(4) + " · " + MW.t("similarity") + " " + item.similarity.toFixed(2);
      head.append(source, score);
      var text = document.createElement("p");
      text.className = "knowledge-result-text";
      text.textContent = item.text;
      li.append(head, text);
      results.appendChild(li);
    });
  }

  document.getElementById("knowledge-search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var q = event.target.elements.q.value.trim();
    if (!q) return;
    MW.api("GET", "/api/v1/knowledge/search?limit=5&q=" + encodeURIComponent(q)).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      return response.json().then(function (body) { showResults(body.items); });
    });
  });

  var upload = document.getElementById("knowledge-upload-form");
  if (upload) {
    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      var file = upload.elements.file.files[0];
      var title = upload.elements.title.value.trim();
      var text = upload.elements.text.value;
      var request;
      if (file) {
        var form = new FormData();
        form.append("file", file);
        if (title) form.append("title", title);
        request = fetch("/api/v1/knowledge/documents", {
          method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() }, body: form,
        });
      } else if (text.trim()) {
        request = MW.api("POST", "/api/v1/knowledge/documents", { title: title || text.trim().split("\n")[0].slice(0, 80), text: text });
      } else {
        MW.toast(MW.t("Choose a file or paste a text."));
        return;
      }
      request.then(function (response) {
        if (!response.ok) return MW.errorMessage(response).then(MW.toast);
        upload.reset();
        MW.toast(MW.t("Document added."));
        refresh();
      });
    });
  }

  box.addEventListener("click", function (event) {
    var button = event.target.closest("[data-delete]");
    if (!button || !window.confirm(MW.t("Delete this document and its chunks?"))) return;
    MW.api("DELETE", "/api/v1/knowledge/documents/" + encodeURIComponent(button.dataset.delete)).then(function (response) {
      if (!response.ok) return MW.errorMessage(response).then(MW.toast);
      MW.toast(MW.t("Document deleted."));
      refresh();
    });
  });
})();
