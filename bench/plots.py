"""The charts next to BENCHMARKS.md: throughput per mailer count, latency CDF.

matplotlib is the optional ``bench`` extra; it is imported only here, with
the Agg backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bench.ceilings import FLASK_MAIL, RAW
from bench.commit_latency import CommitLatency
from bench.targets import COMMIT_P50_MS, COMMIT_P99_MS
from bench.throughput import Drain, MailerFigures

if TYPE_CHECKING:
    from matplotlib.axis import Axis

THROUGHPUT_PNG = "throughput.png"
LATENCY_PNG = "latency_cdf.png"
DPI = 110
LATENCY_TARGETS_MS = {"p50 target": COMMIT_P50_MS, "p99 target": COMMIT_P99_MS}
COMMIT_AXIS_MIN_MS = 100.0  # the latency axis reaches at least twice this


def _pyplot() -> ModuleType:
    """Return matplotlib.pyplot on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_axis(axis: Axis) -> None:
    """Label a log axis 1, 10, 100 rather than 10^0, 10^1, 10^2."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))


def plot_throughput(
    figures: MailerFigures, capacity: list[Drain] | None, path: Path
) -> Path:
    """Plot drain rates against mailer processes, with the ceilings as lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    counts = [d.processes for d in figures.drains]
    ax.plot(
        counts,
        [d.per_second for d in figures.drains],
        marker="o",
        label="mailer processes draining the outbox",
    )
    if capacity:
        ax.plot(
            [d.processes for d in capacity],
            [d.per_second for d in capacity],
            marker="s",
            linestyle="--",
            label="capacity phase (same set-up, later)",
        )
    for loop, style in ((FLASK_MAIL, "-."), (RAW, ":")):
        ceiling = figures.ceilings[loop]
        ax.axhline(
            ceiling.per_second,
            linestyle=style,
            color="grey" if loop == RAW else "tab:red",
            label=f"{ceiling.name} ({ceiling.per_second:.0f}/s)",
        )
    ax.set_xlabel("mailer processes")
    # Log scale: the raw loop can be 10-30x the rest and would flatten them.
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    ax.set_ylabel("messages per second (log scale)")
    ax.set_xticks(sorted({*counts, *(d.processes for d in capacity or [])}))
    ax.set_title(f"Delivery to {figures.ceilings[RAW].sink}")
    ax.grid(alpha=0.3)
    # Below the axes: the lines span the whole width, any corner would hide one.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_latency_cdf(latency: CommitLatency, path: Path) -> Path:
    """Plot the empirical CDF of commit-to-250 latency, with the targets."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ordered = sorted(latency.samples_ms)
    shares = [(i + 1) / len(ordered) for i in range(len(ordered))]
    ax.step(ordered, shares, where="post", label=f"{len(ordered)} rows, idle mailer")
    for (name, value), style in zip(
        LATENCY_TARGETS_MS.items(), ("--", ":"), strict=True
    ):
        ax.axvline(
            value, color="tab:red", linestyle=style, label=f"{name} {value:g} ms"
        )
    ax.set_xscale("log")
    # From 1 ms or less, so a wake-on-commit mailer's milliseconds fit too.
    ax.set_xlim(
        min([1.0, *ordered[:1]]) / 2,
        max([COMMIT_AXIS_MIN_MS, *ordered[-1:]]) * 2,
    )
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("commit to SMTP 250 (ms, log scale)")
    ax.set_ylabel("share of rows")
    ax.set_ylim(0, 1.02)
    ax.set_title("Commit to SMTP 250, one idle mailer, default settings")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def write_plots(
    figures: MailerFigures,
    latency: CommitLatency,
    capacity: list[Drain] | None,
    folder: Path,
) -> list[Path]:
    """Write both charts into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        plot_throughput(figures, capacity, folder / THROUGHPUT_PNG),
        plot_latency_cdf(latency, folder / LATENCY_PNG),
    ]
