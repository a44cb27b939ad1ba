// fuzz/fuzz_loaders.c — every data loader on any bytes. The first byte picks the loader; the
// rest is every split file it reads (GLUE TSV, E2E CSV, WikiSQL JSONL or its tables, SAMSum
// JSON) or the one file of a built-in source (a SOTU address, a SpamAssassin message, the
// CMUdict text) in a data directory of its own.
#include "fuzz/fuzz.h"
#include "tasks/email.h"
#include "tasks/task.h"

static const char *const GLUE[] = {"glue-sst2", "glue-mnli", "glue-cola", "glue-stsb",
                                   "glue-mrpc", "glue-qqp", "glue-qnli", "glue-rte"};

static void load(const char *name, const char *path, const char *data_dir) {
    Task *t = NULL;
    if (task_load(name, path, data_dir, &t) == 0) {
        Baseline b[8];
        for (int s = 0; s < NUM_SPLITS; s++) task_baselines(t, (SplitId)s, b, 8);
        task_free(t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    int pick = data[0] % 13;
    data++, n--;
    char path[512], dir[512];
    if (pick < 8) {   // GLUE: the same TSV as train, dev and test
        snprintf(dir, sizeof dir, "%s/glue%d", fuzz_dir(), pick);
        char rel[64];
        static const char *const files[3] = {"train.tsv", "dev.tsv", "test.tsv"};
        for (int k = 0; k < 3; k++) {
            snprintf(rel, sizeof rel, "glue%d/%s", pick, files[k]);
            fuzz_write(rel, data, n, path, sizeof path);
        }
        load(GLUE[pick], dir, NULL);
    } else if (pick == 8) {   // E2E NLG
        fuzz_write("e2e/trainset.csv", data, n, path, sizeof path);
        fuzz_write("e2e/devset.csv", data, n, path, sizeof path);
        fuzz_write("e2e/testset_w_refs.csv", data, n, path, sizeof path);
        snprintf(dir, sizeof dir, "%s/e2e", fuzz_dir());
        load("e2e", dir, NULL);
    } else if (pick == 9) {   // WikiSQL: the bytes as the questions and as the tables
        static const char *const splits[3] = {"train", "dev", "test"};
        char rel[64];
        for (int k = 0; k < 3; k++) {
            snprintf(rel, sizeof rel, "wikisql/%s.jsonl", splits[k]);
            fuzz_write(rel, data, n, path, sizeof path);
            snprintf(rel, sizeof rel, "wikisql/%s.tables.jsonl", splits[k]);
            fuzz_write(rel, data, n, path, sizeof path);
        }
        snprintf(dir, sizeof dir, "%s/wikisql", fuzz_dir());
        load("wikisql", dir, NULL);
    } else if (pick == 10) {   // SAMSum
        fuzz_write("samsum/train.json", data, n, path, sizeof path);
        fuzz_write("samsum/val.json", data, n, path, sizeof path);
        fuzz_write("samsum/test.json", data, n, path, sizeof path);
        snprintf(dir, sizeof dir, "%s/samsum", fuzz_dir());
        load("samsum", dir, NULL);
    } else if (pick == 11) {   // built-in sources: one SOTU address and the CMUdict text
        fuzz_write("data/sotu/data/1790_george_washington_n.json", data, n, path, sizeof path);
        fuzz_write("data/cmudict/data/dict.txt", data, n, path, sizeof path);
        snprintf(dir, sizeof dir, "%s/data", fuzz_dir());
        load("sotu-era", NULL, dir);
        load("g2p", NULL, dir);
    } else {   // a SpamAssassin message, through the loader and the cleaner itself
        static const uint8_t list[] = "[\"spam-1/00001.txt\", \"easy-ham-1/00002.txt\"]";
        fuzz_write("data/spam-assassin/data/file_list.json", list, sizeof list - 1, path, sizeof path);
        fuzz_write("data/spam-assassin/data/spam-1/00001.txt", data, n, path, sizeof path);
        fuzz_write("data/spam-assassin/data/easy-ham-1/00002.txt", data, n / 2, path, sizeof path);
        snprintf(dir, sizeof dir, "%s/data", fuzz_dir());
        load("spam", NULL, dir);
        free(email_clean((const char *)data, n));
    }
    return 0;
}
