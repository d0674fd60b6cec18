-- Accounts, users, memberships and the keys that sign access tokens.
CREATE TABLE accounts (
    id           UUID PRIMARY KEY,
    display_name TEXT        NOT NULL,
    state        TEXT        NOT NULL DEFAULT 'ACTIVE'
                 CHECK (state IN ('ACTIVE', 'SUSPENDED', 'MERGED', 'DISABLED')),
    created_by   UUID,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    version      BIGINT      NOT NULL DEFAULT 1
);

CREATE TABLE users (
    id               UUID PRIMARY KEY,
    email            TEXT        NOT NULL,
    email_normalized TEXT        NOT NULL UNIQUE,
    given_name       TEXT        NOT NULL,
    family_name      TEXT        NOT NULL,
    locale           TEXT        NOT NULL DEFAULT 'en-US',
    password_hash    TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    version          BIGINT      NOT NULL DEFAULT 1
);

CREATE TABLE memberships (
    account_id UUID        NOT NULL REFERENCES accounts (id),
    user_id    UUID        NOT NULL REFERENCES users (id),
    roles      TEXT[]      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id, created_at);

-- Ed25519 signing keys. The private key is sealed with AES-256-GCM under the
-- key-encryption key of the deployment; the public key is served as a JWK
-- until `expires_at`, after the key stopped signing at `retire_after`.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    public_key    BYTEA       NOT NULL,
    sealed_secret BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    retire_after  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL
);
