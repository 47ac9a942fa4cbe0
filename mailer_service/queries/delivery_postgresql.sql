-- The mailer's SQL for PostgreSQL. Every statement after the claim is fenced by
-- "locked_by = :mailer_id AND status = 'sending'": a mailer whose lease expired
-- and whose row was claimed again by another mailer changes nothing.
-- Times come from the database clock, so replicas never compare skewed clocks.

-- name: claim_due --
-- Lease up to :batch_size due rows, most urgent priority first: pending ones, and
-- sending ones whose lease expired (send_started_at tells whether a send began).
UPDATE outbox
SET status = 'sending',
    locked_by = :mailer_id,
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
-- Push the lease of rows this mailer still holds; returns the ids it holds.
UPDATE outbox
SET locked_until = now() + make_interval(secs => :lease_seconds)
WHERE id IN :ids AND locked_by = :mailer_id AND status = 'sending'
RETURNING id;

-- name: load_attachments --
-- The attachments of one row, in order: read only when that row is built.
SELECT filename, content_type, disposition, headers, content
FROM outbox_attachments
WHERE outbox_id = :id
ORDER BY position;

-- name: complete --
-- The completer's flush: many outcomes in one statement, each with its attempt
-- row. Arrays line up by position: row :row_ids[i] ended with :results[i] ('sent',
-- 'retry', 'failed' or 'suppressed'). The fence is the same as every write's,
-- so the ids returned are exactly the rows this mailer still owned.
WITH outcome AS (
    SELECT *
    FROM unnest(CAST(:row_ids AS bigint[]), CAST(:results AS text[]),
                CAST(:errors AS text[]), CAST(:delays AS double precision[]),
                CAST(:tooks AS double precision[]), CAST(:codes AS integer[]),
                CAST(:enhanced AS text[]), CAST(:refused AS jsonb[]))
         AS o(id, result, error, delay_seconds, took, code, enhanced, refused)
), done AS (
    UPDATE outbox
    SET status = CASE o.result WHEN 'retry' THEN 'pending' ELSE o.result END,
        sent_at = CASE o.result WHEN 'sent' THEN now() ELSE outbox.sent_at END,
        attempts = outbox.attempts + 1,
        last_attempt_at = now(),
        last_error = CASE o.result WHEN 'sent' THEN outbox.last_error ELSE o.error END,
        available_at = CASE o.result
            WHEN 'retry' THEN now() + make_interval(secs => o.delay_seconds)
            ELSE outbox.available_at END,
        send_started_at = CASE o.result
            WHEN 'retry' THEN NULL ELSE outbox.send_started_at END,
        locked_by = NULL,
        locked_until = NULL,
        refused = o.refused
    FROM outcome AS o
    WHERE outbox.id = o.id AND outbox.locked_by = :mailer_id
      AND outbox.status = 'sending'
    RETURNING outbox.id, outbox.attempts, o.result, o.took, o.code, o.enhanced,
              o.error, o.refused
)
INSERT INTO outbox_attempts (outbox_id, attempt, started_at, ended_at, worker, result,
                             smtp_code, enhanced_code, error, refused)
SELECT id, attempts, now() - make_interval(secs => took), now(), :mailer_id, result,
       code, enhanced, error, refused
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
WHERE id = :id AND locked_by = :mailer_id AND status = 'sending'
  AND durable.setting = 'on';

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
