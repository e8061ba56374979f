-- Benchmark workload setup (scripts/pgbench-logs.sh): a role and database for pgbench.
CREATE ROLE bench LOGIN PASSWORD 'bench_pw';
CREATE DATABASE bench OWNER bench;
