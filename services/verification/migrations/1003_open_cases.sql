-- Every event that opens a case looks up the account's open cases three
-- times (supersede, close, status). Through `cases_by_account` that read
-- every case the account ever had, and the status query scanned the whole
-- table: a partner's thousandth edit cost a thousand times its first
-- (the soak's consumer fell behind by 55 events/s). Open cases are few.
CREATE INDEX cases_open ON cases (account_id, location) WHERE state = 'OPEN';
