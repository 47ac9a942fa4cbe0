"""The burst phase's section of BENCHMARKS.md: ticks and claims per signup."""

from __future__ import annotations

from bench.burst import Burst
from bench.procs import GUNICORN_SETTINGS


def _verdict(burst: Burst) -> str:
    """Say whether this burst cost fewer ticks and empty claims than signups."""
    counts = (
        ("ticks", burst.counts.ticks),
        ("empty claims", burst.counts.empty_claims),
    )
    said = " and ".join(
        f"{count:,} {what} ({burst.share(count):.2%} of them)" for what, count in counts
    )
    missed = [what for what, count in counts if not burst.fewer_than_signups(count)]
    verdict = (
        f"target **missed**: not fewer {' nor '.join(missed)} than signups"
        if missed
        else "target met"
    )
    return f"{burst.producers}: {burst.signups:,} signups, {said}; {verdict}."


def _failures(burst: Burst) -> str:
    """Return what went wrong with the signups that failed, e.g. `` (HTTP 503: 2)``."""
    if not burst.failures:
        return ""
    kinds = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(burst.failures.items()))
    return f" ({kinds})"


def burst_section(bursts: list[Burst]) -> list[str]:
    """Return the Markdown section of the bursts."""
    if not bursts:
        return []
    rows = [
        f"| {b.producers} | {b.concurrent} | {b.signups:,} | {b.burst_seconds:.1f}"
        f" | {b.signups_per_second:,.0f} | {b.sent_seconds:.1f}"
        f" | {b.counts.ticks:,} | {b.poll_rings:,} | {b.counts.claims:,}"
        f" | {b.counts.empty_claims:,} | {b.per_thousand(b.counts.ticks):,.2f}"
        f" | {b.per_thousand(b.counts.empty_claims):,.2f} |"
        for b in bursts
    ]
    short = [
        f"{b.producers}: not committed, {b.requested - b.signups:,} of"
        f" {b.requested:,} signups{_failures(b)}."
        for b in bursts
        if b.signups < b.requested
    ]
    first = bursts[0]
    return [
        "## A burst of concurrent signups: ticks and claims",
        "",
        "One mailer (default settings, `MAILER_POLL_INTERVAL` ="
        f" {first.poll_interval:g} s) idles against {first.sink} until its"
        " listener waits in `outbox_waiters`, so the first commit wakes it."
        " Then many producers commit the signups at once: HTTP clients against"
        f" the signup service (`gunicorn {GUNICORN_SETTINGS}`, a new connection"
        " per request), or threads committing signup-shaped SQL transactions"
        " (as in the producers phase). Ticks and claim statements are the"
        " mailer's own `mailer_ticks_total` and `mailer_claims_total{found=...}`,"
        " read from its metrics port while it idles before the burst and again"
        " once it idles after the drain, so they include the poll's ticks (at most the"
        " column next to them). Seconds are on the database clock, from the"
        " first signup's transaction.",
        "",
        "| producers | at once | signups committed | burst s | signups/s"
        " | all sent after s | ticks | poll rings at most | claims | empty claims"
        " | ticks per 1,000 signups | empty claims per 1,000 signups |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "A tick claims for as long as rows are due: producers faster than the"
        " mailer fold into a few long ticks, while producers slower than it let"
        " it catch up, so a later commit starts a tick of its own (a claim that"
        " finds fewer rows than it asked for ends the tick without an empty"
        " claim).",
        "",
        "Target (issue #17): fewer ticks than signups, and fewer empty claims"
        " than signups.",
        "",
        *(f"- {_verdict(b)}" for b in bursts),
        *(f"- {line}" for line in short),
        "",
    ]
