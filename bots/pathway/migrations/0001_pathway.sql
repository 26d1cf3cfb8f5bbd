-- The pathway bot's own tables (EDU-1..EDU-6, TRT-1..TRT-4), in schema bot_pathway.

-- Every version of every pathway a patient was ever enrolled on: editing a pathway adds a version,
-- and a cycle keeps the version it started with, so what a patient received never changes.
create table pathway_versions (
    pathway     text not null,
    version     int not null,
    definition  jsonb not null,
    created_at  timestamptz not null default now(),
    primary key (pathway, version)
);

-- What the hospital system (or an operator standing in for it) sent, stored before it is acted on.
-- A second event with the same (source, external_id) is a duplicate and changes nothing.
create table inbound_events (
    id           bigint generated always as identity primary key,
    source       text not null,                 -- 'his', or 'cli' for imbot pathway enroll/date
    external_id  text not null,
    type         text,                          -- null when the event could not be read
    body         bytea not null,                -- as received
    received_at  timestamptz not null default now(),
    status       text not null default 'received' check (status in ('received', 'applied', 'rejected')),
    error        text,
    unique (source, external_id)
);

create table cycles (
    id         bigint generated always as identity primary key,
    patient    text not null,                   -- her username
    his_id     text not null default '',        -- her record number in the hospital system (external)
    pathway    text not null,
    version    int not null,
    started    date not null,
    ended_at   timestamptz,
    foreign key (pathway, version) references pathway_versions
);
create unique index cycles_one_open on cycles (patient) where ended_at is null;

create table procedure_dates (
    cycle_id    bigint not null references cycles,
    procedure   text not null,
    day         date not null,
    updated_at  timestamptz not null default now(),
    primary key (cycle_id, procedure)
);

-- Each piece of content, treatment notice or order education sent to a patient, and what she did
-- with it (EDU-5, TRT-3): the statistics views count these rows.
create table deliveries (
    id                bigint generated always as identity primary key,
    cycle_id          bigint not null references cycles,
    node              text not null,            -- the node, or 'orders'
    item              text not null,            -- content key, 'treatment:<procedure>' or 'order:<rule>:<item>'
    kind              text not null,            -- the message kind: text, article, image_group, video, form, ...
    conv              text,
    seq               bigint,
    sent_at           timestamptz,
    read_at           timestamptz,
    completed_at      timestamptz,              -- a form filled in, a consent signed
    result            jsonb,                    -- the form's values, the signature's attachment
    reminders         int not null default 0,
    last_reminded_at  timestamptz,
    unique (cycle_id, node, item)
);

-- A node's group per pathway (IM-2); the bot creates it when first needed.
create table node_groups (
    pathway  text not null,
    node     text not null,
    conv     text not null,
    primary key (pathway, node)
);

-- Every move of a patient between groups, kept (IM-2).
create table moves (
    id         bigint generated always as identity primary key,
    cycle_id   bigint not null references cycles,
    from_conv  text,
    to_conv    text not null,
    at         timestamptz not null default now()
);

create table tags (
    patient  text not null,
    tag      text not null,
    primary key (patient, tag)
);
