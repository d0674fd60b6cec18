-- Verification mails to an address a user typed (a new notification email,
-- an alternate email): at most one per user and one per address every 5
-- minutes, and 10 per account an hour. Kept apart from the pending-change
-- columns so that blanking the address or verifying it in between resets
-- nothing. Rows older than a day are deleted as new ones come.
CREATE TABLE verification_mails (
    id         UUID        PRIMARY KEY,
    user_id    UUID        NOT NULL,
    account_id UUID,
    -- Lower-cased.
    address    TEXT        NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX verification_mails_by_user ON verification_mails (user_id, sent_at);
CREATE INDEX verification_mails_by_address ON verification_mails (address, sent_at);
CREATE INDEX verification_mails_by_account ON verification_mails (account_id, sent_at);
CREATE INDEX verification_mails_by_time ON verification_mails (sent_at);

-- The alternate email (billing notices) is set in identity; notification
-- mails to it only once its owner proved it with a mailed token.
ALTER TABLE preferences
    ADD COLUMN alternate_verified_email TEXT NOT NULL DEFAULT '',
    ADD COLUMN alternate_pending_email  TEXT NOT NULL DEFAULT '',
    ADD COLUMN alternate_token_hash     BYTEA,
    ADD COLUMN alternate_expires_at     TIMESTAMPTZ;
CREATE UNIQUE INDEX preferences_alternate_token ON preferences (alternate_token_hash)
    WHERE alternate_token_hash IS NOT NULL;
