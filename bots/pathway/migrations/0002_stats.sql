-- Statistics the web console reads (EDU-5, TRT-3): views only, over deliveries.
-- Days are Beijing days. 'read' counts items the patient has seen; 'completed' forms filled
-- and consents signed; 'reminded' items that needed at least one reminder.

create view delivery_facts as
select d.id, c.pathway, c.version, d.node, d.item, d.kind, c.patient,
       (d.sent_at at time zone 'Asia/Shanghai')::date as day,
       d.sent_at is not null as sent, d.read_at is not null as read,
       d.completed_at is not null as completed, d.reminders > 0 as reminded, d.reminders
from deliveries d join cycles c on c.id = d.cycle_id
where d.sent_at is not null;

create view stats_by_node as
select pathway, node, count(*) as sent, count(*) filter (where read) as read,
       count(*) filter (where completed) as completed, count(*) filter (where reminded) as reminded,
       count(distinct patient) as patients
from delivery_facts group by pathway, node;

create view stats_by_item as
select pathway, node, item, kind, count(*) as sent, count(*) filter (where read) as read,
       count(*) filter (where completed) as completed, count(*) filter (where reminded) as reminded
from delivery_facts group by pathway, node, item, kind;

create view stats_by_day as
select day, pathway, node, count(*) as sent, count(*) filter (where read) as read,
       count(*) filter (where completed) as completed, count(*) filter (where reminded) as reminded,
       coalesce(sum(reminders), 0) as reminders
from delivery_facts group by day, pathway, node;

create view stats_by_tag as
select t.tag, f.pathway, f.node, count(*) as sent, count(*) filter (where f.read) as read,
       count(*) filter (where f.completed) as completed, count(*) filter (where f.reminded) as reminded
from delivery_facts f join tags t on t.patient = f.patient
group by t.tag, f.pathway, f.node;

create view stats_by_pathway as
select pathway, version, count(*) as sent, count(*) filter (where read) as read,
       count(*) filter (where completed) as completed, count(*) filter (where reminded) as reminded,
       count(distinct patient) as patients
from delivery_facts group by pathway, version;
