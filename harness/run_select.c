// harness/run_select.c — naming runs: ids, hash prefixes and key=value selectors. See run_select.h.
#include "harness/run_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

// ----------------------------------------------------------------------------
// run patterns: config keys and values matched against stored configs

void selector_free(Selector *s) {
    for (int k = 0; k < s->n; k++) { free(s->key[k]); free(s->value[k]); }
    free(s->sweep);
    memset(s, 0, sizeof *s);
}

static int selector_add(Selector *s, const char *key, const char *value, const char *what) {
    if (!strcmp(key, "sweep")) {
        free(s->sweep);
        s->sweep = xstrdup(value);
        return 0;
    }
    if (config_resolve_key(key) < 0) {
        config_unknown_key(key, NULL);
        return err_prefix("%s", what);
    }
    if (s->n == SELECTOR_MAX_KEYS) return err_set("%s: more than %d keys", what, SELECTOR_MAX_KEYS);
    s->key[s->n] = xstrdup(key);
    s->value[s->n] = xstrdup(value);
    s->n++;
    return 0;
}

// "sweep=S,lora.rank=8,lora.targets=q,v": a piece without '=' continues the previous value.
int selector_parse(const char *text, Selector *s) {
    memset(s, 0, sizeof *s);
    char what[300];
    snprintf(what, sizeof what, "run selector '%.200s'", text);
    char *copy = xstrdup(text), *save = NULL;
    char *key = NULL, *value = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            if (!key) { rc = err_set("%s: expected key=value pairs, got '%s'", what, tok); break; }
            size_t len = strlen(value) + strlen(tok) + 2;
            value = xrealloc(value, len);
            strcat(value, ",");
            strcat(value, tok);
            continue;
        }
        if (key) rc = selector_add(s, key, value, what);
        free(key);
        free(value);
        *eq = 0;
        key = xstrdup(tok);
        value = xstrdup(eq + 1);
    }
    if (!rc && key) rc = selector_add(s, key, value, what);
    free(key);
    free(value);
    free(copy);
    if (rc) selector_free(s);
    return rc;
}

// A JSON value as the text config_set takes: scalars as text, lists joined with commas.
int selector_value_text(const json_t *v, char *buf, size_t cap) {
    if (json_is_string(v)) snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v)) snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, cap, "%.17g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_array(v)) {
        buf[0] = 0;
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item) {
            size_t len = strlen(buf);
            if (len && len + 1 < cap) buf[len++] = ',';
            if (json_is_array(item) || selector_value_text(item, buf + len, cap - len)) return -1;
        }
    } else return -1;
    return 0;
}

// A pattern {lora.rank: 8} or {lora: {rank: 8}} (nested blocks flattened).
int selector_from_json(const json_t *obj, const char *prefix, const char *what, Selector *s) {
    if (!json_is_object(obj)) return err_set("%s: expected a mapping of config keys to values", what);
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)obj, name, v) {
        char full[256];
        snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (json_is_object(v)) {
            if (selector_from_json(v, full, what, s)) return -1;
            continue;
        }
        char text[1024];
        if (selector_value_text(v, text, sizeof text))
            return err_set("%s: key '%s': expected a value or a list of values", what, full);
        if (selector_add(s, full, text, what)) return -1;
    }
    return 0;
}

// *match = whether rc has every key's value (keys that do not apply to rc do not match).
int selector_match(const Selector *s, const RunConfig *rc, const char *what, int *match) {
    *match = 1;
    for (int k = 0; k < s->n && *match; k++) {
        int idx = config_resolve_key(s->key[k]);
        LAB_ASSERT(idx >= 0);   // checked by selector_add
        if (!config_key_applies(rc, idx)) { *match = 0; break; }
        RunConfig tmp = *rc;
        if (config_set(&tmp, s->key[k], s->value[k]))
            return err_prefix("%s: %s=%s", what, s->key[k], s->value[k]);
        *match = config_key_equal(&tmp, rc, idx);
    }
    return 0;
}

// ----------------------------------------------------------------------------
// runs in the store

// Runs of sweep_id (0: every run), in sweep order / by id. *rows malloc'ed.
int runs_load(Store *st, int64_t sweep_id, RunRow **rows, int *n) {
    sqlite3 *db = store_db(st);
    const char *sql = sweep_id > 0
        ? "SELECT r.id, r.config, r.status FROM runs r JOIN sweep_runs sr ON sr.run_id = r.id "
          "WHERE sr.sweep_id = ? ORDER BY sr.position, r.id"
        : "SELECT id, config, status FROM runs WHERE ? = 0 ORDER BY id";
    sqlite3_stmt *q = NULL;
    int rc;
    *rows = NULL;
    *n = 0;
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int64(q, 1, sweep_id), sql);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *rows = xrealloc(*rows, (size_t)(*n + 1) * sizeof **rows);
        RunRow *r = &(*rows)[*n];
        r->id = sqlite3_column_int64(q, 0);
        const char *cfg = (const char *)sqlite3_column_text(q, 1);
        const char *status = (const char *)sqlite3_column_text(q, 2);
        snprintf(r->status, sizeof r->status, "%s", status ? status : "?");
        if (config_from_json(cfg ? cfg : "{}", &r->rc)) {
            err_prefix("run %lld", (long long)r->id);
            goto fail;
        }
        (*n)++;
    }
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(q);
    return 0;
