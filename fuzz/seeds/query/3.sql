SELECT status, count(*), avg(value), printf('%.3f', max(value)) FROM runs JOIN metrics ON run_id = id GROUP BY status HAVING count(*) > 0
