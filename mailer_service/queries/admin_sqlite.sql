-- The admin CLI's SQL for the embedded SQLite demo: the same statements as
-- admin_postgresql.sql. Times are UTC text with milliseconds, compared as text
-- exactly as the mailer's claim compares them.

-- name: summary --
-- One row per status, in lifecycle order, from the outbox_summary view.
SELECT status, total, oldest_due_age_seconds, failed_last_hour
FROM outbox_summary
ORDER BY CASE status
    WHEN 'pending' THEN 1 WHEN 'sending' THEN 2 WHEN 'sent' THEN 3
    WHEN 'failed' THEN 4 WHEN 'cancelled' THEN 5 ELSE 6
END;

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

-- name: purge_sent_batch --
-- Delete up to :batch_size sent rows delivered more than :seconds ago. SQLite has
-- one writer at a time, so each batch is a short write the mailer waits out.
DELETE FROM outbox
WHERE id IN (
    SELECT id
    FROM outbox
    WHERE status = 'sent'
      AND sent_at < strftime('%Y-%m-%d %H:%M:%f', 'now',
                             printf('%+.3f seconds', -:seconds))
    ORDER BY id
    LIMIT :batch_size
);

-- name: redactable_batch --
-- Up to :batch_size sent rows delivered more than :seconds ago, not yet redacted.
-- Only 'sent' rows are ever chosen: queued mail is never touched.
SELECT id, recipient
FROM outbox
WHERE status = 'sent'
  AND sent_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', -:seconds))
  AND recipient_hash IS NULL
ORDER BY id
LIMIT :batch_size;

-- name: redact_row --
-- Blank the body and every address of one sent row (the whole message's JSON and
-- the refused recipients too), keeping a keyed hash of the first address.
UPDATE outbox
SET recipient = '',
    body_text = '',
    body_html = NULL,
    message = NULL,
    refused = NULL,
    last_error = NULL,
    recipient_hash = :recipient_hash
WHERE id = :id AND status = 'sent';

-- name: redact_attachments --
-- Attachments are message content: a redacted row keeps none.
DELETE FROM outbox_attachments
WHERE outbox_id = :id;

-- name: redact_history --
-- SMTP replies quote recipients: blank each attempt's error text and refusals,
-- keeping when, who, the result and the codes.
UPDATE outbox_attempts
SET error = NULL,
    refused = NULL
WHERE outbox_id = :id;

-- name: mailed --
-- Every row for one address, as To, Cc or Bcc, or redacted to its hash.
SELECT id, status, created_at, sent_at, message_id,
       recipient_hash IS NOT NULL AS redacted
FROM outbox
WHERE lower(recipient) = :recipient
   OR recipient_hash = :recipient_hash
   OR EXISTS (
          SELECT 1
          FROM json_each(outbox.message, '$.to') AS r
          WHERE lower(json_extract(r.value, '$.address')) = :recipient
          UNION ALL
          SELECT 1
          FROM json_each(outbox.message, '$.cc') AS r
          WHERE lower(json_extract(r.value, '$.address')) = :recipient
          UNION ALL
          SELECT 1
          FROM json_each(outbox.message, '$.bcc') AS r
          WHERE lower(json_extract(r.value, '$.address')) = :recipient)
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

-- name: suppressions --
-- The whole suppression list, newest first.
SELECT address, reason, smtp_code, enhanced_code, detail, created_at
FROM outbox_suppressions
ORDER BY created_at DESC, address;

-- name: redact_suppressions --
-- Suppression entries are addresses: they last as long as the retention does.
DELETE FROM outbox_suppressions
WHERE created_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', :seconds));
