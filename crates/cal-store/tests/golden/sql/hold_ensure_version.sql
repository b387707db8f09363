-- Creates a provider's version row (version 0) if it has none.
insert into cal.provider_version (user_id, version) values ($1, 0) on conflict (user_id) do nothing
