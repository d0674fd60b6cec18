-- The sign-in domain of the user who enrolled the account: one of the
-- company's domains for verification's employment check, whoever changes
-- the legal profile later.
ALTER TABLE profiles ADD COLUMN enrolled_domain TEXT NOT NULL DEFAULT '';
