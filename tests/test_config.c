// tests/test_config.c — SHA-256 vectors, RunConfig setters/overrides/JSON/hash, sweep file
// expansion (grid products, variants, exclude, dedupe, order) and every error message of
// the bad sweep fixtures (file:line:column and text). Run from the repository root.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/errors.h"
#include "harness/config.h"
#include "harness/runner.h"
#include "harness/sha256.h"
#include "harness/sweepfile.h"

#define FIX "tests/fixtures/sweeps/"

// ----------------------------------------------------------------------------
// SHA-256

static void test_sha256_vectors(void **state) {
    (void)state;
    char hex[65];
    // FIPS 180-2 appendix B
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // Padding boundaries (references: Python hashlib.sha256(b'a' * n)).
    static const struct { int n; const char *hex; } pad[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char a[128];
    memset(a, 'a', sizeof a);
    for (size_t i = 0; i < sizeof pad / sizeof pad[0]; i++) {
        sha256_hex(a, (size_t)pad[i].n, hex);
        assert_string_equal(hex, pad[i].hex);
    }
    // One million 'a', streamed in chunks that straddle block boundaries.
    static const size_t chunks[] = {1, 7, 64, 1000, 4096};
    char *big = malloc(1000000);
    memset(big, 'a', 1000000);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        Sha256 ctx;
        uint8_t d[32];
        sha256_init(&ctx);
        for (size_t off = 0; off < 1000000; off += chunks[c])
            sha256_update(&ctx, big + off, off + chunks[c] <= 1000000 ? chunks[c] : 1000000 - off);
        sha256_final(&ctx, d);
        sha256_to_hex(d, hex);
        assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }
    free(big);
}

