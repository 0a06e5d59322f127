/* orchestrator dashboard, one job's page: draws the loss chart and keeps the state, progress and
 * chart live (polling the job's JSON every few seconds until it ends).
 * Hand-written, no third-party code. Licence: Apache-2.0, as the package. */
"use strict";
(function () {
  const PERIOD_MS = 2000;
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  const feed = document.body.dataset.feed;
  const figure = document.getElementById("chart");

  function show(job) {
    const state = document.getElementById("state");
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    const bar = document.querySelector("#progress progress");
    if (job.progress_pct !== null) bar.value = job.progress_pct;
    document.querySelector("#progress .pct").textContent = job.progress_pct === null ? "" : Math.round(job.progress_pct) + "%";
    document.querySelector("#progress .steps").textContent = `${job.completed_steps}/${job.total_steps || "?"} steps`;
    document.getElementById("last-loss").textContent = job.last_loss === null ? "" : Number(job.last_loss).toFixed(4);
    window.OrchestratorCharts.lossChart(figure, job.snapshots);
  }

  async function refresh() {
    let finished = false;
    try {
      const response = await fetch(feed, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const job = await response.json();
      show(job);
      finished = TERMINAL.has(job.state);
    } catch (error) {
      figure.dataset.error = error.message;
    }
    if (!finished) setTimeout(refresh, PERIOD_MS);
  }

  refresh();
})();
