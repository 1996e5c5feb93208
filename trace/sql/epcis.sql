-- Queries of the EPCIS export only (trace/epcis.py); the ones it shares with the other
-- exports are in exports.sql.

-- name: epcis_plot_places
-- Where each plot is, for the local time zone of the events that happened on it.
select p.id, p.centroid_lon, p.centroid_lat
from plots p
where p.id = any(%(ids)s::uuid[]);
