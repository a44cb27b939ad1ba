SELECT name, sql FROM sqlite_master WHERE type = 'table' UNION ALL SELECT 'x', hex(randomblob(4))
