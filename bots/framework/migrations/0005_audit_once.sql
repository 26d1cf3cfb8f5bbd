-- A command is recorded once per message: a bot that handles a message again after a crash (its position
-- was not yet saved) does not record the same command twice. Reads by outside callers carry no message.
-- Repeats recorded before this rule (the same message handled again) are dropped, keeping the first.
delete from audit a using audit b
 where a.detail ? 'seq' and b.detail ? 'seq' and a.conv = b.conv and a.action = b.action
   and a.detail->>'seq' = b.detail->>'seq' and a.id > b.id;
create unique index audit_message on audit (conv, ((detail->>'seq')::bigint), action) where detail ? 'seq';
