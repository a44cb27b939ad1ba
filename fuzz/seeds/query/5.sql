VACUUM INTO '/tmp/x.db'
