"""``orchestrator plot``: a job's loss curve as a PNG, SVG or PDF file.

matplotlib is an optional extra (``pip install 'orchestrator[plot]'``): a daemon host or container
does not need it. The figure is drawn through matplotlib's object API (``Figure``), never pyplot,
so no GUI backend or global state is involved and it works on a headless server.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.report import epoch_starts
from orchestrator.store import JobDetail

FORMATS = ("png", "svg", "pdf")


def plot_loss(detail: JobDetail, output: Path) -> Path:
    """Draw the mean loss per step, with a dotted line where each epoch begins, into ``output``.

    The format follows the file's suffix.
    """
    suffix = output.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise OrchestratorError(f"{output}: the file name must end in {', '.join('.' + f for f in FORMATS)}")
    if not detail.snapshots:
        raise OrchestratorError(f"job {detail.job.id} has no snapshots yet: nothing to plot")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise OrchestratorError("plotting needs matplotlib: pip install 'orchestrator[plot]'") from None

    job, snapshots = detail.job, detail.snapshots
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([s.step for s in snapshots], [s.mean_loss for s in snapshots], marker=".", linewidth=1.2)
    last_step = snapshots[-1].step
    for index, epoch in epoch_starts(snapshots):
        boundary = snapshots[index].step - 0.5
        if index:
            axes.axvline(boundary, color="grey", linestyle=":", linewidth=0.8)
        # An epoch that begins near the end (the API counts the last step into "epochs completed")
        # is labelled to the left of its line, so the label stays inside the axes.
        near_end = boundary > 0.9 * last_step
        axes.text(boundary, 0.99, f"epoch {epoch} " if near_end else f" epoch {epoch}",
                  transform=axes.get_xaxis_transform(), va="top", ha="right" if near_end else "left", fontsize=8,
                  color="grey", clip_on=True)
    axes.set_xlabel("step")
    axes.set_ylabel("mean loss")
    axes.set_title(f"{job.display_name or job.tuned_model_id} ({job.id}, {job.state.value})")
    axes.grid(alpha=0.3)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, format=suffix)
    return output
