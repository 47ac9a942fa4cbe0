-- The mailer's SQL for PostgreSQL. Every statement after the claim is fenced by
-- "locked_by = :worker_id AND status = 'sending'": a worker whose lease expired
-- and whose row was claimed again by another worker changes nothing.
-- Times come from the database clock, so replicas never compare skewed clocks.

-- name: claim_due --
-- Lease up to :batch_size due rows, most urgent priority first: pending ones, and
-- sending ones whose lease expired (send_started_at tells whether a send began).
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
    ORDER BY priority, available_at, id
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
RETURNING id, recipient, subject, body_text, body_html, message_id, attempts,
          send_started_at,
          CAST(EXTRACT(EPOCH FROM now() - created_at) AS double precision) AS age_seconds,
          message,
          CAST(EXTRACT(EPOCH FROM created_at) AS double precision) AS created_epoch,
          bypass_suppression, priority,
          CAST(EXTRACT(EPOCH FROM available_at) AS double precision) AS due_epoch;

-- name: extend_leases --
-- Push the lease of rows this worker still holds; returns the ids it holds.
UPDATE outbox
SET locked_until = now() + make_interval(secs => :lease_seconds)
WHERE id IN :ids AND locked_by = :worker_id AND status = 'sending'
RETURNING id;

-- name: load_attachments --
-- The attachments of one row, in order: read only when that row is built.
SELECT filename, content_type, disposition, headers, content
FROM outbox_attachments
WHERE outbox_id = :id
ORDER BY position;

-- name: mark_sent --
-- The SMTP server accepted the message.
-- With its attempt row, in the same statement.
WITH done AS (
    UPDATE outbox
    SET status = 'sent',
        sent_at = now(),
        attempts = attempts + 1,
        last_attempt_at = now(),
        locked_by = NULL,
        locked_until = NULL,
        refused = CAST(:refused AS jsonb)
    WHERE id = :id AND locked_by = :worker_id AND status = 'sending'
    RETURNING id, attempts
)
INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at, worker, result,
                             smtp_code, enhanced_code, error, refused)
SELECT id, attempts, now() - make_interval(secs => :took), now(), :worker_id, :result,
       :code, :enhanced, :error, CAST(:refused AS jsonb)
FROM done
RETURNING outbox_id;

-- name: mark_retry --
-- A transient failure: try again after :delay_seconds.
-- With its attempt row, in the same statement.
WITH done AS (
    UPDATE outbox
    SET status = 'pending',
        attempts = attempts + 1,
        last_attempt_at = now(),
        last_error = :error,
        available_at = now() + make_interval(secs => :delay_seconds),
        send_started_at = NULL,
        locked_by = NULL,
        locked_until = NULL,
        refused = CAST(:refused AS jsonb)
    WHERE id = :id AND locked_by = :worker_id AND status = 'sending'
    RETURNING id, attempts
)
INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at, worker, result,
                             smtp_code, enhanced_code, error, refused)
SELECT id, attempts, now() - make_interval(secs => :took), now(), :worker_id, :result,
       :code, :enhanced, :error, CAST(:refused AS jsonb)
FROM done
RETURNING outbox_id;

-- name: mark_failed --
-- A permanent failure, or the last attempt failed: never retried automatically.
-- With its attempt row, in the same statement.
WITH done AS (
    UPDATE outbox
    SET status = 'failed',
        attempts = attempts + 1,
        last_attempt_at = now(),
        last_error = :error,
        locked_by = NULL,
        locked_until = NULL,
        refused = CAST(:refused AS jsonb)
    WHERE id = :id AND locked_by = :worker_id AND status = 'sending'
    RETURNING id, attempts
)
INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at, worker, result,
                             smtp_code, enhanced_code, error, refused)
SELECT id, attempts, now() - make_interval(secs => :took), now(), :worker_id, :result,
       :code, :enhanced, :error, CAST(:refused AS jsonb)
FROM done
RETURNING outbox_id;

-- name: mark_suppressed --
-- Every recipient is on the suppression list: nothing was given to SMTP.
WITH done AS (
    UPDATE outbox
    SET status = 'suppressed',
        attempts = attempts + 1,
        last_attempt_at = now(),
        last_error = :error,
        locked_by = NULL,
        locked_until = NULL,
        refused = CAST(:refused AS jsonb)
    WHERE id = :id AND locked_by = :worker_id AND status = 'sending'
    RETURNING id, attempts
)
INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at, worker, result,
                             smtp_code, enhanced_code, error, refused)
SELECT id, attempts, now() - make_interval(secs => :took), now(), :worker_id, :result,
       :code, :enhanced, :error, CAST(:refused AS jsonb)
FROM done
RETURNING outbox_id;

-- name: mark_started --
-- MAILER_ON_AMBIGUOUS=hold: the send of this row begins now. The marker must
-- survive a server crash, so this one transaction commits synchronously. The
-- setting is local to the statement's own transaction (set_config's true), so
-- no session state is left behind: safe behind PgBouncer's transaction pooling.
WITH durable AS (SELECT set_config('synchronous_commit', 'on', true) AS setting)
UPDATE outbox
SET send_started_at = now()
FROM durable
WHERE id = :id AND locked_by = :worker_id AND status = 'sending'
  AND durable.setting = 'on';

-- name: release --
-- Hand rows back untouched (shutdown, or the connection died): no attempt charged.
UPDATE outbox
SET status = 'pending',
    locked_by = NULL,
    locked_until = NULL
WHERE id IN :ids AND locked_by = :worker_id AND status = 'sending';

-- name: suppressed_among --
-- Which of :addresses (lower-cased) are on the suppression list.
SELECT address
FROM outbox_suppressions
WHERE address IN :addresses;

-- name: suppress_bounced --
-- A hard bounce: never give this address to SMTP again (until lifted).
INSERT INTO outbox_suppressions (address, reason, smtp_code, enhanced_code, detail)
VALUES (:address, 'bounce', :code, :enhanced, :detail)
ON CONFLICT (address) DO NOTHING;

-- name: lift_suppression --
-- A delivery to a suppressed address succeeded (it bypassed the list): lift it.
DELETE FROM outbox_suppressions
WHERE address IN :addresses;

-- name: take_send_turn --
-- The fleet-wide rate limit (GCRA, no burst): take the next send time if it has
-- come, and push it on by :interval. Returns 0 when this send may go now, else
-- the seconds until it may.
WITH meter AS (
    SELECT next_at FROM outbox_send_rate WHERE id = 1 FOR UPDATE
), taken AS (
    UPDATE outbox_send_rate
    SET next_at = greatest(meter.next_at, clock_timestamp())
                  + make_interval(secs => :interval)
    FROM meter
    WHERE outbox_send_rate.id = 1
      AND meter.next_at <= clock_timestamp()
    RETURNING 1
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM taken) THEN 0.0
            ELSE greatest(0.001, EXTRACT(EPOCH FROM meter.next_at - clock_timestamp()))
       END AS wait_seconds
FROM meter;

-- name: take_connection_slot --
-- MAILER_MAX_CONNECTIONS: hold slot :slot for this database session, if free.
-- The server frees it when the session ends, so a dead mailer leaks no slot.
SELECT pg_try_advisory_lock(:lock_class, :slot);

-- name: give_connection_slot --
-- Hand slot :slot back.
SELECT pg_advisory_unlock(:lock_class, :slot);
