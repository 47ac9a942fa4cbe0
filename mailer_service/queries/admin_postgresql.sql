-- The admin CLI's SQL for PostgreSQL (mailer_service/admin.py). Every statement
-- touches only rows in one status that no mailer writes to: retries take
-- 'failed' rows, purges take 'sent' rows, so they are safe while mailers run.

-- name: summary --
-- One row per status, in lifecycle order, from the outbox_summary view.
SELECT status, total, oldest_due_age_seconds, failed_last_hour
FROM outbox_summary
ORDER BY CASE status
    WHEN 'pending' THEN 1 WHEN 'sending' THEN 2 WHEN 'sent' THEN 3 ELSE 4
END;

-- name: retry_failed --
-- Put the failed rows among :ids back to pending, due now, with a fresh attempt budget.
UPDATE outbox
SET status = 'pending',
    attempts = 0,
    send_started_at = NULL,
    available_at = now()
WHERE id IN :ids AND status = 'failed' AND NOT EXISTS (
      SELECT 1 FROM outbox AS other
      WHERE other.dedupe_key = outbox.dedupe_key
        AND other.status IN ('pending', 'sending'))
RETURNING id;

-- name: statuses --
-- The status of each of :ids that exists, to explain why it was not retried.
SELECT id, status
FROM outbox
WHERE id IN :ids;

-- name: requeue_failed --
-- Put every failed row back to pending, due now, with a fresh attempt budget.
UPDATE outbox
SET status = 'pending',
    attempts = 0,
    send_started_at = NULL,
    available_at = now()
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
    available_at = now()
WHERE status = 'failed' AND NOT EXISTS (
      SELECT 1 FROM outbox AS other
      WHERE other.dedupe_key = outbox.dedupe_key
        AND other.status IN ('pending', 'sending'))
  AND last_attempt_at >= now() - make_interval(secs => :seconds);

-- name: purge_sent_batch --
-- Delete up to :batch_size sent rows delivered more than :seconds ago; rows another
-- session has locked are skipped, so a purge never waits on anyone.
DELETE FROM outbox
WHERE id IN (
    SELECT id
    FROM outbox
    WHERE status = 'sent'
      AND sent_at < now() - make_interval(secs => :seconds)
    ORDER BY id
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
);
