-- Who did what through the bot (DESIGN rule 7: every staff access to patient data is audited): each command
-- a person ran, and each read of patient data by an outside caller (a bot's API). Kept; never updated.
create table audit (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    actor       text not null,                  -- the member id (u<n>) as the bot sees it, or 'api:<n>'
    actor_name  text not null default '',
    action      text not null,                  -- '/status', '/enroll', 'api:notices', ...
    conv        text not null default '',       -- where it was asked
    detail      jsonb not null default '{}'     -- the command's arguments, the patient read
);
create index audit_at on audit (at);
