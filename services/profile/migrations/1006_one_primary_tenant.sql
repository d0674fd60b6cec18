-- At most one primary tenant per account, whatever the races.
CREATE UNIQUE INDEX tenants_one_primary ON tenants (account_id) WHERE is_primary;
