-- Device ids per cooperative. A cooperative chose a device's id platform-wide, so a 409
-- told it which ids other cooperatives use. A device's id is now
-- "{cooperative code}.{the cooperative's own id}" (trace/registry.py
-- qualified_device_id): two cooperatives may give their devices the same own id, and the
-- whole id stays the broker username and topic segment, unique platform-wide. Ids
-- registered before this migration have no cooperative part and keep working.
alter table devices drop constraint devices_id_check;
alter table devices add constraint devices_id_check
    check (id ~ '^([a-z0-9][a-z0-9-]{1,39}\.)?[A-Za-z0-9_-]{3,64}$');
