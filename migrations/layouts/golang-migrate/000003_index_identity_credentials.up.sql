-- warden:no-transaction
CREATE INDEX CONCURRENTLY identity_credentials_identity_id_idx
    ON identity_credentials (identity_id);
