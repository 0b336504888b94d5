// Imported first by the files in test/postgres-s3/: the suite imported after it starts its test
// servers on PostgreSQL + S3 (see backend.ts). ES modules evaluate their imports in order, so this
// runs before the suite's own code.
process.env.BERTH_TEST_BACKEND = 'postgres-s3';