fail:
    sqlite3_finalize(q);
    free(*rows);
    *rows = NULL;
    *n = 0;
    return -1;
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int all_hex(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F'))) return 0;
    return 1;
}

// The selector spec parsed into *sel and the runs it picks from (its sweep=, else every
// run) into *rows. 0, or -1 with err_set() and nothing to free.
static int selector_runs(Store *st, const char *spec, Selector *sel, RunRow **rows, int *n) {
    if (selector_parse(spec, sel)) return -1;
    int64_t sweep_id = 0;
    if (sel->sweep && store_find_sweep(st, sel->sweep, &sweep_id)) {
        selector_free(sel);
        return err_prefix("run selector '%s'", spec);
    }
    if (runs_load(st, sweep_id, rows, n)) { selector_free(sel); return -1; }
    return 0;
}

// The id of the run `spec` names (see USAGE; also used by `loralab export`).
int run_find(Store *st, const char *spec, int64_t *id) {
    sqlite3 *db = store_db(st);
    sqlite3_stmt *q = NULL;
    int rc;
    if (strchr(spec, '=')) {
        Selector sel;
        RunRow *rows;
        int n;
        if (selector_runs(st, spec, &sel, &rows, &n)) return -1;
        int found = 0;
        char ids[256] = "";
        char what[300];
        snprintf(what, sizeof what, "run selector '%.200s'", spec);
        for (int k = 0; k < n; k++) {
            int m;
            if (selector_match(&sel, &rows[k].rc, what, &m)) { found = -1; break; }
            if (!m) continue;
            if (found++ == 0) *id = rows[k].id;
            size_t len = strlen(ids);
            if (len < sizeof ids - 24) snprintf(ids + len, sizeof ids - len, "%s%lld", len ? ", " : "", (long long)rows[k].id);
        }
        free(rows);
        selector_free(&sel);
        if (found < 0) return -1;
        if (found == 0) return err_set("run selector '%s' matches no run%s", spec, n ? "" : " (the database has no runs)");
        if (found > 1)
            return err_set("run selector '%s' matches %d runs (ids %s); add keys (seed=, sweep=, ...) "
                           "or give an id", spec, found, ids);
        return 0;
    }
    if (all_digits(spec)) {
        const char *sql = "SELECT id FROM runs WHERE id = ?";
        SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
        SQL_CHECK(db, sqlite3_bind_int64(q, 1, strtoll(spec, NULL, 10)), sql);
        rc = sqlite3_step(q);
        SQL_CHECK(db, rc, sql);
        if (rc == SQLITE_ROW) { *id = sqlite3_column_int64(q, 0); sqlite3_finalize(q); return 0; }
        sqlite3_finalize(q);
        q = NULL;
        if (strlen(spec) < 4) return err_set("no run with id %s", spec);
    }
    if (!all_hex(spec))
        return err_set("run '%s': expected a run id, a hash (prefix) or a selector like "
                       "sweep=S,lora.rank=8,seed=1", spec);
    const char *sql = "SELECT id FROM runs WHERE substr(hash, 1, ?) = lower(?) ORDER BY id";
    SQL_CHECK(db, sqlite3_prepare_v2(db, sql, -1, &q, NULL), sql);
    SQL_CHECK(db, sqlite3_bind_int(q, 1, (int)strlen(spec)), sql);
    SQL_CHECK(db, sqlite3_bind_text(q, 2, spec, -1, SQLITE_TRANSIENT), sql);
    int found = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (found++ == 0) *id = sqlite3_column_int64(q, 0);
    SQL_CHECK(db, rc, sql);
    sqlite3_finalize(q);
    if (found == 0) return err_set("no run with id or hash prefix '%s'", spec);
    if (found > 1) return err_set("hash prefix '%s' matches %d runs; give more characters", spec, found);
    return 0;
fail:
    sqlite3_finalize(q);
    return -1;
}

// Every run a selector matches ('sweep=S,lora.rank=8'; used by `loralab plot --runs`), in
// sweep order (or by id); *ids malloc'ed. 0, or -1 with err_set() (also when none matches).
int runs_select(Store *st, const char *spec, int64_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    Selector sel;
    RunRow *rows;
    int nrows, rc = 0;
    if (selector_runs(st, spec, &sel, &rows, &nrows)) return -1;
    char what[300];
    snprintf(what, sizeof what, "run selector '%.200s'", spec);
    for (int k = 0; k < nrows && !rc; k++) {
        int m;
        if ((rc = selector_match(&sel, &rows[k].rc, what, &m)) || !m) continue;
        *ids = xrealloc(*ids, (size_t)(*n + 1) * sizeof **ids);
        (*ids)[(*n)++] = rows[k].id;
    }
    free(rows);
    selector_free(&sel);
    if (!rc && *n == 0) rc = err_set("run selector '%s' matches no run", spec);
    if (rc) { free(*ids); *ids = NULL; *n = 0; }
    return rc;
}
