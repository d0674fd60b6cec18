-- The web domain the business directory records for the account's matched
-- company: one of the company's domains for later employment checks.
ALTER TABLE accounts ADD COLUMN directory_domain TEXT NOT NULL DEFAULT '';
