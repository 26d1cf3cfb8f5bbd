-- What a message's sender asked for, as a digest, so that a client id reused with other content is told
-- apart from a resend (issue 14 item 6; protocol/SPEC.md §5.1, "Idempotency"): like a payment API's
-- idempotency key, a cid stands for one request, and the same cid with another kind, text, body or
-- `only` is refused with `cid_reused` instead of being answered with a message it did not ask for.
-- The digest is of the request as the client sent it, before the word filter masked anything. Messages
-- stored before this migration have none and any resend of theirs is taken as the same request.
alter table messages add column request_digest bytea;

-- im_write_batch (0005) with each message's request digest (p_digests); a resend's row returns the stored
-- one, a new row its own.
drop function im_write_batch(bigint[], bigint[], text[], text[], jsonb[], text[], text[], bigint[], text[]);
create function im_write_batch(
    p_convs bigint[], p_senders bigint[], p_kinds text[], p_texts text[], p_bodies jsonb[],
    p_cids text[], p_audiences text[], p_only bigint[], p_attachments text[], p_digests bytea[]
) returns table (
    idx int, conv_id bigint, seq bigint, id bigint, created_at timestamptz, dup boolean, sender_hidden boolean,
    digest bytea
) language plpgsql as $$
declare
    fresh int[];
begin
    return query
        select x.i::int, m.conv_id, m.seq, m.id, m.created_at, true, false, m.request_digest
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
            conv_id, seq, sender_id, kind, text, body, client_id, audience, only_user_id, attachments,
            request_digest
        )
        select p.conv, p.seq, p.sender, p_kinds[p.i], p_texts[p.i], p_bodies[p.i], p_cids[p.i],
               p_audiences[p.i], p_only[p.i], string_to_array(p_attachments[p.i], ','), p_digests[p.i]
        from placed p
        returning m.conv_id, m.seq, m.id, m.created_at
    )
    select p.i, p.conv, p.seq, ins.id, ins.created_at, false,
           coalesce(s.isolated or p.seq <= s.hidden_through, false), p_digests[p.i]
    from placed p
    join inserted ins on ins.conv_id = p.conv and ins.seq = p.seq
    left join member_state s on s.conv_id = p.conv and s.user_id = p.sender;
end
$$;
