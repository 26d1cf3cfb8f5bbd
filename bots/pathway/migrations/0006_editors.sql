-- Who published each pathway version (EDU-1): '' for the versions the install ships, else the
-- member id of the staff member whose command made it.
alter table pathway_versions add column created_by text not null default '';
