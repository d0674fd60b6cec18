-- The legal business profile of an enrolled account (one per account).
CREATE TABLE legal_profiles (
    account_id UUID PRIMARY KEY,
    legal_name TEXT        NOT NULL,
    country    CHAR(2)     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    version    BIGINT      NOT NULL DEFAULT 1
);
