-- The profile proper. The first migration's `legal_profiles` table held
-- nothing yet; the legal profile is now `profiles`, with locations, partner
-- ids (never reused), programs, agreements and the activity log.
DROP TABLE legal_profiles;

-- Every partner id ever assigned, global or location: unique platform-wide
-- and never given out again, even after a location is deleted.
CREATE TABLE partner_ids (
    partner_id  INTEGER PRIMARY KEY CHECK (partner_id BETWEEN 1000000 AND 9999999),
    kind        TEXT        NOT NULL CHECK (kind IN ('GLOBAL', 'LOCATION')),
    account_id  UUID        NOT NULL,
    location_id UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE profiles (
    account_id              UUID PRIMARY KEY,
    global_partner_id       INTEGER     NOT NULL UNIQUE REFERENCES partner_ids (partner_id),
    legal_name              TEXT        NOT NULL,
    address                 JSONB       NOT NULL,
    registration_id         TEXT        NOT NULL DEFAULT '',
    primary_contact         JSONB       NOT NULL,
    legal_contact           JSONB,
    security_contact        JSONB,
    company_approver        JSONB,
    data_source             TEXT        NOT NULL CHECK (data_source IN ('MANUAL', 'DUNS')),
    duns_number             TEXT        NOT NULL DEFAULT '',
    verification_status     TEXT        NOT NULL DEFAULT 'NONE',
    verification_sub_status TEXT        NOT NULL DEFAULT 'UNSPECIFIED',
    merged_into             UUID,
    archived_at             TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    version                 BIGINT      NOT NULL DEFAULT 1
);

CREATE TABLE locations (
    id            UUID PRIMARY KEY,
    account_id    UUID        NOT NULL REFERENCES profiles (account_id),
    partner_id    INTEGER     NOT NULL UNIQUE REFERENCES partner_ids (partner_id),
    business_name TEXT        NOT NULL,
    address       JSONB       NOT NULL,
    contact       JSONB       NOT NULL,
    headquarters  BOOLEAN     NOT NULL DEFAULT false,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at    TIMESTAMPTZ,
    version       BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX locations_by_account ON locations (account_id, headquarters DESC, created_at, id)
    WHERE deleted_at IS NULL;

CREATE TABLE programs (
    account_id UUID        NOT NULL REFERENCES profiles (account_id),
    kind       TEXT        NOT NULL,
    status     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, kind)
);

CREATE TABLE agreements (
    id          UUID PRIMARY KEY,
    account_id  UUID        NOT NULL REFERENCES profiles (account_id),
    agreement   TEXT        NOT NULL,
    version     TEXT        NOT NULL,
    accepted_by TEXT        NOT NULL,
    accepted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (account_id, agreement, version)
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
