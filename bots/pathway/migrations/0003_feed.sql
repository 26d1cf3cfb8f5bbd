-- Where the bot is in each outside feed (EDU-4, DESIGN rule 8): moved only after the page's events are stored.
create table feed_cursors (
    source      text primary key,
    cursor      text not null,
    updated_at  timestamptz not null default now()
);
