-- Invitations are consent records (ADR 0008): keyed by email, with roles,
-- scopes, expiry and inviter. No user and no membership exists until the
-- invitee accepts. The invitation's current token is stored only as its
-- SHA-256 hash; a resend replaces it, a revoke or an acceptance clears it.
CREATE TABLE invitations (
    id               UUID PRIMARY KEY,
    account_id       UUID        NOT NULL REFERENCES accounts (id),
    email            TEXT        NOT NULL,
    email_normalized TEXT        NOT NULL,
    roles            TEXT[]      NOT NULL,
    scopes           JSONB       NOT NULL DEFAULT '{}',
    invited_by       TEXT        NOT NULL,
    token_hash       BYTEA UNIQUE,
    state            TEXT        NOT NULL DEFAULT 'PENDING'
                     CHECK (state IN ('PENDING', 'ACCEPTED', 'REVOKED')),
    accepted_by      UUID REFERENCES users (id),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ NOT NULL,
    resolved_at      TIMESTAMPTZ,
    version          BIGINT      NOT NULL DEFAULT 1
);
-- One pending invitation per account and email.
CREATE UNIQUE INDEX invitations_pending ON invitations (account_id, email_normalized)
    WHERE state = 'PENDING';
CREATE INDEX invitations_by_account ON invitations (account_id, id);

-- Every INVITED membership becomes a pending invitation; its newest unspent
-- mailed token keeps working (same hash, same expiry).
INSERT INTO invitations (id, account_id, email, email_normalized, roles, scopes, invited_by,
                         token_hash, created_at, expires_at)
SELECT gen_random_uuid(), m.account_id, u.email, u.email_normalized, m.roles, m.scopes,
       'migrated',
       t.token_hash, m.created_at, COALESCE(t.expires_at, now())
FROM memberships m
JOIN users u ON u.id = m.user_id
LEFT JOIN LATERAL (
    SELECT token_hash, expires_at FROM one_time_tokens o
    WHERE o.user_id = m.user_id AND o.account_id = m.account_id
      AND o.purpose = 'INVITATION' AND o.used_at IS NULL
    ORDER BY o.created_at DESC LIMIT 1) t ON true
WHERE m.state = 'INVITED';
-- (The inviter was never recorded on a membership: `invited_by` says
-- `migrated`.)

DELETE FROM memberships WHERE state = 'INVITED';
DELETE FROM one_time_tokens WHERE purpose = 'INVITATION';
-- Users an invitation created and nobody ever claimed (no password, no
-- membership left) free their email, so its owner can sign up.
DELETE FROM one_time_tokens o USING users u
    WHERE o.user_id = u.id AND u.password_hash IS NULL
      AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id);
DELETE FROM users u WHERE u.password_hash IS NULL
    AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id)
    AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.user_id = u.id);

ALTER TABLE memberships DROP CONSTRAINT IF EXISTS memberships_state_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_state_check
    CHECK (state IN ('ACTIVE', 'DELETED'));
