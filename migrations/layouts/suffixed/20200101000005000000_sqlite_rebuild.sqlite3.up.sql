CREATE TABLE _identities_tmp AS SELECT * FROM identities;
