-- Documents are sealed at rest (AES-256-GCM, keys from
-- PARTNERHUB_VERIFICATION_ENCRYPTION_KEYS): `content` holds nonce ||
-- ciphertext under the key `content_kid`. NULL: a document stored before
-- sealing, in clear; the service seals those at start (a migration cannot:
-- it has no key).
ALTER TABLE documents ADD COLUMN content_kid TEXT;
CREATE INDEX documents_unsealed ON documents (id) WHERE content_kid IS NULL;
-- Quotas count an account's and a check's documents.
CREATE INDEX documents_by_check ON documents (check_id);
