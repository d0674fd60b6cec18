-- Company and billing profiles, and publishers. Publisher ids are reserved
-- for ever: a removed publisher keeps its row.
CREATE TABLE company_profiles (
    account_id UUID PRIMARY KEY REFERENCES profiles (account_id),
    doc        JSONB  NOT NULL,
    version    BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE billing_profiles (
    account_id UUID PRIMARY KEY REFERENCES profiles (account_id),
    address    JSONB,
    contact    JSONB,
    po_number  TEXT   NOT NULL DEFAULT '',
    tax_id     TEXT   NOT NULL DEFAULT '',
    vat_id     TEXT   NOT NULL DEFAULT '',
    currency   TEXT   NOT NULL DEFAULT '',
    version    BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE publishers (
    publisher_id TEXT PRIMARY KEY,
    account_id   UUID        NOT NULL,
    display_name TEXT        NOT NULL,
    location_id  UUID        NOT NULL,
    contact      JSONB       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    removed_at   TIMESTAMPTZ
);
CREATE INDEX publishers_by_account ON publishers (account_id);

ALTER TABLE profiles ADD COLUMN seller_id INTEGER UNIQUE;
