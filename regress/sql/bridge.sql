-- The C++/PostgreSQL error bridge: errors cross in both directions, destructors run
-- before the error is raised, SQLSTATEs arrive intact, and the session keeps working.
CREATE EXTENSION pg_warden;

SELECT warden._bridge_selftest('ok');
SELECT warden._bridge_selftest('counters');

-- A warden::Error thrown ten C++ frames deep: its SQLSTATE (22023), detail and hint.
SELECT warden._bridge_selftest('cxx');
\echo :LAST_ERROR_SQLSTATE
-- All ten frames' objects were destroyed, none is alive.
SELECT warden._bridge_selftest('counters');

-- std::runtime_error becomes internal_error (XX000); std::bad_alloc out_of_memory (53200).
SELECT warden._bridge_selftest('std');
\echo :LAST_ERROR_SQLSTATE
SELECT warden._bridge_selftest('bad_alloc');
\echo :LAST_ERROR_SQLSTATE

-- An ereport from a PostgreSQL function (int4div) called under C++ frames that own
-- objects: it unwinds as a C++ exception, then is raised again as division_by_zero.
SELECT warden._bridge_selftest('pg');
\echo :LAST_ERROR_SQLSTATE
SELECT warden._bridge_selftest('counters');

-- A plain ereport inside a bridged function.
SELECT warden._bridge_selftest('ereport');
\echo :LAST_ERROR_SQLSTATE

-- Errors inside a transaction roll back to a savepoint and the transaction goes on.
BEGIN;
CREATE TABLE bridge_t (id int);
INSERT INTO bridge_t VALUES (1);
SAVEPOINT s;
SELECT warden._bridge_selftest('pg');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT s;
SAVEPOINT s2;
SELECT warden._bridge_selftest('cxx');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT s2;
INSERT INTO bridge_t VALUES (2);
COMMIT;
SELECT * FROM bridge_t ORDER BY id;

-- Many errors in a row do not leak C++ objects.
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    BEGIN
      PERFORM warden._bridge_selftest(CASE WHEN i % 2 = 0 THEN 'cxx' ELSE 'pg' END);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
END $$;
SELECT warden._bridge_selftest('counters');

-- Bad input gets a clear error with a hint.
SELECT warden._bridge_selftest('nonsense');
\echo :LAST_ERROR_SQLSTATE

-- The backend is still the same one and works.
SELECT 1 AS still_alive;

DROP TABLE bridge_t;
DROP EXTENSION pg_warden;
