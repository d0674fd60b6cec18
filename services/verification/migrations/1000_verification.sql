-- The verification status of each account that has one (absent means NONE).
CREATE TABLE account_status (
    account_id UUID PRIMARY KEY,
    status     TEXT        NOT NULL CHECK (status IN ('PENDING', 'AUTHORIZED', 'REJECTED')),
    sub_status TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
