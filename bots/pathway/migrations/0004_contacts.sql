-- How to reach a patient outside the app (TRT-2): what the hospital system last said.
alter table cycles add column phone text not null default '';
alter table cycles add column openid text not null default '';
