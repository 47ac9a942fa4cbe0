"""Markdown sections: mailer, attachment, latency, claim, floor and capacity figures."""

from __future__ import annotations

from bench.attachments import CONTENT_TYPE, ROUNDS, AttachmentCost
from bench.capacity import Capacity
from bench.ceilings import FLASK_MAIL, RAW, Ceiling
from bench.claim_cost import ClaimCost
from bench.commit_latency import GAP_SECONDS, CommitLatency
from bench.load import LoadResult, percentile
from bench.signup_floor import RUN_LENGTH, FloorComparison
from bench.throughput import Drain, MailerFigures


def _share(value: float, of: float) -> str:
    """Format ``value`` as a percentage of ``of``."""
    return f"{value / of:.0%}" if of else "n/a"


def _rate_rows(
    ceilings: dict[str, Ceiling], drains: list[Drain], sink: str
) -> list[str]:
    """Return the table rows for one SMTP server: both ceilings, then the drains."""
    flask, raw = ceilings[FLASK_MAIL].per_second, ceilings[RAW].per_second
    rows = [
        f"| {c.name} | {sink} | {c.messages} | {c.per_second:.1f}"
        f" | {_share(c.per_second, flask)} | {_share(c.per_second, raw)} |"
        for c in (ceilings[RAW], ceilings[FLASK_MAIL])
    ]
    rows += [
        f"| {d.name} | {sink} | {d.sent} | {d.per_second:.1f}"
        f" | {_share(d.per_second, flask)} | {_share(d.per_second, raw)} |"
        for d in drains
    ]
    return rows


def _hold_overhead(figures: MailerFigures) -> list[str]:
    """Return a sentence on what MAILER_ON_AMBIGUOUS=hold costs, if measured."""
    one = next((d for d in figures.drains if d.processes == 1), None)
    if one is None or not one.per_second:
        return []
    cost = 1 - figures.hold_drain.per_second / one.per_second
    return [
        "`MAILER_ON_AMBIGUOUS=hold` writes a synchronously committed marker"
        f" before every send: it cost {cost:.0%} of one mailer's rate here"
        f" ({figures.hold_drain.per_second:.0f} vs {one.per_second:.0f}"
        " messages/s).",
        "",
    ]


def mailer_section(figures: MailerFigures, chart: str | None) -> list[str]:
    """Return the mailer-against-ceilings section."""
    sink, relay = figures.ceilings[RAW].sink, figures.relay_ceilings[RAW].sink
    lines = [
        "## Mailer throughput against its ceilings",
        "",
        "Every sender talks to the same SMTP server in the same run, each in its"
        " own process. The raw smtplib loop sends prebuilt bytes over one"
        " connection; the Flask-Mail loop builds a `flask_mail.Message` per"
        " message and sends over one `mail.connect()`. The mailers drain an"
        " outbox of real signups' rows (default settings but"
        " `MAILER_POLL_INTERVAL=0.1`; `MAILER_CONCURRENCY`:"
        f" {figures.concurrency}). Every rate is messages / (last 250 - first"
        " 250); for the mailers that is sent rows / (max(`sent_at`) -"
        " min(`sent_at`)) read from the outbox, after checking that every row"
        " is `sent`.",
        "",
        "| sender | SMTP server | messages | messages/s | share of Flask-Mail loop"
        " | share of raw loop |",
        "|---|---|---:|---:|---:|---:|",
        *_rate_rows(figures.ceilings, [*figures.drains, figures.hold_drain], sink),
        *_rate_rows(figures.relay_ceilings, [figures.relay_drain], relay),
        "",
        *_hold_overhead(figures),
    ]
    if chart:
        lines += [f"![Throughput against mailer processes]({chart})", ""]
    return lines


def _kib(size: float, digits: int = 1) -> str:
    """Format a byte count in KB (1,024 bytes)."""
    return f"{size / 1024:,.{digits}f} KB"


