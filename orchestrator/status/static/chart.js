/* orchestrator dashboard charts: a sparkline and the interactive loss curve, drawn as SVG.
 * Hand-written, no third-party code. Licence: Apache-2.0, as the package.
 * Nothing here uses innerHTML: every text goes in through textContent, so job data stays text. */
"use strict";
window.OrchestratorCharts = (function () {
  const NS = "http://www.w3.org/2000/svg";

  function svg(tag, attributes, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** A small line of the last losses (nulls, i.e. NaN losses, skipped). */
  function sparkline(values, width = 120, height = 24) {
    const root = svg("svg", { class: "spark", "aria-hidden": "true" });
    const finite = values.filter((v) => v !== null && Number.isFinite(v));
    if (finite.length < 2) return root;
    const low = Math.min(...finite), high = Math.max(...finite), span = high - low || 1;
    const step = width / (finite.length - 1);
    const points = finite.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - ((v - low) / span) * (height - 4)).toFixed(1)}`);
    root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    root.setAttribute("width", width);
    root.setAttribute("height", height);
    root.appendChild(svg("polyline", { points: points.join(" ") }));
    return root;
  }

  /** The loss curve of ``snapshots`` ([{step, epoch, mean_loss}]) into ``figure``: one point per step,
   * a dashed line where each epoch begins, and a tooltip (step, epoch, loss) on hover. */
  function lossChart(figure, snapshots) {
    const points = snapshots.filter((s) => s.mean_loss !== null && Number.isFinite(s.mean_loss));
    figure.replaceChildren();
    if (points.length === 0) {
      figure.appendChild(Object.assign(document.createElement("p"), { textContent: "No snapshot yet." }));
      return;
    }
    const W = 800, H = 300, left = 56, right = 16, top = 22, bottom = 34;
    const steps = points.map((s) => s.step), losses = points.map((s) => s.mean_loss);
    const x0 = Math.min(...steps), x1 = Math.max(...steps), y0 = Math.min(...losses), y1 = Math.max(...losses);
    const x = (step) => left + ((step - x0) / (x1 - x0 || 1)) * (W - left - right);
    const y = (loss) => top + (1 - (loss - y0) / (y1 - y0 || 1)) * (H - top - bottom);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `loss over ${points.length} steps` });
    root.appendChild(svg("line", { class: "axis", x1: left, y1: H - bottom, x2: W - right, y2: H - bottom }));
    root.appendChild(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: H - bottom }));
    root.appendChild(svg("text", { x: left - 6, y: y(y1) + 4, "text-anchor": "end" }, y1.toFixed(4)));
    root.appendChild(svg("text", { x: left - 6, y: y(y0) + 4, "text-anchor": "end" }, y0.toFixed(4)));
    root.appendChild(svg("text", { x: left, y: H - 12, "text-anchor": "start" }, `step ${x0}`));
    root.appendChild(svg("text", { x: W - right, y: H - 12, "text-anchor": "end" }, `step ${x1}`));
    points.forEach((s, i) => {
      if (i > 0 && s.epoch === points[i - 1].epoch) return;
      const at = i === 0 ? x(s.step) : (x(s.step) + x(points[i - 1].step)) / 2;
      root.appendChild(svg("line", { class: "epoch", x1: at, y1: top, x2: at, y2: H - bottom }));
      const nearEnd = at > W - right - 60;
      root.appendChild(svg("text", { class: "epoch-label", x: nearEnd ? at - 3 : at + 3, y: top - 8,
                                     "text-anchor": nearEnd ? "end" : "start" }, `epoch ${s.epoch}`));
    });
    root.appendChild(svg("polyline", { class: "curve", points: points.map((s) => `${x(s.step)},${y(s.mean_loss)}`).join(" ") }));
    const dots = points.map((s) => {
      const dot = svg("circle", { class: "point", cx: x(s.step), cy: y(s.mean_loss), r: 3,
                                  "data-step": s.step, "data-epoch": s.epoch, "data-loss": s.mean_loss });
      dot.appendChild(svg("title", {}, describe(s)));
      root.appendChild(dot);
      return dot;
    });
    const tip = Object.assign(document.createElement("div"), { className: "tooltip", hidden: true });
    let active = null;
    root.addEventListener("mousemove", (event) => {
      const box = root.getBoundingClientRect();
      const at = ((event.clientX - box.left) / box.width) * W;
      let best = 0;
      points.forEach((s, i) => { if (Math.abs(x(s.step) - at) < Math.abs(x(points[best].step) - at)) best = i; });
      if (active) active.classList.remove("active");
      active = dots[best];
      active.classList.add("active");
      tip.textContent = describe(points[best]);
      tip.hidden = false;
      tip.style.left = `${(x(points[best].step) / W) * box.width + 8}px`;
      tip.style.top = `${(y(points[best].mean_loss) / H) * box.height - 28}px`;
    });
    root.addEventListener("mouseleave", () => {
      tip.hidden = true;
      if (active) active.classList.remove("active");
    });
    figure.append(root, tip);
  }

  function describe(s) {
    return `step ${s.step} · epoch ${s.epoch} · loss ${s.mean_loss.toFixed(4)}`;
  }

  return { sparkline, lossChart };
})();
