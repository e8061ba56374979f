-- rolewatch sample workload: schema, roles and data.
-- Run as the superuser `postgres` over the sandbox's unix socket, e.g.
--   psql -X -v ON_ERROR_STOP=1 -h "$SANDBOX_DIR" -U postgres -d postgres -f setup.sql
--
-- Passwords follow the pattern <role>_pw (throwaway sandbox only).
-- pgAudit logs everything below too (as postgres, app "setup", no TCP host),
-- so the captured logs start with this setup phase.
--
-- Role model:
--   dba_admin     NOT a superuser. LOGIN CREATEROLE CREATEDB; owns database
--                 `shop`, schema `hr` and all tables, so its admin DDL (CREATE
--                 INDEX / ALTER TABLE on orders) succeeds as the table owner.
--   postgres      the only superuser; gets a password so that "superuser
--                 login over TCP" (planted action 6) is possible.
--   app_writer,   SELECT/INSERT/UPDATE/DELETE on public.orders, CREATE on
--   svc_api       schema public (so their DDL succeeds).
--   app_reader,   SELECT on public.orders; USAGE on schema hr but NO privilege
--   report_reader on hr.salaries (=> "permission denied for table salaries").

ALTER ROLE postgres PASSWORD 'postgres_pw';

CREATE ROLE app_reader    LOGIN PASSWORD 'app_reader_pw';
CREATE ROLE report_reader LOGIN PASSWORD 'report_reader_pw';
CREATE ROLE app_writer    LOGIN PASSWORD 'app_writer_pw';
CREATE ROLE svc_api       LOGIN PASSWORD 'svc_api_pw';
CREATE ROLE dba_admin     LOGIN CREATEROLE CREATEDB PASSWORD 'dba_admin_pw';

CREATE DATABASE shop OWNER dba_admin;

\connect shop

-- Installs pgAudit's event triggers (richer DDL object info) in this database.
CREATE EXTENSION IF NOT EXISTS pgaudit;

CREATE SCHEMA hr AUTHORIZATION dba_admin;

CREATE TABLE hr.salaries (
    employee_id integer PRIMARY KEY,
    name        text    NOT NULL,
    salary      numeric(12,2) NOT NULL
);
INSERT INTO hr.salaries (employee_id, name, salary) VALUES
    (1, 'Alice Example', 98000.00),
    (2, 'Bob Example',   87500.00),
    (3, 'Carol Example', 123000.00);
ALTER TABLE hr.salaries OWNER TO dba_admin;

CREATE TABLE public.orders (
    id       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer text    NOT NULL,
    amount   numeric(12,2) NOT NULL,
    note     text
);
-- Exactly 20000 rows, one statement (short pgAudit line: no literal VALUES).
INSERT INTO public.orders (customer, amount, note)
SELECT 'customer_' || (g % 500), (g % 1000) + 0.99, 'seed order ' || g
FROM generate_series(1, 20000) AS g;
ALTER TABLE public.orders OWNER TO dba_admin;

GRANT USAGE ON SCHEMA hr TO app_reader, report_reader;
-- (deliberately no privileges on hr.salaries for anyone but its owner)

GRANT SELECT ON public.orders TO app_reader, report_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders TO app_writer, svc_api;
GRANT CREATE ON SCHEMA public TO app_writer, svc_api;

ANALYZE public.orders;