def _drain_row(label: str, d: Drain) -> str:
    """Return one attachment-cost row: messages, rate and milliseconds each."""
    each = f"{1000 / d.per_second:.2f}" if d.per_second else "n/a"
    return f"| {label} | {d.sent} | {d.per_second:.1f} | {each} |"


def attachment_section(cost: AttachmentCost) -> list[str]:
    """Return what one attachment costs a mailer per message, and the database."""
    size = _kib(cost.attachment_bytes, 0)
    return [
        f"## What a {size} attachment costs",
        "",
        "One mailer process (settings as in the drains above) against"
        f" {cost.plain.sink} drains {cost.table_rows} welcome-like rows queued"
        " with `enqueue_email(session, MailMessage.build(...))`, then the same"
        f" rows each carrying one attachment of {cost.attachment_bytes:,} random"
        f" bytes (`{CONTENT_TYPE}`), {ROUNDS} rounds alternating the two. Each"
        " rate is the kind's sent rows over the sum of its rounds'"
        " max(`sent_at`) - min(`sent_at`).",
        "",
        "| rows | messages | messages/s | ms per message |",
        "|---|---:|---:|---:|",
        _drain_row("plain (text and HTML)", cost.plain),
        _drain_row(f"the same + one {size} attachment", cost.attached),
        "",
        f"With the attachment one mailer runs at **{cost.ratio:.0%}** of its"
        f" plain rate: **{cost.extra_ms:.2f} ms** more per message"
        " (1/rate with - 1/rate without). On the wire base64 makes the"
        f" attachment {_kib(cost.wire_bytes)}. In the database"
        f" `outbox_attachments` (heap, TOAST and index) holds"
        f" {_kib(cost.bytes_per_row)} per message"
        f" (`pg_total_relation_size` over {cost.table_rows} rows).",
        "",
    ]


