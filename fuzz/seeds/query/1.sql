SELECT r.id, r.hash, r.rank, m.value FROM runs r LEFT JOIN metrics m ON m.run_id = r.id AND m.name = 'accuracy' WHERE r.id IN (1, 4, 5) ORDER BY r.id
