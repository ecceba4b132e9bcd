ALTER TABLE identities ADD COLUMN state text NOT NULL DEFAULT 'active';
