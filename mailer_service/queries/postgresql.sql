-- The mailer's SQL for PostgreSQL. Every statement after the claim is fenced by
-- "locked_by = :worker_id AND status = 'sending'": a worker whose lease expired
-- and whose row was claimed again by another worker changes nothing.
-- Times come from the database clock, so replicas never compare skewed clocks.

-- name: claim_due --
-- Lease up to :batch_size due rows: pending ones, and sending ones whose lease expired.
UPDATE outbox
SET status = 'sending',
    locked_by = :worker_id,
    locked_until = now() + make_interval(secs => :lease_seconds)
WHERE id IN (
    SELECT id
    FROM outbox
    WHERE status IN ('pending', 'sending')
      AND available_at <= now()
      AND (status = 'pending' OR locked_until < now())
    ORDER BY available_at, id
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
RETURNING id, recipient, subject, body_text, body_html, message_id, attempts,
          CAST(EXTRACT(EPOCH FROM now() - created_at) AS double precision) AS age_seconds;

-- name: extend_leases --
-- Push the lease of rows this worker still holds; returns the ids it holds.
UPDATE outbox
SET locked_until = now() + make_interval(secs => :lease_seconds)
WHERE id IN :ids AND locked_by = :worker_id AND status = 'sending'
RETURNING id;

-- name: mark_sent --
-- The SMTP server accepted the message.
UPDATE outbox
SET status = 'sent',
    sent_at = now(),
    attempts = attempts + 1,
    last_attempt_at = now(),
    locked_by = NULL,
    locked_until = NULL
WHERE id = :id AND locked_by = :worker_id AND status = 'sending';

-- name: mark_retry --
-- A transient failure: try again after :delay_seconds.
UPDATE outbox
SET status = 'pending',
    attempts = attempts + 1,
    last_attempt_at = now(),
    last_error = :error,
    available_at = now() + make_interval(secs => :delay_seconds),
    locked_by = NULL,
    locked_until = NULL
WHERE id = :id AND locked_by = :worker_id AND status = 'sending';

-- name: mark_failed --
-- A permanent failure, or the last attempt failed: never retried automatically.
UPDATE outbox
SET status = 'failed',
    attempts = attempts + 1,
    last_attempt_at = now(),
    last_error = :error,
    locked_by = NULL,
    locked_until = NULL
WHERE id = :id AND locked_by = :worker_id AND status = 'sending';

-- name: release --
-- Hand rows back untouched (shutdown, or the connection died): no attempt charged.
UPDATE outbox
SET status = 'pending',
    locked_by = NULL,
    locked_until = NULL
WHERE id IN :ids AND locked_by = :worker_id AND status = 'sending';
