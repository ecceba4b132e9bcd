CREATE TABLE identities (
    id uuid PRIMARY KEY,
    nid uuid REFERENCES networks (id),
    traits text NOT NULL
);
