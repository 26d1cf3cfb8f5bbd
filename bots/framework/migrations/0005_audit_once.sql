-- A command is recorded once per message: a bot that handles a message again after a crash (its position
-- was not yet saved) does not record the same command twice. Reads by outside callers carry no message.
create unique index audit_message on audit (conv, ((detail->>'seq')::bigint), action) where detail ? 'seq';
