-- When the mirrored verification status was decided at verification: an
-- older status (a retried event) never overwrites a newer one.
ALTER TABLE profiles ADD COLUMN verification_time TIMESTAMPTZ NOT NULL DEFAULT '-infinity';
