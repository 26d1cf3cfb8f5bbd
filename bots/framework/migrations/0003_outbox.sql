-- The notification outbox of one bot (DESIGN rule 8; FEE-3, TRT-2): what was to be said to whom, over which
-- channels when, and every attempt to say it. Applied into each bot's own schema like 0001/0002.

-- More urgent work is claimed first (a fee overdue before a routine reminder).
alter table jobs add column priority int not null default 0;
drop index jobs_due;
create index jobs_due on jobs (priority desc, due_at) where state in ('requested', 'in-progress');

create table outbox (
    id            bigint generated always as identity primary key,
    key           text not null unique,      -- the caller's idempotency key: notifying it again changes nothing
    recipient     jsonb not null,            -- {"username", "phone"?, "openid"?}, as the calling bot gave them
    title         text not null,
    content       text not null,
    link          text,                      -- the page the notice opens (app://, mp://, https://)
    policy        jsonb not null,            -- the escalation steps: [{"channel": "app", "after": seconds}, ...]
    priority      int not null default 0,
    created_at    timestamptz not null,      -- the steps are due at created_at + after
    settled_at    timestamptz,               -- no step runs after this
    settled       text                       -- why: 'read', or the bot's reason ('paid', 'came to the clinic')
);

-- One row per attempt and outcome. FHIR Communication keeps one per attempt too; these words are the outbox's.
create table outbox_attempts (
    id            bigint generated always as identity primary key,
    outbox_id     bigint not null references outbox (id),
    step          int not null,              -- index into the policy
    channel       text not null check (channel in ('app', 'wechat', 'sms', 'phone')),
    status        text not null check (status in ('sent', 'delivered', 'read', 'failed')),
    detail        text,                      -- why it failed, or the outside system's own word
    ref           text,                      -- where it went: the app conversation, the outside system's id
    seq           bigint,                    -- the app message's seq in that conversation
    at            timestamptz not null
);
-- A step is sent, delivered and read at most once; failures may repeat (each retry is an attempt).
create unique index outbox_attempts_once on outbox_attempts (outbox_id, step, status) where status <> 'failed';
create index outbox_attempts_of on outbox_attempts (outbox_id, id);
