-- The migration checksum rule (see core/checksum.hpp): BOM stripped, CRLF/CR -> LF,
-- SHA-256, lowercase hex. The utility computes exactly the same value.
CREATE FUNCTION warden.checksum(script text) RETURNS text
AS 'MODULE_PATHNAME', 'warden_checksum'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

GRANT EXECUTE ON FUNCTION warden.checksum(text) TO warden_admin, warden_app, warden_monitor;
