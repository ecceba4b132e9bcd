-- warden:no-transaction
DROP INDEX CONCURRENTLY identity_credentials_identity_id_idx;
