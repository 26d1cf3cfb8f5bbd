-- Where a bot has got to in each conversation: the last message it handled (IM-19). With this a
-- restarted bot answers what was said while it was down, and nothing twice (replies have fixed ids).
create table positions (
    conv        text primary key,
    seq         bigint not null check (seq >= 0),
    updated_at  timestamptz not null default now()
);
