create table sample_bot.notes (id bigint generated always as identity primary key, body text not null);
