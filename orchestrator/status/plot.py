"""``orchestrator plot``: a job's loss curve as a PNG, SVG or PDF file.

matplotlib is optional (the ``plot`` extra; :data:`PLOT_INSTALL_HINT` says how to get it): a daemon
host or container does not need it. The figure is drawn through matplotlib's object API (``Figure``), never pyplot,
so no GUI backend or global state is involved and it works on a headless server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import OrchestratorError
from orchestrator.report import epoch_starts, labelled_epochs
from orchestrator.store import JobDetail

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "svg", "pdf")
#: How to get matplotlib, in the words that work: the README's virtualenv, or any other Python.
PLOT_INSTALL_HINT = "pip install matplotlib (in the README's checkout: .venv/bin/pip install -e '.[plot]')"


#: Font size of the epoch labels, in points; a digit is about 0.6 of it wide.
EPOCH_FONT_SIZE = 8.0


def plot_loss(detail: JobDetail, output: Path) -> Path:
    """Draw the job's loss curve (see :func:`loss_figure`) into ``output``; the format follows its suffix."""
    suffix = output.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise OrchestratorError(f"{output}: the file name must end in {', '.join('.' + f for f in FORMATS)}")
    figure = loss_figure(detail)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, format=suffix)
    return output


def loss_figure(detail: JobDetail) -> Figure:
    """The mean loss per step, with the epochs on a top axis and a dotted line where each labelled one begins.

    With many epochs only every k-th is labelled (and lined), the k that keeps the numbers apart
    (:func:`~orchestrator.report.labelled_epochs`): 80 epochs get 0, 10, 20, … rather than a grey band.
    """
    if not detail.snapshots:
        raise OrchestratorError(f"job {detail.job.id} has no snapshots yet: nothing to plot")
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise OrchestratorError(f"plotting needs matplotlib: {PLOT_INSTALL_HINT}") from None

    job, snapshots = detail.job, detail.snapshots
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.plot([s.step for s in snapshots], [s.mean_loss for s in snapshots], marker=".", linewidth=1.2)
    first, last = snapshots[0].step - 0.5, snapshots[-1].step + 0.5
    axes.set_xlim(first, last)
    # Room per label in steps: the axes are about 7 inches (504 points) wide.
    steps_per_point = (last - first) / (72 * 7)
    starts = [(snapshots[index].step - 0.5, epoch) for index, epoch in epoch_starts(snapshots)]
    labelled = labelled_epochs(starts, lambda text: (len(text) + 1.5) * 0.6 * EPOCH_FONT_SIZE * steps_per_point)
    for boundary, _epoch in labelled[1:] if labelled and labelled[0][0] <= first else labelled:
        axes.axvline(boundary, color="grey", linestyle=":", linewidth=0.8)
    epochs = axes.secondary_xaxis("top")
    epochs.set_xticks([x for x, _ in labelled], labels=[str(epoch) for _, epoch in labelled],
                      fontsize=EPOCH_FONT_SIZE, color="grey")
    epochs.tick_params(colors="grey")
    epochs.set_xlabel("epoch", fontsize=EPOCH_FONT_SIZE, color="grey")
    axes.set_xlabel("step")
    axes.set_ylabel("mean loss")
    axes.set_title(f"{job.display_name or job.tuned_model_id} ({job.id}, {job.state.value})")
    axes.grid(alpha=0.3)
    return figure
