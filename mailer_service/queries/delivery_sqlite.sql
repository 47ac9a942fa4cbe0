-- The mailer's SQL for the embedded SQLite demo: the same statements as
-- delivery_postgresql.sql, fenced the same way. SQLite has one writer at a
-- time, so the claim needs no SKIP LOCKED; replica safety is a PostgreSQL
-- promise.
-- Times are UTC text with milliseconds, from SQLite's own clock.

-- name: claim_due --
-- Lease up to :batch_size due rows, most urgent priority first: pending ones, and
-- sending ones whose lease expired (send_started_at tells whether a send began).
UPDATE outbox
SET status = 'sending',
    locked_by = :mailer_id,
    locked_until = strftime('%Y-%m-%d %H:%M:%f', 'now',
                            printf('%+.3f seconds', :lease_seconds))
WHERE id IN (
    SELECT id
    FROM outbox
    WHERE status IN ('pending', 'sending')
      AND available_at <= strftime('%Y-%m-%d %H:%M:%f', 'now')
      AND (status = 'pending' OR locked_until < strftime('%Y-%m-%d %H:%M:%f', 'now'))
    ORDER BY priority, available_at, id
    LIMIT :batch_size
)
RETURNING id, recipient, subject, body_text, body_html, message_id, attempts,
          send_started_at,
          (julianday('now') - julianday(created_at)) * 86400.0 AS age_seconds,
          message,
          (julianday(created_at) - 2440587.5) * 86400.0 AS created_epoch,
          bypass_suppression, priority,
          (julianday(available_at) - 2440587.5) * 86400.0 AS due_epoch;

-- name: extend_leases --
-- Push the lease of rows this mailer still holds; returns the ids it holds.
UPDATE outbox
SET locked_until = strftime('%Y-%m-%d %H:%M:%f', 'now',
                            printf('%+.3f seconds', :lease_seconds))
WHERE id IN :ids AND locked_by = :mailer_id AND status = 'sending'
RETURNING id;

-- name: load_attachments --
-- The attachments of one row, in order: read only when that row is built.
SELECT filename, content_type, disposition, headers, content
FROM outbox_attachments
WHERE outbox_id = :id
ORDER BY position;

-- name: mark_sent --
-- The SMTP server accepted the message.
UPDATE outbox
SET status = 'sent',
    sent_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    attempts = attempts + 1,
    last_attempt_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    locked_by = NULL,
    locked_until = NULL,
    refused = :refused
WHERE id = :id AND locked_by = :mailer_id AND status = 'sending'
RETURNING id, attempts;

-- name: mark_retry --
-- A transient failure: try again after :delay_seconds.
UPDATE outbox
SET status = 'pending',
    attempts = attempts + 1,
    last_attempt_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    last_error = :error,
    available_at = strftime('%Y-%m-%d %H:%M:%f', 'now',
                            printf('%+.3f seconds', :delay_seconds)),
    send_started_at = NULL,
    locked_by = NULL,
    locked_until = NULL,
    refused = :refused
WHERE id = :id AND locked_by = :mailer_id AND status = 'sending'
RETURNING id, attempts;

-- name: mark_failed --
-- A permanent failure, or the last attempt failed: never retried automatically.
UPDATE outbox
SET status = 'failed',
    attempts = attempts + 1,
    last_attempt_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    last_error = :error,
    locked_by = NULL,
    locked_until = NULL,
    refused = :refused
WHERE id = :id AND locked_by = :mailer_id AND status = 'sending'
RETURNING id, attempts;

-- name: mark_suppressed --
-- Every recipient is on the suppression list: nothing was given to SMTP.
UPDATE outbox
SET status = 'suppressed',
    attempts = attempts + 1,
    last_attempt_at = strftime('%Y-%m-%d %H:%M:%f', 'now'),
    last_error = :error,
    locked_by = NULL,
    locked_until = NULL,
    refused = :refused
WHERE id = :id AND locked_by = :mailer_id AND status = 'sending'
RETURNING id, attempts;

-- name: record_attempt --
-- The attempt row of an outcome just written, in the same transaction (SQLite
-- has no UPDATE inside WITH, so the store runs both statements in one BEGIN).
INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at, worker, result,
                             smtp_code, enhanced_code, error, refused)
VALUES (:id, :attempt,
        strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:took)),
        strftime('%Y-%m-%d %H:%M:%f', 'now'), :mailer_id, :result,
        :code, :enhanced, :error, :refused);

-- name: mark_started --
-- MAILER_ON_AMBIGUOUS=hold: the send of this row begins now.
UPDATE outbox
SET send_started_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE id = :id AND locked_by = :mailer_id AND status = 'sending';

-- name: release --
-- Hand rows back untouched (shutdown, or the connection died): no attempt charged.
UPDATE outbox
SET status = 'pending',
    locked_by = NULL,
    locked_until = NULL
WHERE id IN :ids AND locked_by = :mailer_id AND status = 'sending';

-- name: suppress_bounced --
-- A hard bounce: never give this address to SMTP again (until lifted).
INSERT INTO outbox_suppressions (address, reason, smtp_code, enhanced_code, detail)
VALUES (:address, 'bounce', :code, :enhanced, :detail)
ON CONFLICT (address) DO NOTHING;

-- name: lift_suppression --
-- A delivery to a suppressed address succeeded (it bypassed the list): lift it.
DELETE FROM outbox_suppressions
WHERE address IN :addresses;
