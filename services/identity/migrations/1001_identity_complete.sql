-- Everything identity needs beyond sign-up: member states and scopes, the
-- home directory of users, sessions, single-use tokens, lock-out, activity
-- and applied merges. Every token is stored only as its SHA-256 hash.

ALTER TABLE accounts ADD COLUMN merged_into UUID REFERENCES accounts (id);

ALTER TABLE users ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE users ADD COLUMN alternate_email TEXT;
ALTER TABLE users ADD COLUMN home_account_id UUID REFERENCES accounts (id);
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMPTZ;
UPDATE users u SET home_account_id = (
    SELECT m.account_id FROM memberships m WHERE m.user_id = u.id ORDER BY m.created_at LIMIT 1);

ALTER TABLE memberships ADD COLUMN state TEXT NOT NULL DEFAULT 'ACTIVE'
    CHECK (state IN ('ACTIVE', 'INVITED', 'DELETED'));
ALTER TABLE memberships ADD COLUMN scopes JSONB NOT NULL DEFAULT '{}';
ALTER TABLE memberships ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX memberships_roles ON memberships USING GIN (roles);

-- Rotating refresh tokens; a family is one sign-in.
CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    family_id  UUID        NOT NULL,
    user_id    UUID        NOT NULL REFERENCES users (id),
    account_id UUID        NOT NULL REFERENCES accounts (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Password-reset and invitation tokens (single-use, expiring).
CREATE TABLE one_time_tokens (
    token_hash BYTEA PRIMARY KEY,
    purpose    TEXT        NOT NULL CHECK (purpose IN ('PASSWORD_RESET', 'INVITATION')),
    user_id    UUID        NOT NULL REFERENCES users (id),
    account_id UUID REFERENCES accounts (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

-- Failed sign-ins per normalized email, known or not (so lock-out does not
-- reveal which emails exist).
CREATE TABLE sign_in_failures (
    email_normalized TEXT PRIMARY KEY,
    failures         INTEGER     NOT NULL,
    locked_until     TIMESTAMPTZ,
    last_failure_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE activity (
    id         UUID PRIMARY KEY,
    account_id UUID        NOT NULL,
    actor      TEXT        NOT NULL,
    action     TEXT        NOT NULL,
    target     TEXT        NOT NULL,
    old_value  JSONB,
    new_value  JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX activity_by_account ON activity (account_id, created_at DESC, id DESC);

CREATE TABLE applied_merges (
    merge_id       TEXT PRIMARY KEY,
    source_account UUID        NOT NULL,
    target_account UUID        NOT NULL,
    members_moved  INTEGER     NOT NULL,
    applied_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
