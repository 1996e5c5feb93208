-- Connection checks (coffeetrace/db.py).

-- name: check_database
select 1;
