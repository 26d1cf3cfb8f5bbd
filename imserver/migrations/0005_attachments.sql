-- Attachments: files uploaded in parts over the protocol and kept in the hospital's Postgres, and which
-- message carries which file (MSG-4, IM-1; protocol/SPEC.md §5.18).

create table attachments (
    id            text primary key check (id ~ '^att_[A-Za-z0-9_-]{8,64}$'),
    uploader_id   bigint not null references users (id),
    mime          text not null,
    size          bigint not null check (size > 0),
    name          text not null default '',
    sha256        text not null check (sha256 ~ '^[0-9a-f]{64}$'),
    state         text not null default 'uploading' check (state in ('uploading', 'complete')),
    -- Bytes stored so far, from the start without holes: where the next part goes.
    received      bigint not null default 0 check (received between 0 and size),
    created_at    timestamptz not null default now(),
    -- The last part; an upload left unfinished expires this long after it (upload_expiry).
    touched_at    timestamptz not null default now(),
    completed_at  timestamptz,
    check ((state = 'complete') = (completed_at is not null))
);
-- The same file begun again by the same account is the same upload: a client resumes by beginning again.
create unique index attachments_same_file on attachments (uploader_id, sha256, size, mime, name);
create index attachments_quota on attachments (uploader_id, created_at);
create index attachments_unfinished on attachments (touched_at) where state = 'uploading';

-- The file's bytes, one row per part as the client sent it. Images and video are compressed already:
-- stored out of line without another compression pass, so a range reads only the rows it covers.
create table attachment_parts (
    attachment_id  text not null references attachments (id) on delete cascade,
    "offset"       bigint not null,
    data           bytea not null,
    primary key (attachment_id, "offset")
);
alter table attachment_parts alter column data set storage external;

-- The files a message carries, written in the same statement as the message; NULL for most messages.
alter table messages add column attachments text[];
create index messages_attachments on messages using gin (attachments) where attachments is not null;

-- im_write_batch (0003) with the attachments of each message: p_attachments holds one comma-joined list
-- per message (attachment ids have no commas), NULL for a message without any. A 2-D text array cannot
-- hold lists of different lengths.
drop function im_write_batch(bigint[], bigint[], text[], text[], jsonb[], text[], text[], bigint[]);
create function im_write_batch(
    p_convs bigint[], p_senders bigint[], p_kinds text[], p_texts text[], p_bodies jsonb[],
    p_cids text[], p_audiences text[], p_only bigint[], p_attachments text[]
) returns table (
    idx int, conv_id bigint, seq bigint, id bigint, created_at timestamptz, dup boolean, sender_hidden boolean
) language plpgsql as $$
declare
    fresh int[];
begin
    return query
        select x.i::int, m.conv_id, m.seq, m.id, m.created_at, true, false
        from unnest(p_senders, p_cids) with ordinality x(s, c, i)
        join messages m on m.sender_id = x.s and m.client_id = x.c;

    select coalesce(array_agg(x.i::int order by x.i), '{}') into fresh
    from unnest(p_senders, p_cids) with ordinality x(s, c, i)
    where not exists (select 1 from messages m where m.sender_id = x.s and m.client_id = x.c);
    if cardinality(fresh) = 0 then
        return;
    end if;

    -- Lock the conversations in id order (no deadlocks between writers) before handing out seqs.
    perform 1 from conversations c
    where c.id in (select p_convs[f] from unnest(fresh) f) order by c.id for update;

    return query
    with batch as (
        select f as i, p_convs[f] as conv, p_senders[f] as sender,
               row_number() over (partition by p_convs[f] order by f) as k
        from unnest(fresh) f
    ), counts as (
        select b.conv, count(*) as n from batch b group by b.conv
    ), bumped as (
        update conversations c set last_seq = c.last_seq + counts.n
        from counts where c.id = counts.conv
        returning c.id, c.last_seq, counts.n
    ), placed as (
        select b.i, b.conv, b.sender, u.last_seq - u.n + b.k as seq from batch b join bumped u on u.id = b.conv
    ), inserted as (
        insert into messages as m (
            conv_id, seq, sender_id, kind, text, body, client_id, audience, only_user_id, attachments
        )
        select p.conv, p.seq, p.sender, p_kinds[p.i], p_texts[p.i], p_bodies[p.i], p_cids[p.i],
               p_audiences[p.i], p_only[p.i], string_to_array(p_attachments[p.i], ',')
        from placed p
        returning m.conv_id, m.seq, m.id, m.created_at
    )
    select p.i, p.conv, p.seq, ins.id, ins.created_at, false,
           coalesce(s.isolated or p.seq <= s.hidden_through, false)
    from placed p
    join inserted ins on ins.conv_id = p.conv and ins.seq = p.seq
    left join member_state s on s.conv_id = p.conv and s.user_id = p.sender;
end
$$;
