insert into sample_bot.notes (body) values ('第一条');
