-- Ingests lock 256 buckets of ingest_locks (a key's hash modulo 256) instead of 65 536:
-- every row locked FOR UPDATE costs a WAL record, and a batch of 2 000 events locked
-- about 1 500 rows. The rows above 255 are no longer used.
DELETE FROM ingest_locks WHERE bucket >= 256;
