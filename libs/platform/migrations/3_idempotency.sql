-- The first response to a request carrying a `request_id`, replayed to
-- retries of the same request.
CREATE TABLE idempotency (
    scope        TEXT        NOT NULL,
    request_id   TEXT        NOT NULL,
    request_hash BYTEA       NOT NULL,
    response     BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, request_id)
);
