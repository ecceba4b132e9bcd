-- warden:no-transaction
DROP INDEX CONCURRENTLY accounts_email_idx;
