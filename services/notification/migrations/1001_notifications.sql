-- The projection grows: alternate emails, account names and contacts, and
-- removed memberships (kept as empty role sets so an older event cannot
-- bring them back).
ALTER TABLE recipients ADD COLUMN alternate_email TEXT NOT NULL DEFAULT '';

CREATE TABLE accounts (
    account_id      UUID PRIMARY KEY,
    display_name    TEXT        NOT NULL DEFAULT '',
    display_time    TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    legal_name      TEXT        NOT NULL DEFAULT '',
    legal_time      TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    -- Contacts, as {"primary": {"name", "email"}, "legal": ..., "security": ...}.
    contacts        JSONB       NOT NULL DEFAULT '{}',
    contacts_time   TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    merged_into     UUID
);

-- Preferences; a user without a row has the defaults.
CREATE TABLE preferences (
    user_id             UUID PRIMARY KEY,
    job_title           TEXT        NOT NULL DEFAULT '',
    -- Empty: the locale identity knows.
    email_language      TEXT        NOT NULL DEFAULT '',
    -- Verified notification email; empty: the sign-in email.
    notification_email  TEXT        NOT NULL DEFAULT '',
    pending_email       TEXT        NOT NULL DEFAULT '',
    pending_token_hash  BYTEA,
    pending_expires_at  TIMESTAMPTZ,
    email_opt_outs      TEXT[]      NOT NULL DEFAULT '{}',
    workspace_opt_outs  TEXT[]      NOT NULL DEFAULT '{}',
    version             BIGINT      NOT NULL DEFAULT 1,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX preferences_pending_token ON preferences (pending_token_hash)
    WHERE pending_token_hash IS NOT NULL;

-- In-portal notifications: one per source (event × message) and user.
ALTER TABLE notifications
    ADD COLUMN template    TEXT        NOT NULL DEFAULT '',
    ADD COLUMN source_key  TEXT,
    ADD COLUMN action_key  TEXT,
    ADD COLUMN due_at      TIMESTAMPTZ,
    ADD COLUMN resolved_at TIMESTAMPTZ,
    ADD COLUMN link        TEXT        NOT NULL DEFAULT '',
    -- Time of the fact that created it, compared with the fact that resolves it.
    ADD COLUMN event_time  TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE UNIQUE INDEX notifications_source ON notifications (user_id, source_key);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX notifications_one_open_action ON notifications (user_id, action_key)
    WHERE resolved_at IS NULL AND action_key IS NOT NULL;
CREATE INDEX notifications_open_actions ON notifications (account_id, action_key)
    WHERE resolved_at IS NULL AND action_key IS NOT NULL;

-- Facts that resolved actions, so an action whose creating event arrives
-- after the resolving one (events may be reordered) is born resolved.
CREATE TABLE resolved_actions (
    account_id UUID        NOT NULL,
    action_key TEXT        NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, action_key)
);

-- Mail deliveries: one per source × recipient × message, however often the
-- source arrives. The rendered message may carry a token: it is sealed
-- (AES-256-GCM) and erased once the delivery is final.
CREATE TABLE deliveries (
    id              UUID PRIMARY KEY,
    source_key      TEXT        NOT NULL,
    recipient_key   TEXT        NOT NULL,
    template        TEXT        NOT NULL,
    recipient       TEXT        NOT NULL,
    user_id         UUID,
    account_id      UUID,
    locale          TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('QUEUED', 'SENT', 'FAILED', 'SUPPRESSED')),
    attempts        INT         NOT NULL DEFAULT 0,
    last_error      TEXT        NOT NULL DEFAULT '',
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sealed_kid      TEXT,
    sealed          BYTEA,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    UNIQUE (source_key, recipient_key, template)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'QUEUED';
CREATE INDEX deliveries_by_account ON deliveries (account_id, created_at DESC, id DESC);
CREATE INDEX deliveries_sent_to ON deliveries (recipient, sent_at) WHERE status = 'SENT';
