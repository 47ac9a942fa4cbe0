-- The status page's SQL for the embedded SQLite demo: the same statements as
-- status_postgresql.sql. Times are UTC text; julianday() does the arithmetic.
-- The row page also reads the admin SQL's show_* and suppressions statements.

-- name: summary --
-- One row per status from the outbox_summary view, in lifecycle order.
SELECT status, total, oldest_due_age_seconds, failed_last_hour
FROM outbox_summary
ORDER BY CASE status
    WHEN 'pending' THEN 1 WHEN 'sending' THEN 2 WHEN 'sent' THEN 3
    WHEN 'failed' THEN 4 WHEN 'cancelled' THEN 5 WHEN 'suppressed' THEN 6 ELSE 7
END, status;

-- name: per_minute --
-- Rows sent and rows failed in the last hour, by whole minutes ago (0 = this minute).
SELECT minutes_ago, sum(sent) AS sent, sum(failed) AS failed
FROM (
    SELECT CAST((julianday('now') - julianday(sent_at)) * 1440 AS INTEGER)
               AS minutes_ago,
           1 AS sent, 0 AS failed
    FROM outbox
    WHERE status = 'sent'
      AND sent_at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')
    UNION ALL
    SELECT CAST((julianday('now') - julianday(last_attempt_at)) * 1440 AS INTEGER),
           0, 1
    FROM outbox
    WHERE status = 'failed'
      AND last_attempt_at > strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')
) AS recent
GROUP BY minutes_ago
ORDER BY minutes_ago;

-- name: latest_failures --
-- The :limit most recently failed rows, with why.
SELECT id, recipient, attempts, last_attempt_at, last_error
FROM outbox
WHERE status = 'failed'
ORDER BY last_attempt_at DESC NULLS LAST, id DESC
LIMIT :limit;

-- name: by_recipient --
-- The :limit newest rows addressed to :recipient, ignoring case.
SELECT id, status, attempts, created_at, sent_at, last_attempt_at, last_error
FROM outbox
WHERE lower(recipient) = lower(:recipient)
ORDER BY id DESC
LIMIT :limit;

-- name: suppressed_among --
-- Which of :addresses (lower-cased) are on the suppression list.
SELECT address
FROM outbox_suppressions
WHERE address IN :addresses;
