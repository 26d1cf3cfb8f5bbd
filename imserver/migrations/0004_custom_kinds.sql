-- Message kinds that admins define at run time (MSG-1 自定义, MSG-2).
-- The definition is protocol.kinds.KindDefinition as JSON; messages keep their own body and
-- fallback text, so replacing a definition never changes what was already sent.
create table custom_kinds (
    name        text primary key,
    definition  jsonb not null,
    defined_by  bigint references users (id),
    defined_at  timestamptz not null default now()
);
