-- What the operator tools read, for PostgreSQL: `outbox stats/show/mailed/
-- suppressions`, the status page and its row pages. Nothing here writes. The
-- mailer's claimer reads suppressed_among too (mailer_service/store.py). The
-- summary of rows per status is the contract's (outbox_contract/summary.py).

-- name: statuses --
-- The status of each of :ids that exists, to explain why it was not retried.
SELECT id, status
FROM outbox
WHERE id IN :ids;

-- name: mailed --
-- Every row for one address, as To, Cc or Bcc, or redacted to its hash.
SELECT id, status, created_at, sent_at, message_id,
       recipient_hash IS NOT NULL AS redacted
FROM outbox
WHERE lower(recipient) = :recipient
   OR recipient_hash = :recipient_hash
   OR EXISTS (
          SELECT 1
          FROM jsonb_array_elements(coalesce(message -> 'to', '[]')
                                    || coalesce(message -> 'cc', '[]')
                                    || coalesce(message -> 'bcc', '[]')) AS r
          WHERE lower(r ->> 'address') = :recipient)
ORDER BY id;

-- name: show_row --
-- One row, whole, for `outbox show` (the attachments' content excepted).
SELECT id, status, priority, attempts, created_at, available_at, last_attempt_at,
       sent_at, recipient, subject, message_id, dedupe_key, last_error,
       body_text, body_html, message, refused
FROM outbox
WHERE id = :id;

-- name: show_attachments --
-- The attachments of one row, in order, by size rather than content.
SELECT position, filename, content_type, disposition, length(content) AS size
FROM outbox_attachments
WHERE outbox_id = :id
ORDER BY position;

-- name: show_attempts --
-- The attempt history of one row, oldest first.
SELECT attempt, started_at, ended_at, worker, result, smtp_code, enhanced_code,
       error, refused
FROM outbox_attempts
WHERE outbox_id = :id
ORDER BY attempt, id;

-- name: suppressions --
-- The whole suppression list, newest first.
SELECT address, reason, smtp_code, enhanced_code, detail, created_at
FROM outbox_suppressions
ORDER BY created_at DESC, address;

-- name: per_minute --
-- Rows sent and rows failed in the last hour, by whole minutes ago (0 = this minute).
SELECT minutes_ago, sum(sent) AS sent, sum(failed) AS failed
FROM (
    SELECT CAST(floor(EXTRACT(EPOCH FROM now() - sent_at) / 60) AS integer)
               AS minutes_ago,
           1 AS sent, 0 AS failed
    FROM outbox
    WHERE status = 'sent' AND sent_at > now() - interval '1 hour'
    UNION ALL
    SELECT CAST(floor(EXTRACT(EPOCH FROM now() - last_attempt_at) / 60) AS integer),
           0, 1
    FROM outbox
    WHERE status = 'failed' AND last_attempt_at > now() - interval '1 hour'
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