static void test_sha256_file(void **state) {
    (void)state;
    char path[] = "/tmp/loralab_sha_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("abc", f);
    fclose(f);
    char hex[65];
    assert_int_equal(sha256_file_hex(path, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    remove(path);
    assert_int_equal(sha256_file_hex(path, hex), -1);
    assert_non_null(strstr(err_msg(), path));
}

// ----------------------------------------------------------------------------
// setters and overrides

static void test_overrides(void **state) {
    (void)state;
    RunConfig c;
    config_defaults(&c);
    assert_int_equal(config_apply_override(&c, "lora.rank=4"), 0);
    assert_int_equal(c.lora_rank, 4);
    assert_non_null(c.origin[config_find_key("lora.rank")].override);
    assert_int_equal(config_apply_override(&c, "lora.targets=q,k,c_proj"), 0);
    assert_int_equal(c.lora_targets, TARGET_Q | TARGET_K | TARGET_PROJ);
    assert_int_equal(config_apply_override(&c, "train.lr=1e-3"), 0);
    assert_true(c.lr == 1e-3);
    assert_int_equal(config_apply_override(&c, "task=g2p"), 0);   // block shorthand
    assert_string_equal(c.task, "g2p");
    assert_int_equal(config_apply_override(&c, "method=adapter_d"), 0);
    assert_int_equal(c.method, METHOD_ADAPTER_D);
    assert_int_equal(config_apply_override(&c, "combine="), 0);
    assert_int_equal(c.combine, 0);
    assert_int_equal(config_apply_override(&c, "device=cuda:1"), 0);
    assert_string_equal(c.device, "cuda:1");

    static const struct { const char *arg, *msg; } bad[] = {
        {"lora.rank=abc", "override 'lora.rank=abc': expected an integer, got 'abc'"},
        {"lora.rank=0", "override 'lora.rank=0': expected an integer >= 1, got 0"},
        {"lora.rank=", "override 'lora.rank=': expected an integer, got ''"},
        {"train.lr=fast", "override 'train.lr=fast': expected a number, got 'fast'"},
        {"train.dropout=1.5", "override 'train.dropout=1.5': expected a number in [0, 0.999], got 1.5"},
        {"lora.targets=q,x", "override 'lora.targets=q,x': unknown target 'x'; valid choices: q, k, v, o, c_fc, c_proj"},
        {"method=lorra", "override 'method=lorra': unknown method 'lorra'; valid choices: ft, bitfit, lora, "
                         "prefix_embed, prefix_layer, adapter_h, adapter_l, adapter_p, adapter_d"},
        {"train.schedule=step", "override 'train.schedule=step': unknown schedule 'step'; valid choices: constant, linear, cosine"},
        {"device=gpu", "override 'device=gpu': unknown device 'gpu'; valid choices: cpu, cuda, cuda:N"},
        {"lora.rnk=4", "override 'lora.rnk=4': unknown key 'lora.rnk'; valid keys in lora: targets, rank, alpha, dropout, init"},
        {"base.pretrain.step=4", "override 'base.pretrain.step=4': unknown key 'base.pretrain.step'; valid keys in "
                                 "base.pretrain: task, steps, batch, lr, seq, seed, warmup, schedule, weight_decay"},
        {"sed=4", "override 'sed=4': unknown key 'sed'; valid keys: name, device, base, task, train, method, combine, "
                  "lora, adapter, prefix, seed"},
        {"lora=4", "override 'lora=4': lora is a block; set one of its keys (lora.KEY): targets, rank, alpha, "
                   "dropout, init"},
        {"rank", "override 'rank': expected key=value"},
        {"=4", "override '=4': expected key=value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        RunConfig before = c;
        assert_int_equal(config_apply_override(&c, bad[i].arg), -1);
        assert_string_equal(err_msg(), bad[i].msg);
        assert_memory_equal(&before, &c, offsetof(RunConfig, origin));   // unchanged on error
    }
}

static void test_key_table(void **state) {
    (void)state;
    // Every key round-trips through its own text form.
    RunConfig c, d;
    config_defaults(&c);
    config_defaults(&d);
    for (int k = 0; k < config_num_keys(); k++) {
        char text[600];
        config_key_str(&c, k, text, sizeof text);
        assert_int_equal(config_set(&d, config_key_name(k), text), 0);
        assert_true(config_key_equal(&c, &d, k));
        assert_int_equal(config_find_key(config_key_name(k)), k);
    }
    assert_int_equal(config_resolve_key("task"), config_find_key("task.name"));
    assert_true(config_is_block("base.pretrain"));
    assert_false(config_is_block("seed"));
    // --help lists every key.
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_keys(f);
    fclose(f);
    for (int k = 0; k < config_num_keys(); k++) assert_non_null(strstr(buf, config_key_name(k)));
    assert_non_null(strstr(buf, "lora.targets             adapted matrices: q, k, v, o, c_fc, c_proj (default [\"q\",\"v\"])"));
    free(buf);
}

// ----------------------------------------------------------------------------
// canonical JSON and hash

static const char *EXPECTED_JSON =
    "{\"base\":{\"preset\":\"nano\",\"pretrain\":{\"batch\":32,\"lr\":0.001,\"seed\":1,\"seq\":0,\"steps\":3000,"
    "\"task\":\"pretrain\"}},\"combine\":[],\"device\":\"cpu\",\"lora\":{\"alpha\":16.0,\"dropout\":0.0,"
    "\"init\":\"kaiming\",\"rank\":4,\"targets\":[\"q\",\"v\"]},\"method\":\"lora\",\"seed\":3,"
    "\"task\":{\"max_len\":0,\"name\":\"g2p\",\"path\":\"\"},\"train\":{\"batch\":16,\"dropout\":0.1,\"epochs\":0,"
    "\"eval_batches\":0,\"eval_every\":100,\"grad_clip\":1.0,\"label_smoothing\":0.0,\"lr\":0.0002,"
    "\"schedule\":\"linear\",\"steps\":50,\"warmup\":0,\"weight_decay\":0.01}}";
// Python: hashlib.sha256(EXPECTED_JSON.encode()).hexdigest()
static const char *EXPECTED_HASH = "eeac372011d29799a6afe3d151ee0fbc5394cfefa716fef15d30351879cb17b9";

static void load_one(const char *yaml, RunConfig *c) {
    Sweep s;
    if (sweep_load_string(yaml, "inline.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.nruns, 1);
    *c = s.runs[0];
    sweep_free(&s);
}

static void test_canonical_json(void **state) {
    (void)state;
    // The same run written three ways: nested blocks, dotted keys in another order with
    // other spellings of the same numbers, and a mix; the name differs (it is not hashed).
    static const char *yamls[] = {
        "name: a\nbase: {preset: nano}\ntask: g2p\ntrain: {steps: 50, lr: 2e-4}\nmethod: lora\n"
        "lora: {targets: [v, q], rank: 4, alpha: 16}\nseed: 3\n",
        "seed: 3\nlora.alpha: 16.0\nlora.rank: 4\nlora.targets: [q, v]\nmethod: lora\ntrain.lr: 0.0002\n"
        "train.steps: 50\ntask.name: g2p\nbase.preset: nano\nname: b\n",
        "lora:\n  rank: 4\n  targets: [q, v, q]\n  alpha: 1.6e1\nmethod: lora\ntask: {name: g2p}\n"
        "train:\n  lr: 2.0e-4\n  steps: 50\nbase:\n  preset: nano\nseed: 3\n",
    };
    for (size_t i = 0; i < sizeof yamls / sizeof yamls[0]; i++) {
        RunConfig c;
        load_one(yamls[i], &c);
        char *json = config_to_json(&c);
        assert_string_equal(json, EXPECTED_JSON);
        free(json);
        char hex[65];
        config_hash(&c, hex);
        assert_string_equal(hex, EXPECTED_HASH);
    }
    // device is part of the hash; a change of any hashed key changes it.
    RunConfig c;
    load_one(yamls[0], &c);
    char h0[65], h1[65];
    config_hash(&c, h0);
    config_apply_override(&c, "device=cuda");
    config_hash(&c, h1);
    assert_string_not_equal(h0, h1);
}

static void test_json_leaves_out_what_does_not_apply(void **state) {
    (void)state;
    RunConfig c;
    config_defaults(&c);
    config_set(&c, "method", "ft");
    char *json = config_to_json(&c);
    assert_null(strstr(json, "\"lora\""));
    assert_null(strstr(json, "\"adapter\""));
    assert_null(strstr(json, "\"prefix\""));
    assert_non_null(strstr(json, "\"steps\":600"));
    free(json);
    config_set(&c, "method", "adapter_h");
    config_set(&c, "train.epochs", "3");
    config_set(&c, "base.checkpoint", "/models/gpt2");
    json = config_to_json(&c);
    assert_non_null(strstr(json, "\"adapter\":{\"rank\":8}"));   // skip_layers only for adapter_d
    assert_null(strstr(json, "\"steps\""));                       // epochs > 0: steps is unused
    assert_non_null(strstr(json, "\"base\":{\"checkpoint\":\"/models/gpt2\"}"));
    free(json);
    // Two ft configs that differ only in lora.rank are the same run.
    RunConfig a, b;
    config_defaults(&a);
    config_set(&a, "method", "ft");
    b = a;
    config_set(&b, "lora.rank", "64");
    char ha[65], hb[65];
    config_hash(&a, ha);
    config_hash(&b, hb);
    assert_string_equal(ha, hb);
}

// base.pretrain.warmup, .schedule and .weight_decay enter the run's hash and the cached
// base's directory only away from their defaults: the runs and bases of older databases keep
// their hashes (nano-3bf531602e704ecd: Python, hashlib.sha256(b'{"batch":32,"lr":0.001,
// "preset":"nano","seed":1,"seq":0,"steps":3000,"task":"pretrain"}').hexdigest()[:16]).
static void test_pretrain_keys_hash_only_when_set(void **state) {
    (void)state;
    static const char *const sets[][2] = {
        {"base.pretrain.warmup", "10"}, {"base.pretrain.schedule", "linear"}, {"base.pretrain.weight_decay", "0.05"}};
    static const char *const json_has[] = {"\"task\":\"pretrain\",\"warmup\":10}", "\"lr\":0.001,\"schedule\":\"linear\",",
                                           "\"task\":\"pretrain\",\"weight_decay\":0.05}"};
    RunConfig d;
    config_defaults(&d);
    config_set(&d, "base.preset", "nano");
    char hd[65], dir_d[256];
    config_hash(&d, hd);
    runner_base_dir(&d, "res", dir_d, sizeof dir_d);
    assert_string_equal(dir_d, "res/bases/nano-3bf531602e704ecd");
    char *json = config_to_json(&d);
    assert_non_null(strstr(json, "\"pretrain\":{\"batch\":32,\"lr\":0.001,\"seed\":1,\"seq\":0,\"steps\":3000,\"task\":\"pretrain\"}"));
    free(json);
    for (int i = 0; i < 3; i++) {
        RunConfig c = d;
        char h[65], dir[256];
        assert_int_equal(config_set(&c, sets[i][0], sets[i][1]), 0);
        config_hash(&c, h);
        runner_base_dir(&c, "res", dir, sizeof dir);
        assert_string_not_equal(h, hd);
        assert_string_not_equal(dir, dir_d);
        json = config_to_json(&c);
        assert_non_null(strstr(json, json_has[i]));
        free(json);
        // set to its default, it is as if unset
        RunConfig e = d;
        char v[32];
        config_key_str(&d, config_find_key(sets[i][0]), v, sizeof v);
        assert_int_equal(config_set(&e, sets[i][0], v), 0);
        config_hash(&e, h);
        assert_string_equal(h, hd);
        // with a base checkpoint there is no pretraining to describe
        config_set(&c, "base.checkpoint", "/models/gpt2");
        json = config_to_json(&c);
        assert_null(strstr(json, "pretrain"));
        free(json);
    }
    assert_int_equal(config_set(&d, "base.pretrain.warmup", "-2"), -1);
}

static void test_json_round_trip(void **state) {
    (void)state;
    static const char *const sets[][2] = {
        {"method", "adapter_d"}, {"adapter.skip_layers", "1"}, {"adapter.rank", "4"}, {"train.lr", "3.3e-4"},
        {"train.schedule", "cosine"}, {"name", "ignored"}, {"task.path", "/data/glue/SST-2"},
        {"task", "glue-sst2"}, {"seed", "17"}, {"train.weight_decay", "0.1"},
    };
    RunConfig c;
    config_defaults(&c);
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        assert_int_equal(config_set(&c, sets[i][0], sets[i][1]), 0);
    char *json = config_to_json(&c);
    RunConfig d;
    assert_int_equal(config_from_json(json, &d), 0);
    char *json2 = config_to_json(&d);
    assert_string_equal(json, json2);
    assert_int_equal(d.method, METHOD_ADAPTER_D);
    assert_int_equal(d.adapter_skip, 1);
    assert_true(d.lr == 3.3e-4);
    assert_string_equal(d.name, "");   // not stored
    free(json);
    free(json2);
    // A config with LoRA and a combined prefix.
    config_defaults(&c);
    config_set(&c, "combine", "prefix_layer,bitfit");
    config_set(&c, "lora.targets", "q,k,v,o,c_fc,c_proj");
    config_set(&c, "lora.init", "gaussian");
    config_set(&c, "prefix.li", "3");
    json = config_to_json(&c);
    assert_non_null(strstr(json, "\"combine\":[\"bitfit\",\"prefix_layer\"]"));
    assert_int_equal(config_from_json(json, &d), 0);
    json2 = config_to_json(&d);
    assert_string_equal(json, json2);
    free(json);
    free(json2);
    // Bad stored configs say what is wrong.
    assert_int_equal(config_from_json("{\"lora\":{\"rnk\":4}}", &d), -1);
    assert_string_equal(err_msg(), "config JSON: unknown key 'lora.rnk'; valid keys in lora: targets, rank, alpha, dropout, init");
    assert_int_equal(config_from_json("{\"seed\":\"x\"}", &d), -1);
    assert_string_equal(err_msg(), "config JSON: seed: expected an integer, got 'x'");
    assert_int_equal(config_from_json("{\"seed\":", &d), -1);
    assert_non_null(strstr(err_msg(), "config JSON:1:"));
}

// ----------------------------------------------------------------------------
// mapping to the core

static void test_to_method(void **state) {
    (void)state;
    RunConfig c;
    MethodConfig mc;
    config_defaults(&c);
    config_set(&c, "method", "ft");
    assert_int_equal(config_to_method(&c, &mc), 0);
    assert_int_equal(mc.kind, METHOD_FT);
    assert_int_equal(mc.combine, 0);   // nothing added to ft
    config_set(&c, "method", "lora");
    config_set(&c, "lora.rank", "4");
    config_set(&c, "lora.alpha", "32");
    config_set(&c, "lora.targets", "q,o");
    config_set(&c, "combine", "prefix_embed");
    config_set(&c, "prefix.lp", "8");
    config_set(&c, "prefix.li", "2");
    assert_int_equal(config_to_method(&c, &mc), 0);
    assert_int_equal(mc.kind, METHOD_LORA);
    assert_int_equal(mc.lora_rank, 4);
    assert_true(mc.lora_alpha == 32.0f);
    assert_int_equal(mc.lora_targets, TARGET_Q | TARGET_O);
    assert_int_equal(mc.combine, METHOD_BIT(METHOD_PREFIX_EMBED));   // and not bitfit
    assert_int_equal(mc.prefix_lp, 8);
    assert_int_equal(mc.prefix_li, 2);
    config_set(&c, "method", "bitfit");
    config_set(&c, "combine", "lora");
    assert_int_equal(config_to_method(&c, &mc), 0);
    assert_int_equal(mc.kind, METHOD_BITFIT);
    assert_int_equal(mc.lora_rank, 4);   // LoRA added to BitFit
    assert_int_equal(mc.combine, METHOD_BIT(METHOD_LORA));
    config_set(&c, "method", "lora");
    assert_int_equal(config_to_method(&c, &mc), -1);
    assert_string_equal(err_msg(), "combine: 'lora' is already the method");
    config_set(&c, "method", "prefix_layer");
    config_set(&c, "combine", "prefix_embed");
    assert_int_equal(config_to_method(&c, &mc), -1);
    assert_string_equal(err_msg(), "combine: at most one of prefix_embed, prefix_layer");

    OptimConfig oc;
    config_defaults(&c);
    config_set(&c, "train.schedule", "cosine");
    config_set(&c, "train.warmup", "7");
    config_to_optim(&c, &oc);
    assert_int_equal(oc.schedule, SCHEDULE_COSINE);
    assert_int_equal(oc.warmup, 7);
    assert_int_equal(oc.total_steps, 600);
    assert_true(oc.lr == 2e-4f);
    ModelConfig m;
    config_set(&c, "base.preset", "gpt2-medium");
    assert_int_equal(config_to_model(&c, &m), 0);
    assert_int_equal(m.n_embd, 1024);
    assert_int_equal(m.n_layer, 24);
}

// ----------------------------------------------------------------------------
// sweep expansion

static void test_grid_product(void **state) {
    (void)state;
    Sweep s;
    if (sweep_load(FIX "table6.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_string_equal(s.name, "table6-rank");
    assert_int_equal(s.nruns, 45);   // 3 target sets x 5 ranks x 3 seeds
    assert_int_equal(s.ncombinations, 45);
    assert_null(s.analyze_json);
    static const int ranks[5] = {1, 2, 4, 8, 64};
    static const int targets[3] = {TARGET_Q, TARGET_Q | TARGET_V, TARGET_Q | TARGET_K | TARGET_V | TARGET_O};
    // File order: the first grid key is the outermost loop, the last varies fastest.
    for (int i = 0; i < 45; i++) {
        const RunConfig *c = &s.runs[i];
        assert_int_equal(c->lora_targets, targets[i / 15]);
        assert_int_equal(c->lora_rank, ranks[(i / 3) % 5]);
        assert_int_equal(c->seed, 1 + i % 3);
        assert_string_equal(c->task, "sotu-party");
        assert_int_equal(c->warmup, 60);
        assert_true(c->lora_alpha == 8.0);
        assert_string_equal(c->name, "table6-rank");
        char hex[65];
        config_hash(c, hex);
        assert_string_equal(hex, s.hashes[i]);
        for (int j = 0; j < i; j++) assert_string_not_equal(s.hashes[i], s.hashes[j]);
    }
    // Origins point at the grid value (for messages).
    const ConfigOrigin *o = &s.runs[4].origin[config_find_key("lora.rank")];
    assert_int_equal(o->line, 13);
    assert_int_equal(o->col, 18);   // the "2" in [1, 2, 4, 8, 64]
    sweep_free(&s);
}

static void test_variants_exclude_analyze(void **state) {
    (void)state;
    Sweep s;
    if (sweep_load(FIX "table5_budget.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.ncombinations, 6);
    assert_int_equal(s.nexcluded, 1);
    assert_int_equal(s.nruns, 5);
    static const struct { int targets, rank, seed; } want[5] = {
        {TARGET_Q, 8, 1}, {TARGET_Q, 8, 2}, {TARGET_Q | TARGET_V, 4, 1}, {TARGET_Q | TARGET_V, 4, 2},
        {TARGET_Q | TARGET_K | TARGET_V | TARGET_O, 2, 1},   // (rank 2, seed 2) excluded
    };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(s.runs[i].lora_targets, want[i].targets);
        assert_int_equal(s.runs[i].lora_rank, want[i].rank);
        assert_int_equal(s.runs[i].seed, want[i].seed);
        assert_int_equal(s.runs[i].steps, 10);
    }
    assert_string_equal(s.analyze_json, "{\"phi\":{\"ranks\":[8,64],\"layers\":\"all\"},\"random_baseline\":true}");
    // --dry-run listing names the keys that vary.
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sweep_print(&s, f);
    fclose(f);
    assert_non_null(strstr(buf, "sweep table5-budget: 5 runs (6 combinations, 1 excluded, 0 duplicates)\n"));
    char line[200];
    snprintf(line, sizeof line, "%.12s  lora.targets=q,v lora.rank=4 seed=2\n", s.hashes[3]);
    assert_non_null(strstr(buf, line));
    free(buf);
    sweep_free(&s);
}

static void test_dedupe(void **state) {
    (void)state;
    Sweep s;
    if (sweep_load(FIX "methods.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    // ft and bitfit do not read lora.rank: their two grid points are one run each.
    assert_int_equal(s.ncombinations, 8);
    assert_int_equal(s.nduplicates, 3);
    assert_int_equal(s.nruns, 5);
    static const int methods[5] = {METHOD_FT, METHOD_BITFIT, METHOD_LORA, METHOD_LORA, METHOD_ADAPTER_H};
    for (int i = 0; i < 5; i++) assert_int_equal(s.runs[i].method, methods[i]);
    assert_int_equal(s.runs[2].lora_rank, 1);
    assert_int_equal(s.runs[3].lora_rank, 4);
    assert_string_equal(s.name, "methods");   // from the file name
    sweep_free(&s);
}

static void test_overrides_on_sweep(void **state) {
    (void)state;
    Sweep s;
    char *ov[] = {"seed=7", "train.steps=20"};
    if (sweep_load(FIX "table6.yaml", 2, ov, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.nruns, 15);   // the override wins over the grid's seeds
    assert_int_equal(s.nduplicates, 30);
    for (int i = 0; i < s.nruns; i++) {
        assert_int_equal(s.runs[i].seed, 7);
        assert_int_equal(s.runs[i].steps, 20);
        assert_ptr_equal(s.runs[i].origin[config_find_key("seed")].override, ov[0]);
    }
    sweep_free(&s);
    char *bad[] = {"lora.rank=abc"};
    assert_int_equal(sweep_load(FIX "table6.yaml", 1, bad, &s), -1);
    assert_string_equal(err_msg(), "override 'lora.rank=abc': expected an integer, got 'abc'");
    assert_null(s.runs);
    // Validation of an overridden value points at the override.
    char *big[] = {"lora.rank=200"};
    assert_int_equal(sweep_load(FIX "table6.yaml", 1, big, &s), -1);
    assert_string_equal(err_msg(), "override 'lora.rank=200': lora.rank: 200 is larger than d_model 128 of micro; "
                                   "r must be in [1, 128]");
}

static void test_inline_sweeps(void **state) {
    (void)state;
    Sweep s;
    // A grid over a block key takes mappings.
    const char *blocks = "base: {preset: nano}\ngrid:\n  lora: [{rank: 4}, {rank: 8, alpha: 16}]\n  seed: [1, 2]\n";
    if (sweep_load_string(blocks, "b.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.nruns, 4);
    assert_int_equal(s.runs[0].lora_rank, 4);
    assert_true(s.runs[0].lora_alpha == 8.0);
    assert_int_equal(s.runs[3].lora_rank, 8);
    assert_true(s.runs[3].lora_alpha == 16.0);
    assert_int_equal(s.runs[3].seed, 2);
    sweep_free(&s);
    // exclude removes an invalid corner before validation.
    const char *corner = "base: {preset: nano}\ngrid:\n  lora.rank: [4, 128]\nexclude:\n  - {lora.rank: 128}\n";
    if (sweep_load_string(corner, "c.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.nruns, 1);
    assert_int_equal(s.nexcluded, 1);
    sweep_free(&s);
    // exclude matches all keys of an entry, not any.
    const char *all = "base: {preset: nano}\ngrid:\n  method: [ft, lora]\n  seed: [1, 2]\n"
                      "exclude:\n  - {method: ft, seed: 2}\n";
    if (sweep_load_string(all, "d.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.nruns, 3);
    assert_int_equal(s.runs[0].method, METHOD_FT);
    assert_int_equal(s.runs[1].method, METHOD_LORA);
    assert_int_equal(s.runs[2].seed, 2);
    sweep_free(&s);
    // A product that is too large is refused before anything is allocated.
    const char *huge = "grid:\n  seed: [1,2,3,4,5,6,7,8,9,10]\n  train.steps: [1,2,3,4,5,6,7,8,9,10]\n"
                       "  train.batch: [1,2,3,4,5,6,7,8,9,10]\n  train.warmup: [1,2,3,4,5,6,7,8,9,10]\n"
                       "  lora.rank: [1,2,3,4,5,6,7,8,9,10]\n";
    assert_int_equal(sweep_load_string(huge, "h.yaml", 0, NULL, &s), -1);
    assert_string_equal(err_msg(), "h.yaml:6:14: the grid expands to more than 20000 runs (at most 20000 per sweep file)");
    // No grid: one run.
    if (sweep_load_string("method: bitfit\n", "e.yaml", 0, NULL, &s)) fail_msg("%s", err_msg());
    assert_int_equal(s.nruns, 1);
    assert_string_equal(s.name, "e");
    sweep_free(&s);
}

// ----------------------------------------------------------------------------
// every error message

static void test_bad_files(void **state) {
    (void)state;
    static const struct { const char *file, *msg; } cases[] = {
        {"bad_unknown_key.yaml", "4:3: unknown key 'lora.rnk'; valid keys in lora: targets, rank, alpha, dropout, init"},
        {"bad_top_key.yaml", "2:1: unknown key 'gird'; valid keys: name, device, base, task, train, method, combine, "
                             "lora, adapter, prefix, seed, grid, variants, exclude, analyze"},
        {"bad_type.yaml", "2:10: train.steps: expected an integer, got 'many'"},
        {"bad_method.yaml", "2:9: method: unknown method 'lorra'; valid choices: ft, bitfit, lora, prefix_embed, "
                            "prefix_layer, adapter_h, adapter_l, adapter_p, adapter_d"},
        {"bad_target.yaml", "2:27: lora.targets: unknown target 'x'; valid choices: q, k, v, o, c_fc, c_proj"},
        {"bad_task.yaml", "1:7: task: unknown task 'sst2'; valid choices: pretrain, spam, sotu-era, sotu-party, g2p, "
                          "glue-sst2, glue-mnli, glue-cola, glue-stsb, glue-mrpc, glue-qqp, glue-qnli, glue-rte, e2e, "
                          "wikisql, samsum"},
        {"bad_preset.yaml", "2:11: base.preset: unknown preset 'gpt5'; valid choices: nano, micro, small, gpt2, "
                            "gpt2-medium, gpt2-large"},
        {"bad_rank_zero.yaml", "1:14: lora.rank: expected an integer >= 1, got 0"},
        {"bad_rank_large.yaml", "4:18: lora.rank: 128 is larger than d_model 64 of nano; r must be in [1, 64]"},
        {"bad_prefix.yaml", "4:7: prefix.lp: prefix.lp + prefix.li = 64 must be < n_ctx 64 of nano"},
        {"bad_syntax.yaml", "3:5: YAML syntax error: did not find expected ',' or '}' while parsing a flow mapping"},
        {"bad_conflict.yaml", "4:3: lora.rank is set both by variants (line 2) and by the grid"},
        {"bad_twice.yaml", "3:3: lora.rank is set twice (first at line 1, column 1)"},
        {"bad_combine.yaml", "2:10: combine: ft already trains every parameter; nothing to combine"},
        {"bad_block.yaml", "1:7: lora: expected a mapping of its keys, got a value"},
        {"bad_grid.yaml", "2:9: grid: seed: expected a list of values, got a value"},
        {"bad_list.yaml", "1:12: lora.rank: expected a single value, got a list"},
        {"bad_user_task.yaml", "1:7: task.name: glue-sst2 reads your copy of its data: set task.path ("},
        {"bad_variant.yaml", "2:5: variants: expected a mapping of config keys, got a value"},
        {"bad_top_list.yaml", "1:1: expected a mapping of config keys at the top level, got a list"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256], want[1024];
        snprintf(path, sizeof path, FIX "%s", cases[i].file);
        snprintf(want, sizeof want, "%s:%s", path, cases[i].msg);
        Sweep s;
        int rc = sweep_load(path, 0, NULL, &s);
        if (rc != -1) fail_msg("%s: expected an error", path);
        if (strncmp(err_msg(), want, strlen(want))) fail_msg("%s:\n  got  %s\n  want %s", path, err_msg(), want);
        assert_null(s.runs);
    }
    Sweep s;
    assert_int_equal(sweep_load(FIX "missing.yaml", 0, NULL, &s), -1);
    assert_string_equal(err_msg(), FIX "missing.yaml: cannot open sweep file: No such file or directory");
    assert_int_equal(sweep_load_string("", "empty.yaml", 0, NULL, &s), -1);
    assert_string_equal(err_msg(), "empty.yaml:1:1: empty sweep file; expected a mapping of config keys");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_file),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_key_table),
        cmocka_unit_test(test_canonical_json),
        cmocka_unit_test(test_json_leaves_out_what_does_not_apply),
        cmocka_unit_test(test_pretrain_keys_hash_only_when_set),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_to_method),
        cmocka_unit_test(test_grid_product),
        cmocka_unit_test(test_variants_exclude_analyze),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_overrides_on_sweep),
        cmocka_unit_test(test_inline_sweeps),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
