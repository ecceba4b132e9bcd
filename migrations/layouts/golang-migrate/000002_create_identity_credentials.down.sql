DROP TABLE identity_credentials;
