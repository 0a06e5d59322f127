/* orchestrator dashboard, the jobs page: refreshes the table from /dashboard.json every few seconds
 * (short polling; see orchestrator/status/dashboard.py for why not server-sent events).
 * Hand-written, no third-party code. Licence: Apache-2.0, as the package. */
"use strict";
(function () {
  const PERIOD_MS = 2000;
  const feed = document.body.dataset.feed;
  const tbody = document.querySelector("#jobs tbody");
  const updated = document.getElementById("updated");
  const empty = document.querySelector("p.empty");

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(className, ...children) {
    const td = element("td", className);
    td.append(...children);
    return td;
  }

  function row(job) {
    const tr = element("tr");
    tr.dataset.job = job.id;
    const link = element("a", null, job.id);
    link.href = "/jobs/" + encodeURIComponent(job.id);
    const state = element("span", "state state-" + job.state, job.state + (job.cancel_requested ? " (cancel requested)" : ""));
    const bar = element("progress");
    bar.max = 100;
    if (job.progress_pct !== null) bar.value = job.progress_pct;
    const pct = element("span", "pct", job.progress_pct === null ? "" : Math.round(job.progress_pct) + "%");
    const loss = element("span", "value", job.last_loss === null ? "" : Number(job.last_loss).toFixed(4));
    const labels = Object.keys(job.labels).sort().map((k) => element("span", "label", k + "=" + job.labels[k]));
    tr.append(
      cell("id", link), cell("name", job.name), cell("state", state), cell("progress", bar, " ", pct),
      cell("loss", loss, " ", window.OrchestratorCharts.sparkline(job.losses)), cell("age", job.age),
      cell("labels", ...labels), cell("error", job.error),
    );
    return tr;
  }

  function showRejections(rejections) {
    const section = document.getElementById("rejections");
    section.querySelector("tbody").replaceChildren(...rejections.map((r) => {
      const tr = element("tr");
      tr.dataset.rejection = r.id;
      const field = element("code", null, r.field);
      tr.append(cell("id", r.id), cell("file", r.file), cell("field", field), cell("problem", r.problem),
                cell("age", r.rejected_at.replace("T", " ").slice(0, 19)));
      return tr;
    }));
    section.hidden = rejections.length === 0;
  }

  async function refresh() {
    if (document.visibilityState !== "hidden") {
      try {
        const response = await fetch(feed, { headers: { Accept: "application/json" }, cache: "no-store" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const data = await response.json();
        tbody.replaceChildren(...data.jobs.map(row));
        for (const count of document.querySelectorAll(".count[data-state]")) {
          count.textContent = data.counts[count.dataset.state] ?? 0;
        }
        document.querySelector("h1 .total").textContent = Object.values(data.counts).reduce((a, b) => a + b, 0);
        empty.hidden = data.jobs.length > 0;
        showRejections(data.rejections);
        updated.textContent = "updated " + new Date().toLocaleTimeString();
        updated.classList.remove("stale");
      } catch (error) {
        updated.textContent = "update failed (" + error.message + "); retrying";
        updated.classList.add("stale");
      }
    }
    setTimeout(refresh, PERIOD_MS);
  }

  setTimeout(refresh, PERIOD_MS);
})();
