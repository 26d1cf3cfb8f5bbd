-- A procedure cancelled after it was dated (TRT-1; a freeze-all cancels the fresh transfer): the row stays, with
-- its revision, so a date given again later is news with jobs of its own.
alter table procedure_dates add column cancelled_at timestamptz;
