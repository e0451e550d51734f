// What every page of the app shares: texts, talking to the server, and the live connection.
//
// window.MW holds it. The live connection reads the engine's event stream with fetch (so every
// reconnect sends Last-Event-ID and the server replays what was missed, or says `resync`) and hands
// each event to the handlers registered with MW.on(type, handler). Events are hints carrying ids:
// a page reacts by fetching server-rendered fragments or JSON, never by building markup from them.
(function () {
  "use strict";

  var TEXTS = {};
  document.querySelectorAll("script[data-texts], #texts").forEach(function (node) {
    Object.assign(TEXTS, JSON.parse(node.textContent));
  });

  function t(text, values) {
    var out = TEXTS[text] || text;
    Object.keys(values || {}).forEach(function (key) {
      out = out.split("{" + key + "}").join(values[key]);
    });
    return out;
  }

  function cookie(name) {
    var found = document.cookie.split("; ").find(function (part) {
      return part.indexOf(name + "=") === 0;
    });
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  function toLogin() {
    location.assign("/login");
  }

  // A JSON request with the session cookie and the CSRF token; a 401 goes to the login page.
  function api(method, url, body, headers) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: Object.assign({ "X-CSRF-Token": cookie("csrf") }, headers || {}),
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      if (response.status === 401) toLogin();
      return response;
    });
  }

  // A short note at the bottom of the screen (a refused action says why there).
  function toast(message) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.hidden = true; }, 5000);
  }

  // The message of the API's JSON error (`{"error": {"message"}}`), or a generic one.
  function errorMessage(response) {
    return response.json().then(
      function (body) { return (body.error && body.error.message) || t("Something went wrong. Try again."); },
      function () { return t("Something went wrong. Try again."); }
    );
  }

  // A server-rendered fragment as nodes (null for 204 or 404: it no longer belongs where it was).
  function fragment(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (response.status === 401) { toLogin(); return null; }
      if (response.status === 204 || response.status === 404) return null;
      if (!response.ok) throw new Error("fragment " + response.status);
      return response.text().then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html; // the server's markup: every value in it is escaped there
        return template.content;
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The live connection

  var handlers = {};
  var lastEventId = null;
  var started = false;

  function on(type, handler) {
    (handlers[type] = handlers[type] || []).push(handler);
  }

  function setLive(connected) {
    document.querySelectorAll("[data-testid=live-status]").forEach(function (node) {
      node.dataset.state = connected ? "connected" : "disconnected";
      var text = node.querySelector(".live-text");
      if (text) text.textContent = connected ? t("Live") : t("Offline: reconnecting...");
    });
  }

  function dispatch(frame) {
    if (frame.id) lastEventId = frame.id;
    var listeners = handlers[frame.event];
    if (!listeners) return;
    var data = {};
    try { data = JSON.parse(frame.data || "{}"); } catch (error) { return; }
    listeners.forEach(function (handler) {
      try { handler(data); } catch (error) { console.error(error); }
    });
  }

  function parseFrames(buffer, onFrame) {
    var frames = buffer.split(/\r?\n\r?\n/);
    var rest = frames.pop();
    frames.forEach(function (block) {
      var frame = { event: "message", data: "", id: null };
      var data = [];
      block.split(/\r?\n/).forEach(function (line) {
        if (!line || line[0] === ":") return;
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") frame.event = value;
        else if (field === "data") data.push(value);
        else if (field === "id") frame.id = value;
      });
      frame.data = data.join("\n");
      if (frame.id || data.length) onFrame(frame);
    });
    return rest;
  }

  var backoff = 500;
  var connected = false;
  function connect() {
    var headers = {};
    if (lastEventId) headers["Last-Event-ID"] = lastEventId;
    fetch("/api/v1/events/stream", { credentials: "same-origin", headers: headers, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) { toLogin(); return; }
        if (!response.ok || !response.body) throw new Error("stream " + response.status);
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) throw new Error("stream ended");
            // Live from the first bytes: the server sends them once it has subscribed.
            if (!connected) { connected = true; setLive(true); backoff = 500; }
            buffer = parseFrames(buffer + decoder.decode(chunk.value, { stream: true }), dispatch);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        connected = false;
        setLive(false);
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 3000);
      });
  }

  // Connect once, replaying from `fromEventId` (the id the page read before its data).
  function start(fromEventId) {
    if (started) return;
    started = true;
    lastEventId = fromEventId || null;
    connect();
  }

  // Forms and htmx requests carry the CSRF token; an expired session goes to the login page.
  document.querySelectorAll("[data-csrf-field]").forEach(function (field) {
    field.closest("form").addEventListener("submit", function () { field.value = cookie("csrf"); });
  });
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = cookie("csrf");
  });
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.xhr.status === 401) toLogin();
  });

  window.MW = {
    t: t,
    cookie: cookie,
    api: api,
    toast: toast,
    errorMessage: errorMessage,
    fragment: fragment,
    toLogin: toLogin,
    on: on,
    start: start,
  };

  // Pages of the app shell say where to replay from on <body data-last-event-id>.
  if (document.body.dataset.live !== undefined) start(document.body.dataset.lastEventId);
})();
