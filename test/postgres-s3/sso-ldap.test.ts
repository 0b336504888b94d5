// test/http/sso-ldap.test.ts on PostgreSQL + S3.
import '../support/postgres-s3.ts';
import '../http/sso-ldap.test.ts';
