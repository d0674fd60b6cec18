-- Tax and payout profiles. Bank and tax numbers are stored only sealed
-- (AES-256-GCM, `key_id` names the key) with their last four characters
-- for masked display; the account's hold-payouts switch.
CREATE TABLE tax_profiles (
    account_id   UUID PRIMARY KEY REFERENCES profiles (account_id),
    entity_type  TEXT        NOT NULL,
    tax_form     TEXT        NOT NULL,
    country      TEXT        NOT NULL,
    tin_sealed   BYTEA       NOT NULL,
    tin_last4    TEXT        NOT NULL,
    key_id       TEXT        NOT NULL,
    status       TEXT        NOT NULL DEFAULT 'SUBMITTED',
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    version      BIGINT      NOT NULL DEFAULT 1
);

CREATE TABLE payout_profiles (
    id            UUID PRIMARY KEY,
    account_id    UUID        NOT NULL REFERENCES profiles (account_id),
    method        TEXT        NOT NULL CHECK (method IN ('BANK_ACCOUNT', 'PAYPAL')),
    holder_name   TEXT        NOT NULL DEFAULT '',
    number_kind   TEXT        NOT NULL DEFAULT '' CHECK (number_kind IN ('', 'IBAN', 'ACCOUNT')),
    number_sealed BYTEA,
    number_last4  TEXT        NOT NULL DEFAULT '',
    key_id        TEXT        NOT NULL DEFAULT '',
    swift_bic     TEXT        NOT NULL DEFAULT '',
    bank_country  TEXT        NOT NULL DEFAULT '',
    paypal_email  TEXT        NOT NULL DEFAULT '',
    status        TEXT        NOT NULL DEFAULT 'SUBMITTED',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    version       BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX payout_profiles_by_account ON payout_profiles (account_id, created_at);

ALTER TABLE profiles ADD COLUMN hold_payouts BOOLEAN NOT NULL DEFAULT false;
