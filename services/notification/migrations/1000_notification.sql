-- Who can be notified, projected from identity's events so notifications keep
-- working while identity is down. `source_time` is the time of the fact the
-- row reflects: an older event never overwrites a newer one.
CREATE TABLE recipients (
    user_id     UUID PRIMARY KEY,
    email       TEXT        NOT NULL,
    given_name  TEXT        NOT NULL,
    family_name TEXT        NOT NULL,
    locale      TEXT        NOT NULL,
    source_time TIMESTAMPTZ NOT NULL
);

CREATE TABLE recipient_roles (
    account_id  UUID        NOT NULL,
    user_id     UUID        NOT NULL,
    roles       TEXT[]      NOT NULL,
    source_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

-- In-portal notifications.
CREATE TABLE notifications (
    id          UUID PRIMARY KEY,
    user_id     UUID        NOT NULL,
    account_id  UUID,
    kind        TEXT        NOT NULL,
    workspace   TEXT        NOT NULL,
    title       TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    read_at     TIMESTAMPTZ,
    archived_at TIMESTAMPTZ
);
CREATE INDEX notifications_unread ON notifications (user_id)
    WHERE read_at IS NULL AND archived_at IS NULL;
