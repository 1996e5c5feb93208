-- Queries of `coffeetrace broker-config` (brokerconfig.py).

-- name: device_credentials
-- Every device with its Mosquitto $7$ hash; inactive ones become disabled dynsec clients
-- (enabling one later needs no new password) and are left out of the password file.
select id, credential_hash, active from devices order by id;
