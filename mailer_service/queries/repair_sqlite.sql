-- What operators change, for the embedded SQLite demo: the same statements
-- as repair_postgresql.sql. Times are UTC text with milliseconds, compared as
-- text exactly as the mailer's claim compares them.

-- name: retry_failed --
-- Put the failed rows among :ids back to pending, due now, with a fresh attempt budget.
UPDATE outbox
SET status = 'pending',
    attempts = 0,
    send_started_at = NULL,
    available_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE id IN :ids AND status = 'failed' AND NOT EXISTS (
      SELECT 1 FROM outbox AS other
      WHERE other.dedupe_key = outbox.dedupe_key
        AND other.status IN ('pending', 'sending'))
RETURNING id;

-- name: requeue_failed --
-- Put every failed row back to pending, due now, with a fresh attempt budget.
UPDATE outbox
SET status = 'pending',
    attempts = 0,
    send_started_at = NULL,
    available_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE status = 'failed' AND NOT EXISTS (
      SELECT 1 FROM outbox AS other
      WHERE other.dedupe_key = outbox.dedupe_key
        AND other.status IN ('pending', 'sending'));

-- name: requeue_failed_since --
-- The same, for failed rows whose last attempt was in the last :seconds.
UPDATE outbox
SET status = 'pending',
    attempts = 0,
    send_started_at = NULL,
    available_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE status = 'failed' AND NOT EXISTS (
      SELECT 1 FROM outbox AS other
      WHERE other.dedupe_key = outbox.dedupe_key
        AND other.status IN ('pending', 'sending'))
  AND last_attempt_at >= strftime('%Y-%m-%d %H:%M:%f', 'now',
                                  printf('%+.3f seconds', -:seconds));

-- name: suppress --
-- Put an address on the suppression list by hand (or say it is there already).
INSERT INTO outbox_suppressions (address, reason, detail, created_at)
VALUES (:address, 'manual', :detail, strftime('%Y-%m-%d %H:%M:%f', 'now'))
ON CONFLICT (address) DO NOTHING
RETURNING address;

-- name: unsuppress --
-- Take an address off the suppression list.
DELETE FROM outbox_suppressions
WHERE address = :address
RETURNING address;
