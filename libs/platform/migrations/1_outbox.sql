-- Events and commands waiting to be published, written in the same
-- transaction as the change they describe. The relay deletes a row only after
-- the broker confirmed it.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    message_id   UUID        NOT NULL UNIQUE,
    destination  TEXT        NOT NULL CHECK (destination IN ('events', 'commands')),
    routing_key  TEXT        NOT NULL,
    message_type TEXT        NOT NULL,
    source       TEXT        NOT NULL,
    subject      TEXT        NOT NULL,
    payload      BYTEA       NOT NULL,
    traceparent  TEXT,
    tracestate   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    last_error   TEXT
);
