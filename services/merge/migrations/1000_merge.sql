-- Merge invitations between two accounts.
CREATE TABLE merge_invitations (
    id                 UUID PRIMARY KEY,
    initiator_account  UUID        NOT NULL,
    invitee_account    UUID        NOT NULL,
    state              TEXT        NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    version            BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX merge_invitations_initiator ON merge_invitations (initiator_account, created_at DESC, id DESC);
CREATE INDEX merge_invitations_invitee ON merge_invitations (invitee_account, created_at DESC, id DESC);
