-- Group control, privacy masking, isolation, family, moderation and audit (IM-2..IM-18, SEC-1, SEC-2).

alter table users
    add column title text not null default '',          -- a staff member's title, shown to patients (IM-7)
    add column phone_enc bytea,                          -- AES-GCM under the 'field_aes' server key (SEC-2)
    add column banned_at timestamptz;                    -- IM-14

alter table conversations
    add column muted boolean not null default false,             -- IM-4
    add column allow_friends boolean not null default false,     -- IM-5
    add column family_can_speak boolean not null default false,  -- IM-9
    add column banned_at timestamptz;                            -- IM-15

-- The patient whose membership brought a family member in; they leave with her (IM-8).
alter table members add column via_user_id bigint references users (id);

-- Who a mention-only message is for (IM-10), and 'staff' for a refused message kept for audit (IM-11).
alter table messages
    add column only_user_id bigint references users (id),
    add column audience text not null default 'all' check (audience in ('all', 'only', 'staff'));

-- Per-conversation state of a person that outlives leaving and rejoining:
-- the pseudonym number (IM-6) and isolation (IM-12, IM-13).
create table member_state (
    conv_id         bigint not null references conversations (id),
    user_id         bigint not null references users (id),
    alias_no        int not null,
    isolated        boolean not null default false,
    -- Messages of this member up to this seq stay hidden from others after isolation is lifted.
    hidden_through  bigint not null default 0,
    primary key (conv_id, user_id),
    unique (conv_id, alias_no)
);

create table family_links (
    patient_id  bigint not null references users (id),
    family_id   bigint not null references users (id),
    relation    text not null check (relation in ('husband', 'parent', 'child', 'other')),
    created_at  timestamptz not null default now(),
    primary key (patient_id, family_id)
);
create index family_links_family on family_links (family_id);

create table friend_requests (
    id          bigint generated always as identity primary key,
    conv_id     bigint not null references conversations (id),
    from_id     bigint not null references users (id),
    to_id       bigint not null references users (id),
    status      text not null default 'requested' check (status in ('requested', 'accepted', 'rejected')),
    created_at  timestamptz not null default now()
);
create unique index friend_requests_open on friend_requests (from_id, to_id) where status = 'requested';

create table friendships (
    low_id   bigint not null references users (id),
    high_id  bigint not null references users (id),
    created_at timestamptz not null default now(),
    primary key (low_id, high_id),
    check (low_id < high_id)
);

create table sensitive_words (
    word        text primary key,
    policy      text not null check (policy in ('mask', 'block', 'flag')),
    created_by  bigint references users (id),
    created_at  timestamptz not null default now()
);

-- Every moderation action and every staff read of a patient's profile (SEC-1).
create table audit_log (
    id          bigint generated always as identity primary key,
    at          timestamptz not null default now(),
    actor_id    bigint references users (id),
    actor       text not null,           -- username, or 'cli:<os user>' for operator commands
    action      text not null,
    target_id   bigint references users (id),
    conv_id     bigint references conversations (id),
    detail      jsonb not null default '{}',
    remote      text not null default ''
);
create index audit_log_at on audit_log (at);
create index audit_log_actor on audit_log (actor_id, at);
