"""The performance targets, checked against one run's figures.

Every target is a ratio to something measured in the same run (a ceiling, an
empty table, the floor app, a burst's signups) or a latency bound, so a slow
machine shifts both sides together. Nothing here is asserted in a test: the
report shows met or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.burst import Burst
from bench.ceilings import FLASK_MAIL
from bench.claim_cost import ClaimCost
from bench.commit_latency import CommitLatency
from bench.signup_floor import FloorComparison
from bench.throughput import MailerFigures

ONE_MAILER_SHARE = 0.70  # of the Flask-Mail loop, against smtp-sink
TWO_MAILERS_SHARE = 1.00  # of the Flask-Mail loop, against smtp-sink
RELAY_EFFICIENCY = 0.8  # of concurrency x the single-connection relay rate
COMMIT_P50_MS = 20.0
COMMIT_P99_MS = 100.0
CLAIM_P99_RATIO = 1.5  # 1M sent rows over empty
SIGNUP_P50_RATIO = 1.5  # real app over the floor


@dataclass(frozen=True)
class Target:
    """One row of the targets table; ``met`` is None when it was not measured."""

    figure: str
    target: str
    measured: str
    met: bool | None


def _share_target(
    figures: MailerFigures, processes: int, share: float, plural: str
) -> Target:
    """Return the target ``processes`` mailers reach ``share`` of Flask-Mail."""
    figure = f"{processes} mailer{plural} → smtp-sink, share of the Flask-Mail loop"
    target = f"≥ {share:.0%}"
    flask = figures.ceilings[FLASK_MAIL].per_second
    drain = next((d for d in figures.drains if d.processes == processes), None)
    if drain is None or not flask:
        return Target(
            figure, target, f"not run (--mailer-processes lacks {processes})", None
        )
    measured = drain.per_second / flask
    return Target(
        figure,
        target,
        f"{measured:.0%} ({drain.per_second:.0f}/s of {flask:.0f}/s)",
        measured >= share,
    )


def _relay_target(figures: MailerFigures) -> Target:
    """Return the target for one mailer against the 50 ms relay."""
    single = figures.relay_ceilings[FLASK_MAIL].per_second
    wanted = RELAY_EFFICIENCY * figures.effective_concurrency * single
    got = figures.relay_drain.per_second
    assumed = "" if figures.concurrency != "default" else ", default taken as 1"
    return Target(
        "1 mailer → 50 ms relay",
        f"≥ {RELAY_EFFICIENCY:g} x concurrency ({figures.effective_concurrency}"
        f"{assumed}) x single connection ({single:.1f}/s) = {wanted:.1f}/s",
        f"{got:.1f}/s ({got / single:.1f}x one connection)" if single else "n/a",
        got >= wanted,
    )


def _latency_targets(latency: CommitLatency) -> list[Target]:
    """Return the commit-to-250 p50 and p99 targets."""
    rows = []
    for q, bound in ((50, COMMIT_P50_MS), (99, COMMIT_P99_MS)):
        figure = f"commit → SMTP 250, idle mailer, p{q}"
        if not latency.samples_ms:
            rows.append(Target(figure, f"≤ {bound:g} ms", "no sample", None))
            continue
        value = latency.quantile_ms(q)
        rows.append(
            Target(
                figure,
                f"≤ {bound:g} ms",
                f"{value:.1f} ms ({len(latency.samples_ms)} rows)",
                value <= bound,
            )
        )
    return rows


def _claim_target(claim: ClaimCost) -> Target:
    """Return the claim-cost target: p99 with history over p99 without."""
    ratio = claim.ratio(99)
    return Target(
        f"claim p99, {claim.history:,} sent rows vs none",
        f"≤ {CLAIM_P99_RATIO:g}x",
        f"{ratio:.2f}x",
        ratio <= CLAIM_P99_RATIO,
    )


def _floor_target(floor: FloorComparison) -> Target:
    """Return the signup target: the real app's p50 over the floor's."""
    ratio = floor.ratio(50)
    return Target(
        "signup p50, real app vs floor app (sequential)",
        f"≤ {SIGNUP_P50_RATIO:g}x",
        f"{ratio:.2f}x ({floor.real.quantile_ms(50):.1f} ms vs"
        f" {floor.floor.quantile_ms(50):.1f} ms)",
        ratio <= SIGNUP_P50_RATIO,
    )


def _burst_targets(burst: Burst) -> list[Target]:
    """Return issue #17's targets for a burst: fewer ticks and empty claims."""
    return [
        Target(
            f"burst of {burst.requested:,} signups, {burst.producers}: {what}",
            "< signups",
            f"{count:,} for {burst.signups:,} signups"
            f" ({burst.per_thousand(count):,.2f} per 1,000)",
            burst.fewer_than_signups(count),
        )
        for what, count in (
            ("ticks", burst.counts.ticks),
            ("empty claims", burst.counts.empty_claims),
        )
    ]


def evaluate(
    figures: MailerFigures,
    latency: CommitLatency,
    claim: ClaimCost,
    floor: FloorComparison,
    bursts: Sequence[Burst] = (),
) -> list[Target]:
    """Return every target with what this run measured."""
    return [
        _share_target(figures, 1, ONE_MAILER_SHARE, ""),
        _share_target(figures, 2, TWO_MAILERS_SHARE, "s"),
        _relay_target(figures),
        *_latency_targets(latency),
        _claim_target(claim),
        _floor_target(floor),
        *(target for burst in bursts for target in _burst_targets(burst)),
    ]


def table(targets: list[Target]) -> list[str]:
    """Return the targets as Markdown table lines."""
    verdicts = {True: "yes", False: "**no**", None: "n/a"}
    return [
        "| figure | target | measured | met? |",
        "|---|---|---|---|",
        *(
            f"| {t.figure} | {t.target} | {t.measured} | {verdicts[t.met]} |"
            for t in targets
        ),
    ]
