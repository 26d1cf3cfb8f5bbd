-- An event that failed to apply (a bug, a database that refused it) is counted, so the HIS feed can move past
-- one that keeps failing instead of stopping for everyone; it stays 'received' and is tried again later.
alter table inbound_events add column attempts int not null default 0;
alter table inbound_events add column tried_at timestamptz;
