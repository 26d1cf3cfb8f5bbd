-- Review mends (EDU-3, TRT-2).
-- A procedure date moved and then moved back is news for the patient: each change of a date has its own
-- revision, so the jobs and the notice for the date moved back to are new, not the completed old ones.
alter table procedure_dates add column revision int not null default 0;
alter table deliveries add column revision int not null default 0;
drop index deliveries_once;
create unique index deliveries_once on deliveries (cycle_id, node, item, coalesce(day, '-infinity'::date), revision);

-- Every reminder sent, when: the daily summary counts the day's reminders (TRT-3), not the day's items.
create table reminders (
    delivery_id  bigint not null references deliveries,
    n            int not null,
    at           timestamptz not null,
    primary key (delivery_id, n)
);

create view reminders_by_day as
select (r.at at time zone 'Asia/Shanghai')::date as day, c.pathway, d.node, count(*) as reminders,
       count(distinct d.id) as items
from reminders r join deliveries d on d.id = r.delivery_id join cycles c on c.id = d.cycle_id
group by 1, 2, 3;
