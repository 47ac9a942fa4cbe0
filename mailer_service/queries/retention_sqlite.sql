-- Retention, for the embedded SQLite demo: the same statements as
-- retention_postgresql.sql. Times are UTC text with milliseconds.

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

-- name: redact_suppressions --
-- Suppression entries are addresses: they last as long as the retention does.
DELETE FROM outbox_suppressions
WHERE created_at < strftime('%Y-%m-%d %H:%M:%f', 'now', printf('-%d seconds', :seconds));
