DROP INDEX identities_nid_idx ON identities;
