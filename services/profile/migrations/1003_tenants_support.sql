-- Directory tenants (a tenant belongs to one account platform-wide) and the
-- customer support profile.
CREATE TABLE tenants (
    tenant_id  UUID PRIMARY KEY,
    account_id UUID        NOT NULL REFERENCES profiles (account_id),
    domain     TEXT        NOT NULL,
    kind       TEXT        NOT NULL CHECK (kind IN ('COMMERCIAL', 'DEVELOPER')),
    is_primary BOOLEAN     NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tenants_by_account ON tenants (account_id);

CREATE TABLE support_profiles (
    account_id UUID PRIMARY KEY REFERENCES profiles (account_id),
    email      TEXT   NOT NULL DEFAULT '',
    phone      TEXT   NOT NULL DEFAULT '',
    website    TEXT   NOT NULL DEFAULT '',
    version    BIGINT NOT NULL DEFAULT 0
);
