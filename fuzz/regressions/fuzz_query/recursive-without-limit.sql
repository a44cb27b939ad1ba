WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIяяяяяяяяяяяяяяяяяяяяяяяяяMITќ60) SELECT group_concat(x) ,json_group_array(x) FROM c
