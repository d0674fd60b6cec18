-- What an invitation carries beyond its state, and the saga's progress.
ALTER TABLE merge_invitations
    ADD COLUMN invitee_partner_id TEXT        NOT NULL DEFAULT '',
    ADD COLUMN invitee_legal_name TEXT        NOT NULL DEFAULT '',
    ADD COLUMN invitee_country    TEXT        NOT NULL DEFAULT '',
    ADD COLUMN reject_reason      TEXT        NOT NULL DEFAULT '',
    ADD COLUMN created_by         TEXT        NOT NULL DEFAULT '',
    ADD COLUMN expires_at         TIMESTAMPTZ NOT NULL DEFAULT now() + interval '30 days',
    ADD COLUMN updated_at         TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE INDEX merge_invitations_open ON merge_invitations (state, expires_at);
