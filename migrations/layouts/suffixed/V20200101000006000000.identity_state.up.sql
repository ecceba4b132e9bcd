ALTER TABLE identities ADD COLUMN state text;
