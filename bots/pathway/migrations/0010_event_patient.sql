-- Whose event it is, so one patient's events apply in the order they came: an event that failed to apply holds
-- back her later ones (they wait, stored), never anyone else's.
alter table inbound_events add column patient text;
create index inbound_events_waiting on inbound_events (patient, id) where status = 'received';
