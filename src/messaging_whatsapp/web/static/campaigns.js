// The campaign list and a campaign's detail, live through the event stream (no polling).
//
// `campaign_updated` carries the campaign's status and counters: the list updates the row in
// place, the detail its counters, rates, buttons and (a little later, at most every 2 s) its chart
// and tables. Everything shown is written with textContent; markup only comes from the server's
// fragments.
(function () {
  "use strict";

  var LANG = document.documentElement.lang || "en";
  var STATUS_LABELS = {
    draft: "Draft", scheduled: "Scheduled", running: "Running",
    paused: "Paused", completed: "Completed", cancelled: "Cancelled",
  };

  function pick(a, b) { return a !== undefined ? a : b; }

  // The figures of an event (`sent`, `total`...) or of an API item (`sent_count`, ...), alike.
  function figures(data) {
    return {
      id: pick(data.campaign_id, data.id),
      status: data.status,
      total: pick(data.total, data.total_contacts),
      pending: pick(data.pending, data.pending_count),
      sent: pick(data.sent, data.sent_count),
      delivered: pick(data.delivered, data.delivered_count),
      read: pick(data.read, data.read_count),
      failed: pick(data.failed, data.failed_count),
      opted_out: pick(data.opted_out, data.opted_out_count),
      skipped: pick(data.skipped, data.skipped_count),
      progress: data.progress,
      waiting: data.waiting_reason || null,
      paused_reason: data.paused_reason || null,
    };
  }

  function percent(part, whole) { return whole ? (100 * part) / whole : 0; }

  function pct(value) {
    return value.toLocaleString(LANG, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + "%";
  }

  function setText(root, field, text) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(function (node) { node.textContent = text; });
  }

  function setStatus(root, status) {
    root.querySelectorAll('[data-field="status"]').forEach(function (badge) {
      badge.className = "badge " + status;
      badge.textContent = MW.t(STATUS_LABELS[status] || status);
    });
  }

  // The figures every view of a campaign shows: counts, progress, rates.
  function apply(root, f) {
    ["total", "pending", "sent", "delivered", "read", "failed", "opted_out", "skipped"].forEach(function (key) {
      if (f[key] !== undefined) setText(root, key, String(f[key]));
    });
    if (f.progress !== undefined) {
      setText(root, "progress", Math.round(f.progress) + "%");
      root.querySelectorAll('[data-field="progress-bar"]').forEach(function (bar) { bar.style.width = f.progress + "%"; });
    }
    if (f.sent !== undefined) {
      setText(root, "delivery_rate", pct(percent(f.delivered, f.sent)));
      setText(root, "read_rate", pct(percent(f.read, f.delivered)));
      // Failed of the contacts written to (a message that failed after it was sent counts in
      // both sent and failed): the same rate the Analytics page gives.
      var attempted = (f.total || 0) - (f.pending || 0) - (f.opted_out || 0) - (f.skipped || 0);
      setText(root, "failure_rate", pct(percent(f.failed, attempted)));
    }
    if (f.status) setStatus(root, f.status);
  }

  // ---------------------------------------------------------------------------------------------
  // The list

  var list = document.getElementById("campaign-list");
  if (list) {
    MW.on("campaign_updated", function (data) {
      var f = figures(data);
      var row = list.querySelector('[data-campaign-id="' + CSS.escape(f.id) + '"]');
      if (row) {
        if (f.status) row.dataset.status = f.status;
        apply(row, f);
        return;
      }
      // A campaign the list has not shown: its row from the server, on top.
      MW.fragment("/campaigns/fragments/row/" + encodeURIComponent(f.id)).then(function (nodes) {
        if (!nodes || list.querySelector('[data-campaign-id="' + CSS.escape(f.id) + '"]')) return;
        var fresh = nodes.querySelector("[data-campaign-id]");
        if (!fresh) return;
        // Newest first: an older campaign the list has not reached yet comes with its page.
        var top = list.querySelector("[data-campaign-id]");
        if (top && Date.parse(fresh.dataset.created) < Date.parse(top.dataset.created)) return;
        list.prepend(fresh);
        document.querySelector("[data-list-card]").hidden = false;
        document.querySelector("[data-list-empty]").hidden = true;
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The detail

  var page = document.getElementById("campaign");
  if (!page) return;
  var campaignId = page.dataset.campaignId;
  var counters = page.querySelector("[data-testid=campaign-counters]");
  var actionsMap = JSON.parse(document.getElementById("campaign-actions-map").textContent);
  var errorBox = page.querySelector("[data-testid=action-error]");
  var note = page.querySelector('[data-field="note"]');
  var base = "/api/v1/campaigns/" + encodeURIComponent(campaignId);

  function showActions(status) {
    var offered = actionsMap[status] || [];
    document.querySelectorAll("[data-action]").forEach(function (button) {
      button.hidden = offered.indexOf(button.dataset.action) < 0;
    });
  }

  function update(f) {
    if (f.id !== campaignId) return;
    apply(page, f);
    ["sent", "delivered", "read", "failed", "total", "pending", "skipped"].forEach(function (key) {
      if (f[key] !== undefined) counters.dataset[key] = String(f[key]);
    });
    if (f.opted_out !== undefined) counters.dataset.optedOut = String(f.opted_out);
    if (f.status && f.status !== page.dataset.status) {
      page.dataset.status = f.status;
      showActions(f.status);
    }
    var message = f.waiting ? f.waiting.message : "";
    if (!message && f.paused_reason) {
      message = f.paused_reason === "instance_disconnected"
        ? MW.t("Paused: every number of the campaign is disconnected; it resumes when one reconnects.")
        : MW.t("Paused by a user.");
    }
    note.textContent = message;
    note.hidden = !message;
  }

  // The chart: sent, delivered, read and failed per bucket; below it, sent per number.
  var chartBox = document.getElementById("campaign-chart");
  var numberBox = document.getElementById("number-chart");
  var emptyNote = page.querySelector('[data-field="chart-empty"]');
  var numberBlock = page.querySelector('[data-field="number-chart-block"]');
  var bucket = "minute";
  var zone = page.dataset.timezone || "";
  var chart = null;
  var numberChart = null;
  var numberSeriesKey = "";
  var COLORS = { sent: "#53bdeb", delivered: "#00a884", read: "#7f66ff", failed: "#ea0038" };
  var NUMBER_COLORS = ["#00a884", "#53bdeb", "#ffbc38", "#7f66ff", "#ea0038", "#1f7aec", "#8696a0"];

  function series(label, color) {
    return { label: label, stroke: color, width: 2, fill: color + "1f", points: { show: true, size: 8 } };
  }

  // Bars nested in one another per bucket: sent, then delivered and read inside it (each a part
  // of the one before), failed as a narrow bar in front.
  function bar(label, color, width) {
    return {
      label: label,
      stroke: color,
      fill: color + "d9",
      width: 0,
      paths: uPlot.paths.bars({ size: [width, 64], align: 0 }),
      points: { show: false },
    };
  }

  // One bucket's width in seconds: the x range keeps a bucket of room on each side, so a single
  // point does not stretch the axis over years.
  function step() { return bucket === "hour" ? 3600 : 60; }

  function frame(plot, xs) {
    plot.setScale("x", { min: xs[0] - step(), max: xs[xs.length - 1] + step() });
  }

  // Times in the account's time zone and the page's language (14:05, or 05/12 14:00 per hour).
  function timeText(ts, withDay) {
    var format = { hour: "2-digit", minute: "2-digit" };
    if (withDay) { format.day = "2-digit"; format.month = "2-digit"; }
    if (zone) format.timeZone = zone;
    return new Date(ts * 1e3).toLocaleString(LANG, format);
  }

  function options(box, seriesList, height) {
    return {
      width: Math.max(box.clientWidth, 300),
      height: height,
      // Counts: from zero, in whole numbers.
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(max, 4) * 1.1]; } } },
      series: [{
        label: MW.t("Time"),
        value: function (u, ts) { return ts == null ? "--" : timeText(ts, true); },
      }].concat(seriesList),
      axes: [{
        stroke: "#667781",
        grid: { stroke: "#eef0f2" },
        // Whole minutes at least: the buckets are no finer.
        incrs: [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800],
        values: function (u, splits) {
          return splits.map(function (ts) { return timeText(ts, bucket === "hour"); });
        },
      }, {
        stroke: "#667781",
        grid: { stroke: "#eef0f2" },
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000],
      }],
      legend: { live: true },
    };
  }

  function drawTimeline(data) {
    var xs = data.times.map(function (time) { return Date.parse(time) / 1000; });
    chartBox.dataset.points = String(xs.length);
    chartBox.dataset.sent = String(data.sent.reduce(function (a, b) { return a + b; }, 0));
    emptyNote.hidden = xs.length > 0;
    numberBlock.hidden = xs.length === 0;
    if (!xs.length) return;
    var main = [xs, data.sent, data.delivered, data.read, data.failed];
    if (!chart) {
      chart = new uPlot(options(chartBox, [
        bar(MW.t("Sent"), COLORS.sent, 0.7), bar(MW.t("Delivered"), COLORS.delivered, 0.7),
        bar(MW.t("Read"), COLORS.read, 0.7), bar(MW.t("Failed"), COLORS.failed, 0.25),
      ], 260), main, chartBox);
    } else {
      chart.setData(main);
    }
    frame(chart, xs);
    var key = data.numbers.map(function (number) { return number.instance_id; }).join(",");
    var perNumber = [xs].concat(data.numbers.map(function (number) { return number.sent; }));
    if (numberChart && key === numberSeriesKey) { numberChart.setData(perNumber); frame(numberChart, xs); return; }
    if (numberChart) numberChart.destroy();
    numberSeriesKey = key;
    numberChart = new uPlot(options(numberBox, data.numbers.map(function (number, index) {
      return series(number.display_number || number.instance_id, NUMBER_COLORS[index % NUMBER_COLORS.length]);
    }), 180), perNumber, numberBox);
    frame(numberChart, xs);
  }

  function loadTimeline() {
    return MW.api("GET", base + "/timeline?bucket=" + bucket).then(function (response) {
      if (!response.ok) return;
      return response.json().then(drawTimeline);
    });
  }

  window.addEventListener("resize", function () {
    if (chart) chart.setSize({ width: Math.max(chartBox.clientWidth, 300), height: 260 });
    if (numberChart) numberChart.setSize({ width: Math.max(numberBox.clientWidth, 300), height: 180 });
  });

  page.querySelectorAll("[data-bucket]").forEach(function (button) {
    button.addEventListener("click", function () {
      bucket = button.dataset.bucket;
      page.querySelectorAll("[data-bucket]").forEach(function (other) {
        other.classList.toggle("is-active", other === button);
      });
      loadTimeline();
    });
  });

  // The tables follow their filters (htmx) and the export links follow them too.
  page.querySelectorAll("form[data-table]").forEach(function (form) {
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("change", function () {
      var link = form.querySelector("[data-export]");
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) { if (value) params.set(key, value); });
      var query = params.toString();
      link.href = link.dataset.export + (query ? "?" + query : "");
    });
  });

  // Live: the chart and the tables catch up at most every 2 s while events come in.
  var refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      loadTimeline();
      page.querySelectorAll("form[data-table]").forEach(function (form) { htmx.trigger(form, "change"); });
    }, 2000);
  }

  MW.on("campaign_updated", function (data) {
    var f = figures(data);
    if (f.id !== campaignId) return;
    update(f);
    refreshSoon();
  });

  // The actions, as the API rules them: a refusal shows the API's reason, then the page reloads
  // the campaign's state (someone else may have changed it).
  var CONFIRM = {
    cancel: "Cancel this campaign? Contacts not yet sent will be skipped.",
    delete: "Delete this draft? This cannot be undone.",
  };
  var DONE = {
    start: "Campaign started.", pause: "Campaign paused.", resume: "Campaign resumed.",
    cancel: "Campaign cancelled.", delete: "Campaign deleted.",
  };

  function refuse(response) {
    return MW.errorMessage(response).then(function (message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      MW.toast(message);
      return MW.api("GET", base).then(function (current) {
        if (current.ok) return current.json().then(function (item) { update(figures(item)); });
      });
    });
  }

  document.querySelectorAll("button[data-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      var action = button.dataset.action;
      if (CONFIRM[action] && !window.confirm(MW.t(CONFIRM[action]))) return;
      errorBox.hidden = true;
      button.disabled = true;
      var request = action === "delete" ? MW.api("DELETE", base) : MW.api("POST", base + "/" + action);
      request.then(function (response) {
        if (!response.ok) return refuse(response);
        MW.toast(MW.t(DONE[action]));
        if (action === "delete") { location.assign("/campaigns"); return; }
        return response.json().then(function (item) { update(figures(item)); refreshSoon(); });
      }).catch(function () {
        MW.toast(MW.t("Something went wrong. Try again."));
      }).then(function () { button.disabled = false; });
    });
  });

  loadTimeline();
})();
