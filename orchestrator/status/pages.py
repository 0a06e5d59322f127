"""The dashboard's HTML: pure functions from what the StatusReader returns to escaped markup.

Every value that came from a job file or the API (display names, labels, error words) is user
input, so nothing is put into the page unescaped: :func:`esc` on every text, and no inline script
or style anywhere (the Content-Security-Policy forbids both). The pages work without JavaScript;
``dashboard.js`` and ``job.js`` (shipped beside this module, hand-written) only keep them live and
draw the interactive loss chart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from orchestrator.jobs import TERMINAL, Job, JobState
from orchestrator.report import age, error_summary, job_json, progress_pct
from orchestrator.store.reader import JobDetail
from orchestrator.store.rejections import Rejection


def esc(value: object) -> str:
    """Text as HTML, quotes included (safe in element content and in quoted attributes)."""
    return escape("" if value is None else str(value), quote=True)


def _page(title: str, body: str, script: str, data: Mapping[str, str] | None = None) -> str:
    """The common frame: one stylesheet, one script file, ``data-*`` settings on ``<body>``."""
    attributes = "".join(f' data-{name}="{esc(value)}"' for name, value in (data or {}).items())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><link rel=\"icon\" href=\"data:,\">"
        "<link rel=\"stylesheet\" href=\"/static/style.css\">"
        "<script src=\"/static/chart.js\" defer></script>"
        f"<script src=\"/static/{script}\" defer></script></head>"
        f"<body{attributes}><header><a href=\"/\" class=\"home\">orchestrator</a></header><main>{body}</main>"
        "</body></html>\n"
    )


def sparkline(losses: Sequence[float], width: int = 120, height: int = 24) -> str:
    """A small inline SVG of the last losses (empty before the first snapshot)."""
    finite = [v for v in losses if v == v]
    if len(finite) < 2:
        return '<svg class="spark" aria-hidden="true"></svg>'
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    step = width / (len(finite) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
                      for i, v in enumerate(finite))
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-hidden="true"><polyline points="{points}"/></svg>')


def _labels(labels: Mapping[str, Any]) -> str:
    return " ".join(f'<span class="label">{esc(k)}={esc(v)}</span>' for k, v in sorted(labels.items()))


def _progress(job: Job) -> str:
    pct = progress_pct(job)
    if pct is None:
        return '<progress max="100"></progress> <span class="pct"></span>'
    return f'<progress max="100" value="{pct:.1f}"></progress> <span class="pct">{pct:.0f}%</span>'


def job_row(job: Job, losses: Sequence[float], now: datetime) -> dict[str, Any]:
    """A job as the dashboard shows it (the live updates' JSON uses the same fields)."""
    return {
        **job_json(job),
        "name": job.display_name or job.tuned_model_id,
        "age": age(job.created_at, now),
        "error": error_summary(job, width=120),
        "losses": [v if v == v else None for v in losses],
    }


def _row_html(job: Job, losses: Sequence[float], now: datetime) -> str:
    loss = "" if job.last_loss is None else f"{job.last_loss:.4f}"
    cancel = " (cancel requested)" if job.cancel_requested else ""
    return (
        f'<tr data-job="{esc(job.id)}">'
        f'<td class="id"><a href="/jobs/{quote(job.id)}">{esc(job.id)}</a></td>'
        f'<td class="name">{esc(job.display_name or job.tuned_model_id)}</td>'
        f'<td class="state"><span class="state state-{esc(job.state.value)}">'
        f'{esc(job.state.value + cancel)}</span></td>'
        f'<td class="progress">{_progress(job)}</td>'
        f'<td class="loss"><span class="value">{esc(loss)}</span> {sparkline(losses)}</td>'
        f'<td class="age">{esc(age(job.created_at, now))}</td>'
        f'<td class="labels">{_labels(json.loads(job.labels))}</td>'
        f'<td class="error">{esc(error_summary(job, width=120))}</td></tr>'
    )


def dashboard_page(
    jobs: Sequence[Job], losses: Mapping[str, Sequence[float]], counts: Mapping[JobState, int], now: datetime,
    states: Iterable[JobState], labels: Mapping[str, str], rejections: Sequence[Rejection] = (),
) -> str:
    """``GET /``: every job (newest first) with the filter form, and the rejected files still unresolved.

    ``dashboard.js`` refreshes both tables.
    """
    chosen = set(states)
    options = "".join(
        f'<label><input type="checkbox" name="state" value="{esc(s.value)}"{" checked" if s in chosen else ""}>'
        f' {esc(s.value)} <span class="count" data-state="{esc(s.value)}">{counts.get(s, 0)}</span></label>'
        for s in JobState
    )
    label_text = " ".join(f"{k}={v}" for k, v in labels.items())
    query = urlencode([("state", s.value) for s in JobState if s in chosen] + [("label", f"{k}={v}")
                                                                            for k, v in labels.items()])
    rows = "".join(_row_html(job, losses.get(job.id, ()), now) for job in jobs)
    body = (
        f'<h1>Jobs <span class="total">{sum(counts.values())}</span></h1>'
        f'<form class="filters" method="get" action="/"><fieldset><legend>state</legend>{options}</fieldset>'
        f'<label>label <input type="text" name="label" value="{esc(label_text)}" placeholder="team=nlp"></label>'
        '<button type="submit">filter</button> <a href="/">clear</a></form>'
        '<p class="live" aria-live="polite"><span id="updated">updated on load</span></p>'
        '<table id="jobs"><thead><tr><th>id</th><th>name</th><th>state</th><th>progress</th><th>last loss</th>'
        f'<th>age</th><th>labels</th><th>error</th></tr></thead><tbody>{rows}</tbody></table>'
        f'<p class="empty"{"" if not jobs else " hidden"}>No job matches.</p>'
        f'<section id="rejections"{"" if rejections else " hidden"}><h2>Rejected files</h2>'
        '<p class="hint">Not jobs: fix the file and <code>orchestrator resubmit ID</code>.</p>'
        '<table><thead><tr><th>id</th><th>file</th><th>field</th><th>problem</th><th>rejected at</th></tr></thead>'
        f'<tbody>{"".join(_rejection_row(r) for r in rejections)}</tbody></table></section>'
    )
    return _page("orchestrator: jobs", body, "dashboard.js", {"feed": f"/dashboard.json?{query}"})


def _rejection_row(rejection: Rejection) -> str:
    return (
        f'<tr data-rejection="{esc(rejection.id)}"><td class="id">{esc(rejection.id)}</td>'
        f'<td class="file">{esc(rejection.file)}</td><td class="field"><code>{esc(rejection.field)}</code></td>'
        f'<td class="problem">{esc(rejection.problem)}</td>'
        f'<td class="age">{esc(rejection.rejected_at.isoformat(" ", "seconds")[:19])}</td></tr>'
    )


def _table(rows: Iterable[tuple[str, str]], css: str = "record") -> str:
    """A two-column table; the values are already HTML."""
    return f'<table class="{css}">' + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"



#: Summary rows left out when they have nothing to say (the others are updated live by ``job.js``).
_OPTIONAL = frozenset({"error", "retrying", "labels", "tuned model", "endpoint", "billable tokens"})


def job_page(detail: JobDetail, now: datetime) -> str:
    """``GET /jobs/{id}`` for a browser: the full record; ``job.js`` draws the loss chart and keeps it live."""
    job = detail.job
    error = " ".join(filter(None, [None if job.error_code is None else f"[{job.error_code}]", job.error_status,
                                   job.error_message]))
    summary = [
        ("state", f'<span class="state state-{esc(job.state.value)}" id="state">{esc(job.state.value)}</span>'),
        ("progress", f'<span id="progress">{_progress(job)} <span class="steps">'
                     f'{job.completed_steps}/{job.total_steps or "?"} steps</span></span>'),
        ("last loss", f'<span id="last-loss">{"" if job.last_loss is None else f"{job.last_loss:.4f}"}</span>'),
        ("tuned model", esc(job.model_name)),
        ("endpoint", esc(job.endpoint)),
        ("billable tokens", esc(None if job.billable_tokens is None else f"{job.billable_tokens:,}")),
        ("base model", esc(job.base_model)),
        ("error", error and f'<span class="error">{esc(error)}</span>'),
        ("retrying", esc(job.last_error and f"attempt {job.attempts}: {job.last_error}")),
        ("labels", _labels(json.loads(job.labels))),
        ("job key", esc(job.job_key)),
        ("file", esc(job.source_file)),
        ("examples", esc(f"{detail.example_count} ({detail.file_bytes:,} bytes)")),
        ("age", esc(age(job.created_at, now))),
    ]
    summary = [(name, html) for name, html in summary if name not in _OPTIONAL or html]
    record = job_json(job)
    # Every other column of the job: a field a service fills (a Vertex endpoint, billable tokens) shows here
    # as soon as the store has it, without this page learning service names.
    shown = {"state", "labels", "job_key", "source_file", "last_loss", "error_code", "error_status", "error_message",
             "last_error", "base_model", "tuned_model", "display_name", "id", "endpoint", "billable_tokens"}
    extra = [(name, esc(value)) for name, value in record.items() if name not in shown and value not in (None, "")]
    hyper = [(name, esc(json.dumps(value))) for name, value in sorted(detail.hyperparameters.items())]
    events = "".join(
        f"<tr><td>{esc(e.at)}</td><td>{esc(e.from_state or '')}</td><td>{esc(e.to_state)}</td>"
        f"<td><code>{esc(json.dumps(dict(e.detail)) if e.detail else '')}</code></td></tr>"
        for e in detail.events
    )
    notes = "".join(
        f'<tr><td><code>{esc(n.id)}</code></td><td>{esc(n.type)}</td><td>{esc(n.state)}</td>'
        f'<td>{len(n.attempts)}</td><td>{esc(n.last_error or "")}</td></tr>'
        + "".join(
            f'<tr class="attempt"><td></td><td>{esc(a.at)}</td><td>{esc(a.outcome)}</td>'
            f'<td>{"" if a.status_code is None else a.status_code}</td>'
            f'<td>{esc(a.error or "")} ({a.seconds:.2f} s)</td></tr>'
            for a in n.attempts
        )
        for n in detail.notifications
    )
    finished = "true" if job.state in TERMINAL else "false"
    body = (
        f'<h1><span class="name">{esc(job.display_name or job.tuned_model_id)}</span> <code>{esc(job.id)}</code></h1>'
        f"{_table(summary)}"
        '<h2>Loss</h2><figure id="chart" class="chart"><p class="nochart">'
        f'{len(detail.snapshots)} snapshots (the chart needs JavaScript)</p></figure>'
        f"<h2>Hyper-parameters</h2>{_table(hyper) if hyper else '<p>none recorded</p>'}"
        '<h2>Timeline</h2><table class="events"><thead><tr><th>at</th><th>from</th><th>to</th><th>detail</th></tr>'
        f"</thead><tbody>{events}</tbody></table>"
        + ('<h2>Webhooks</h2><table class="notifications"><thead><tr><th>webhook-id</th><th>event</th><th>state</th>'
           f'<th>attempts</th><th>last error</th></tr></thead><tbody>{notes}</tbody></table>' if notes else "")
        + f"<h2>Record</h2>{_table(extra)}"
    )
    return _page(f"orchestrator: {job.display_name or job.id}", body, "job.js",
                 {"feed": f"/jobs/{quote(job.id)}", "finished": finished})
