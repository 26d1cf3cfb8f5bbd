-- Durable jobs of one bot (DESIGN rule 9). Applied into each bot's own schema by
-- pgtrio.migrate(schema=...). States are FHIR Task codes.
create table jobs (
    id            bigint generated always as identity primary key,
    key           text not null unique,              -- idempotency: scheduling the same key again is a no-op
    kind          text not null,
    payload       jsonb not null default '{}',
    due_at        timestamptz not null,
    state         text not null default 'requested'
                  check (state in ('requested', 'in-progress', 'completed', 'failed', 'cancelled')),
    attempts      int not null default 0,
    max_attempts  int not null default 5 check (max_attempts >= 1),
    lease_until   timestamptz,                       -- an in-progress job whose lease passed is claimable again
    last_error    text,
    created_at    timestamptz not null default now(),
    finished_at   timestamptz
);
create index jobs_due on jobs (due_at) where state in ('requested', 'in-progress');
