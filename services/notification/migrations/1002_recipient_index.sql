-- The hourly limit counts a recipient's mail whatever the case of its
-- address.
DROP INDEX deliveries_sent_to;
CREATE INDEX deliveries_sent_to ON deliveries (lower(recipient), sent_at) WHERE status = 'SENT';
