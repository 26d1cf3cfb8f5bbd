-- What the pathway bot's work needs beyond 0001 (EDU-3, TRT-2, TRT-3, EDU-6): item titles for reminders, the files it
-- uploaded, where daily summaries go, and classroom groups.

-- The item's title as sent, for reminders and statistics without reading the pathway version again.
alter table deliveries add column title text not null default '';

-- A treatment notice is for a procedure date: when the hospital moves the date, the patient gets a new
-- notice for the new date (a delivery of its own); content items have no date and are sent once.
alter table deliveries add column day date;
alter table deliveries drop constraint deliveries_cycle_id_node_item_key;
create unique index deliveries_once on deliveries (cycle_id, node, item, coalesce(day, '-infinity'::date));

-- Each shipped file, uploaded once per content (its sha256): the attachment messages carry.
create table files (
    name        text primary key,
    sha256      text not null,
    attachment  jsonb not null
);

-- Conversations that receive the daily summary (TRT-3): staff ask for it with /daily in a group or chat.
create table summary_targets (
    conv      text primary key,
    added_by  text not null,
    added_at  timestamptz not null default now()
);

-- Classroom groups (EDU-6): a class of patients by tag, pulled into a group prepared with content.
create table classrooms (
    conv        text primary key,
    tag         text not null,
    content     text not null,                  -- '<pathway>.<node>' whose content was posted first, or ''
    created_by  text not null,
    created_at  timestamptz not null default now()
);

-- A form reply or a signature names the message it answers: found by conversation and seq.
create index deliveries_message on deliveries (conv, seq);
