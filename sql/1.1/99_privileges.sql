-- Safety net, last in the script: no function of pg_warden stays executable by PUBLIC.
-- Each part grants what it means to grant to warden_admin, warden_app or warden_monitor.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA warden FROM PUBLIC;
REVOKE ALL ON ALL PROCEDURES IN SCHEMA warden FROM PUBLIC;
