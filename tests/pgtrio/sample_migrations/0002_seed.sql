insert into notes (body) values ('第一条');
