-- The saga's progress: the last step done, attempts and their error, when to
-- try again, and a lease so one replica runs a merge at a time.
ALTER TABLE merge_invitations
    ADD COLUMN step            TEXT        NOT NULL DEFAULT 'NONE'
        CHECK (step IN ('NONE', 'PROFILE_DONE', 'IDENTITY_DONE')),
    ADD COLUMN attempts        INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN last_error      TEXT        NOT NULL DEFAULT '',
    ADD COLUMN next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN leased_until    TIMESTAMPTZ,
    ADD COLUMN locations_moved INTEGER     NOT NULL DEFAULT 0,
    ADD COLUMN members_moved   INTEGER     NOT NULL DEFAULT 0;
