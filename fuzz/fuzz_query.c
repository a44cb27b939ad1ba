// fuzz/fuzz_query.c — the SQL text `loralab query` accepts (harness/cmd_query.c), run on a
// small results database under query's own read-only lockdown. Rows go to /dev/null.
#include <sqlite3.h>
#include <time.h>

#include "fuzz/fuzz.h"
#include "harness/commands.h"
#include "harness/store.h"

static Store *store;
static long ticks;
static struct timespec started;

// Interrupts a statement after about 10^6 virtual-machine steps or 2 s, whichever comes first
// (WITH RECURSIVE without end; an aggregate that grows its text makes each step slower).
static int progress(void *user) {
    (void)user;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return ++ticks > 1000 || now.tv_sec - started.tv_sec >= 2;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    char path[512];
    snprintf(path, sizeof path, "%s/q.db", fuzz_dir());
    Store *w;
    if (store_open(&w, path, 0)) { fprintf(stderr, "%s\n", err_msg()); abort(); }
    sqlite3_exec(store_db(w),
                 "INSERT INTO sweeps (name, file) VALUES ('s', 's.yaml');"
                 "INSERT INTO runs (hash, config, status, task, metric, method, seed) VALUES "
                 "('aa', '{\"seed\":1}', 'done', 'spam', 'accuracy', 'lora', 1),"
                 "('bb', '{\"seed\":2}', 'failed', 'spam', 'accuracy', 'ft', 2);"
                 "INSERT INTO sweep_runs VALUES (1, 1, 1), (1, 2, 2);"
                 "INSERT INTO metrics VALUES (1, 10, 'test', 'accuracy', 0.5), (1, 10, 'train', 'loss', 2.5);",
                 NULL, NULL, NULL);
    store_close(w);
    if (store_open(&store, path, STORE_READONLY | STORE_RAW)) { fprintf(stderr, "%s\n", err_msg()); abort(); }
    if (!freopen("/dev/null", "w", stdout)) abort();
    sqlite3 *db = store_db(store);
    // bounds for the fuzzer only: statements that run long or allocate much are cut short
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1 << 20);
    sqlite3_progress_handler(db, 1000, progress, NULL);
    // json_group_array grows its text outside SQLITE_LIMIT_LENGTH: bound SQLite's heap too
    sqlite3_hard_heap_limit64(64 << 20);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *sql = fuzz_text(data, n);
    ticks = 0;
    clock_gettime(CLOCK_MONOTONIC, &started);
    query_exec(store, sql, (int)(n % 3), 0);
    free(sql);
    return 0;
}
