-- What verification knows of each account, from profile's events.
CREATE TABLE accounts (
    account_id      UUID PRIMARY KEY,
    legal_name      TEXT        NOT NULL DEFAULT '',
    address         JSONB       NOT NULL DEFAULT '{}',
    primary_email   TEXT        NOT NULL DEFAULT '',
    primary_name    TEXT        NOT NULL DEFAULT '',
    company_domains TEXT[]      NOT NULL DEFAULT '{}',
    duns_number     TEXT        NOT NULL DEFAULT '',
    data_source     TEXT        NOT NULL DEFAULT '',
    fact_time       TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);

-- When the status became REJECTED, and whether suspension was asked for.
ALTER TABLE account_status
    ADD COLUMN rejected_at            TIMESTAMPTZ,
    ADD COLUMN suspension_requested_at TIMESTAMPTZ;
CREATE INDEX account_status_rejected ON account_status (rejected_at)
    WHERE status = 'REJECTED' AND suspension_requested_at IS NULL;

CREATE TABLE status_history (
    id          BIGSERIAL PRIMARY KEY,
    account_id  UUID        NOT NULL,
    old_status  TEXT        NOT NULL,
    status      TEXT        NOT NULL,
    sub_status  TEXT        NOT NULL,
    case_id     UUID,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX status_history_by_account ON status_history (account_id, id);

-- A case per trigger; `source_key` (the event id) makes opening idempotent.
CREATE TABLE cases (
    id          UUID PRIMARY KEY,
    account_id  UUID        NOT NULL,
    source_key  TEXT        NOT NULL UNIQUE,
    trigger     TEXT        NOT NULL CHECK (trigger IN ('ENROLLMENT', 'LEGAL_PROFILE', 'LOCATION')),
    location    TEXT        NOT NULL DEFAULT '',
    state       TEXT        NOT NULL DEFAULT 'OPEN' CHECK (state IN ('OPEN', 'CLOSED')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at   TIMESTAMPTZ
);
CREATE INDEX cases_by_account ON cases (account_id, created_at DESC, id DESC);

CREATE TABLE checks (
    id            UUID PRIMARY KEY,
    case_id       UUID        NOT NULL REFERENCES cases (id),
    account_id    UUID        NOT NULL,
    kind          TEXT        NOT NULL CHECK (kind IN ('EMAIL_OWNERSHIP', 'EMAIL_DOMAIN', 'EMPLOYMENT', 'BUSINESS', 'ADDRESS')),
    status        TEXT        NOT NULL CHECK (status IN ('PENDING', 'PASSED', 'ACTION_REQUIRED', 'REJECTED')),
    reason        TEXT        NOT NULL DEFAULT '',
    message       TEXT        NOT NULL DEFAULT '',
    in_review     BOOLEAN     NOT NULL DEFAULT false,
    appeals       INT         NOT NULL DEFAULT 0,
    requested_documents TEXT[] NOT NULL DEFAULT '{}',
    -- The subject checked (an email, a name and address) and findings.
    details       JSONB       NOT NULL DEFAULT '{}',
    version       BIGINT      NOT NULL DEFAULT 1,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    review_since  TIMESTAMPTZ
);
CREATE INDEX checks_by_case ON checks (case_id);
CREATE INDEX checks_in_review ON checks (review_since, id) WHERE in_review;

CREATE TABLE check_history (
    id          BIGSERIAL PRIMARY KEY,
    check_id    UUID        NOT NULL REFERENCES checks (id),
    old_status  TEXT        NOT NULL,
    new_status  TEXT        NOT NULL,
    reason      TEXT        NOT NULL,
    actor       TEXT        NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX check_history_by_check ON check_history (check_id, id);

-- Email-ownership tokens: stored hashed, single-use, expiring.
CREATE TABLE email_tokens (
    token_hash  BYTEA PRIMARY KEY,
    check_id    UUID        NOT NULL REFERENCES checks (id),
    account_id  UUID        NOT NULL,
    email       TEXT        NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX email_tokens_by_check ON email_tokens (check_id, created_at DESC);

CREATE TABLE documents (
    id           UUID PRIMARY KEY,
    account_id   UUID        NOT NULL,
    check_id     UUID        NOT NULL REFERENCES checks (id),
    doc_type     TEXT        NOT NULL,
    content_type TEXT        NOT NULL,
    size_bytes   BIGINT      NOT NULL,
    content      BYTEA       NOT NULL,
    comment      TEXT        NOT NULL DEFAULT '',
    uploaded_by  TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX documents_by_account ON documents (account_id, created_at DESC, id DESC);

-- A check re-run by a newer case no longer counts.
ALTER TABLE checks ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT false;
