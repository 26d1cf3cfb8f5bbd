-- Care teams, staff quick replies and facts about patients (MSG-3, SEC-1).

-- A named care team of staff accounts; team quick replies belong to one.
create table teams (
    id          bigint generated always as identity primary key,
    name        text not null unique,
    created_at  timestamptz not null default now()
);

create table team_members (
    team_id  bigint not null references teams (id),
    user_id  bigint not null references users (id),
    primary key (team_id, user_id)
);
create index team_members_user on team_members (user_id);

-- One message template with a shortcut, in a scope: personal (owner_id), team (team_id) or shared.
create table quick_replies (
    id              bigint generated always as identity primary key,
    scope           text not null check (scope in ('personal', 'team', 'shared')),
    owner_id        bigint references users (id),
    team_id         bigint references teams (id),
    shortcut        text not null,               -- stored in lowercase; '/' search matches its start
    title           text not null,
    kind            text not null,
    text            text not null,               -- the template of a text reply, the fallback text of another kind
    body            jsonb,                       -- the template body of a reply of another kind
    attachment_ids  text[] not null default '{}',
    updated_by      bigint references users (id),
    updated_at      timestamptz not null default now(),
    check ((scope = 'personal') = (owner_id is not null)),
    check ((scope = 'team') = (team_id is not null)),
    check ((kind = 'text') = (body is null))
);
create unique index quick_replies_personal on quick_replies (owner_id, shortcut) where scope = 'personal';
create unique index quick_replies_team on quick_replies (team_id, shortcut) where scope = 'team';
create unique index quick_replies_shared on quick_replies (shortcut) where scope = 'shared';
create index quick_replies_attachments on quick_replies using gin (attachment_ids);

-- How often each person used each quick reply: the ranking of '/' search.
create table quick_reply_uses (
    user_id   bigint not null references users (id),
    reply_id  bigint not null references quick_replies (id) on delete cascade,
    uses      bigint not null default 0,
    last_at   timestamptz not null default now(),
    primary key (user_id, reply_id)
);

-- What bots and staff record about a patient for templates to use (e.g. next_visit).
create table patient_facts (
    patient_id  bigint not null references users (id),
    key         text not null,
    value       text not null,
    set_by      bigint references users (id),
    updated_at  timestamptz not null default now(),
    primary key (patient_id, key)
);
