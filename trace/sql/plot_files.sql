-- Plots registered or updated from GeoJSON, KML and GPX files (trace/plot_files.py).

-- name: plot_files_farms
select id, code from farms
where cooperative_id = %(cooperative_id)s and code = any(%(codes)s::text[]);

-- name: plot_files_plots
select id, code, farm_id, geometry, area_ha from plots
where cooperative_id = %(cooperative_id)s and code = any(%(codes)s::text[]);

-- name: plot_files_update_plot
-- A plot's new outline from a file: its facts change, so the caller records a new
-- registry version of it in the same transaction.
update plots set geometry = %(geometry)s, area_ha = %(area_ha)s,
                 centroid_lon = %(centroid_lon)s, centroid_lat = %(centroid_lat)s
where id = %(id)s and cooperative_id = %(cooperative_id)s
returning *;
