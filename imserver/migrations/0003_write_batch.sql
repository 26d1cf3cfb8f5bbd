-- The batch writer's whole write as one function call: one round trip per commit instead of six
-- (BEGIN, dedupe, seq bump, isolation read, insert, COMMIT). Through the trio-asyncio bridge each
-- round trip costs ~0.2 ms of the server's CPU, which at small batches was most of its work
-- (NFR-3; DESIGN rules 1 and 2; IM-12, IM-13).
--
-- Called as a single statement outside an explicit transaction, it commits as a whole or not at
-- all. Returns one row per input (idx counts from 1): resends of a stored (sender, client id) get
-- the stored row with dup = true.
--
-- PL/pgSQL takes a fresh snapshot for each statement: the last statement starts after the
-- conversation rows are locked, so it reads the sender's isolation as committed by then
-- (isolate_txn takes the same lock). One SQL statement with CTEs would read it from before the
-- lock wait.
create function im_write_batch(
    p_convs bigint[], p_senders bigint[], p_kinds text[], p_texts text[], p_bodies jsonb[],
    p_cids text[], p_audiences text[], p_only bigint[]
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
        insert into messages as m (conv_id, seq, sender_id, kind, text, body, client_id, audience, only_user_id)
        select p.conv, p.seq, p.sender, p_kinds[p.i], p_texts[p.i], p_bodies[p.i], p_cids[p.i],
               p_audiences[p.i], p_only[p.i]
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
