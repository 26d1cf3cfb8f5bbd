-- Accounts, sessions, conversations, members and messages (IM-1, IM-19, SEC-1).

create table users (
    id            bigint generated always as identity primary key,
    username      text not null unique check (username ~ '^[a-z0-9][a-z0-9_.\-]{0,63}$'),
    display_name  text not null check (length(display_name) between 1 and 64),
    role          text not null check (role in ('patient', 'family', 'staff', 'bot', 'admin')),
    password_hash text not null,
    created_at    timestamptz not null default now()
);

-- One row per login (device); a token names its session, so revoking the row ends the token.
create table sessions (
    id          uuid primary key,
    user_id     bigint not null references users (id),
    device      text not null,
    readonly    boolean not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    revoked_at  timestamptz
);
create index sessions_user on sessions (user_id) where revoked_at is null;

create table conversations (
    id          bigint generated always as identity primary key,
    kind        text not null check (kind in ('group', 'direct')),
    name        text not null default '',
    -- '<lower user id>:<higher user id>' for a direct chat, so there is one per pair.
    direct_key  text unique,
    -- The highest seq handed out; bumped in the same transaction that inserts the messages.
    last_seq    bigint not null default 0,
    created_at  timestamptz not null default now(),
    check ((kind = 'direct') = (direct_key is not null))
);

create table members (
    conv_id    bigint not null references conversations (id),
    user_id    bigint not null references users (id),
    role       text not null default 'member' check (role in ('owner', 'admin', 'member')),
    read_seq   bigint not null default 0,
    joined_at  timestamptz not null default now(),
    primary key (conv_id, user_id)
);
create index members_user on members (user_id);

create sequence message_ids;

create table messages (
    conv_id     bigint not null references conversations (id),
    seq         bigint not null,
    id          bigint not null default nextval('message_ids'),
    sender_id   bigint not null references users (id),
    kind        text not null,
    text        text not null,
    body        jsonb,
    client_id   text not null,
    created_at  timestamptz not null default now(),
    primary key (conv_id, seq)
);
-- A resend with the same client id finds the first result (DESIGN rule 2).
create unique index messages_client_id on messages (sender_id, client_id);
create index messages_id on messages (id);

-- Secrets the server makes for itself (the token signing key), shared by every node.
create table server_keys (
    name        text primary key,
    secret      bytea not null,
    created_at  timestamptz not null default now()
);