def latency_section(latency: CommitLatency, chart: str | None) -> list[str]:
    """Return the commit-to-250 section."""
    samples = latency.samples_ms
    low, high = (gap * 1000 for gap in GAP_SECONDS)
    stop = (
        f" The phase stopped at its {latency.budget:g} s budget after"
        f" {len(samples)} of {latency.planned} rows."
        if latency.cut_short
        else ""
    )
    lines = [
        "## Commit to SMTP 250, idle mailer",
        "",
        "One mailer with default settings (no `MAILER_POLL_INTERVAL` override)"
        " idles against smtp-sink. Rows are inserted one at a time, each its own"
        " committed transaction, each waited for until `sent`, then a random"
        f" {low:.0f}-{high:.0f} ms pause. Latency is `sent_at - created_at`,"
        f" both from the database clock.{stop}",
        "",
        "| rows | p50 ms | p95 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    if samples:
        lines.append(
            f"| {len(samples)} | {latency.quantile_ms(50):.1f}"
            f" | {latency.quantile_ms(95):.1f} | {latency.quantile_ms(99):.1f}"
            f" | {max(samples):.1f} |"
        )
    lines.append("")
    if chart:
        lines += [f"![Commit to SMTP 250, CDF]({chart})", ""]
    return lines


def claim_section(claim: ClaimCost) -> list[str]:
    """Return the claim-cost section, with the plan as a code block."""
    rows = []
    for label, samples in (
        (f"{claim.pending:,} pending", claim.empty_ms),
        (f"{claim.pending:,} pending + {claim.history:,} sent", claim.history_ms),
    ):
        rows.append(
            f"| {label} | {len(samples)} | {percentile(samples, 50):.2f}"
            f" | {percentile(samples, 99):.2f} |"
        )
    return [
        "## Claim cost against history",
        "",
        "The mailer's `claim_due` statement, loaded by name from"
        " `mailer_service/queries/delivery_postgresql.sql`, timed from the client"
        " in two"
        " databases of their own: one with only the pending rows, one with the"
        " same pending rows behind the `sent` history (inserted first, as older"
        " mail would be). Each run is its own transaction, rolled back; runs"
        " alternate between the two databases so both see the same machine"
        " noise. Both tables are vacuumed and analyzed first, and (unmeasured)"
        " every 25 runs, for the dead versions the rollbacks leave.",
        "",
        "| outbox | runs | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"p99 ratio with history / without: **{claim.ratio(99):.2f}x**"
        f" (p50: {claim.ratio(50):.2f}x).",
        "",
        f"`EXPLAIN (ANALYZE, BUFFERS)` of one claim with {claim.history:,} sent rows:",
        "",
        "```",
        claim.explain,
        "```",
        "",
    ]


def _load_row(label: str, result: LoadResult) -> str:
    """Return one latency row: requests, errors and percentiles."""
    return (
        f"| {label} | {result.ok} | {result.errors} | {result.quantile_ms(50):.1f}"
        f" | {result.quantile_ms(95):.1f} | {result.quantile_ms(99):.1f} |"
    )


def floor_section(floor: FloorComparison) -> list[str]:
    """Return the real-app-against-floor section."""
    return [
        "## Signup: the real app against its floor",
        "",
        "`bench/floor_app.py` writes the same two rows (users, then outbox, same"
        " columns) and commits once with plain psycopg, one connection per"
        " thread, no ORM, no validation, no templates. Both apps run at once"
        " under the same gunicorn settings; one client sends one request at a"
        f" time, alternating between them every {RUN_LENGTH} requests. No"
        " mailer runs.",
        "",
        "| app | signups (2xx) | errors | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
        _load_row("signup service", floor.real),
        _load_row("floor app", floor.floor),
        "",
        f"Ratio real / floor: p50 **{floor.ratio(50):.2f}x**,"
        f" p99 {floor.ratio(99):.2f}x.",
        "",
    ]


def capacity_section(capacity: Capacity | None, concurrency: int) -> list[str]:
    """Return the capacity section, or nothing when ``--capacity`` was off."""
    if capacity is None:
        return []
    signups = [
        f"| {s.workers} | {s.result.ok} | {s.result.errors}"
        f" | {s.result.throughput:.1f} | {s.per_worker:.1f} |"
        for s in capacity.signups
    ]
    drains = [
        f"| {m.drain.processes} | {m.drain.sent} | {m.drain.attempts}"
        f" | {m.drain.attempts_per_second:.0f} | {m.claims_per_second:.1f}"
        f" | {m.rows_per_claim:.1f} | {m.counts.empty_claims}"
        f" | {m.completer_statements_per_second:.1f}"
        f" | {m.rows_per_completer_statement:.1f} |"
        for m in capacity.metered
    ]
    return [
        "## Capacity",
        "",
        "PostgreSQL, gunicorn, the mailers, smtp-sink and the load generator"
        " all share this machine's cores: these are what it sustains as a"
        " whole, inputs for sizing rather than limits of the design.",
        "",
        f"Signups: the signup service alone, closed loop, {concurrency} client"
        " threads, no mailer.",
        "",
        "| gunicorn workers | signups (2xx) | errors | signups/s | per worker |",
        "|---:|---:|---:|---:|---:|",
        *signups,
        "",
        "Mailers draining to smtp-sink. Every attempt is one row claimed and one"
        " outcome row written (`outbox.attempts`, summed), so attempts/s is both"
        " rows claimed/s and outcome rows written/s. The statements are the"
        " mailers' own counters, read from each one's `/metrics` just before"
        " the rows are written and once all are sent, summed over the drain's"
        " mailers: claims that found rows (`mailer_claims_total`), and the"
        " completer's writes with the rows they wrote (count and sum of"
        " `mailer_completer_batch_rows`). Rates are over the same sent_at"
        " span as attempts/s; rows per claim is attempts over claims with"
        " rows. Empty claims found nothing due, idle polls around the drain"
        " included.",
        "",
        "| mailer processes | rows sent | attempts"
        " | attempts/s (rows claimed = written)"
        " | claim statements/s (with rows) | rows per claim | empty claims"
        " | completer statements/s | rows per completer statement |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *drains,
        "",
    ]
