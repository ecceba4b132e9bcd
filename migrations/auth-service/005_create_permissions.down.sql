DROP TABLE role_permissions;
DROP TABLE permissions;
