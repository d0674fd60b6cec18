-- A suspended program remembers the status it had, to return to it when
-- the account is reactivated; merges applied to profiles, by merge id.
ALTER TABLE programs ADD COLUMN status_before_suspension TEXT;

CREATE TABLE applied_merges (
    merge_id        TEXT PRIMARY KEY,
    source_account  UUID        NOT NULL,
    target_account  UUID        NOT NULL,
    locations_moved INTEGER     NOT NULL,
    applied_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
