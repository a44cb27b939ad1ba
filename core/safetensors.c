// core/safetensors.c — safetensors reader (mmap + jansson) and streaming F32 writer.
// See safetensors.h for the format and the contract.
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"

const char *const ST_DTYPE_NAMES[ST_NUM_DTYPES] = {
    "F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16",
    "I8", "U64", "U32", "U16", "U8", "BOOL"};
static const size_t ST_DTYPE_SIZES[ST_NUM_DTYPES] = {8, 4, 2, 2, 1, 1, 8, 4, 2, 1, 8, 4, 2, 1, 1};

// The reference implementation refuses headers above 100 MB; so do we (a corrupt length
// field would otherwise make us parse gigabytes of tensor data as JSON).
#define ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;    // byte offsets into the data buffer
} StEntry;

struct SafeTensors {
    char *path;
    void *map;            // the whole file, read-only
    size_t map_size;
    const uint8_t *data;  // start of the data buffer (map + 8 + header length)
    size_t data_size;
    int n;
    StEntry *entries;
    int n_meta;
    char **meta_keys, **meta_values;
};

// ----------------------------------------------------------------------------
// half-precision conversions

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        // zero or subnormal: mant * 2^-24, exact in float32
        float f = (float)mant * 5.9604644775390625e-8f;
        return sign ? -f : f;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);   // inf / nan (payload kept)
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);   // rebias 15 -> 127
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// ----------------------------------------------------------------------------
// reading: header validation

static int parse_dtype(const char *s) {
    for (int d = 0; d < ST_NUM_DTYPES; d++)
        if (!strcmp(s, ST_DTYPE_NAMES[d])) return d;
    return -1;
}

const char *st_json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

// Parses one tensor entry of the header into e (name already set). data_size bounds offsets.
static int parse_entry(const char *path, StEntry *e, const json_t *v, size_t data_size) {
    const char *name = e->name;
    if (!json_is_object(v))
        return err_set("%s: tensor '%s': expected an object with dtype, shape and data_offsets, got %s",
                       path, name, st_json_type_name(v));
    // dtype
    const json_t *jd = json_object_get(v, "dtype");
    if (!jd) return err_set("%s: tensor '%s': missing 'dtype'", path, name);
    if (!json_is_string(jd))
        return err_set("%s: tensor '%s': 'dtype' must be a string, got %s", path, name, st_json_type_name(jd));
    int dt = parse_dtype(json_string_value(jd));
    if (dt < 0) {
        char known[256] = "";
        for (int d = 0; d < ST_NUM_DTYPES; d++) {
            strcat(known, d ? ", " : "");
            strcat(known, ST_DTYPE_NAMES[d]);
        }
        return err_set("%s: tensor '%s': unknown dtype '%s' (expected one of %s)", path, name,
                       json_string_value(jd), known);
    }
    e->dtype = (StDtype)dt;
    // shape
    const json_t *js = json_object_get(v, "shape");
    if (!js) return err_set("%s: tensor '%s': missing 'shape'", path, name);
    if (!json_is_array(js))
        return err_set("%s: tensor '%s': 'shape' must be an array of integers, got %s", path, name,
                       st_json_type_name(js));
    if (json_array_size(js) > ST_MAX_DIMS)
        return err_set("%s: tensor '%s': shape has %zu dimensions, at most %d are supported", path,
                       name, json_array_size(js), ST_MAX_DIMS);
    e->ndim = (int)json_array_size(js);
    e->numel = 1;
    int overflow = 0;
    for (int k = 0; k < e->ndim; k++) {
        const json_t *jk = json_array_get(js, (size_t)k);
        if (!json_is_integer(jk) || json_integer_value(jk) < 0)
            return err_set("%s: tensor '%s': shape[%d] must be a non-negative integer, got %s", path,
                           name, k, json_is_integer(jk) ? "a negative integer" : st_json_type_name(jk));
        e->shape[k] = (int64_t)json_integer_value(jk);
        size_t d = (size_t)e->shape[k];
        if (d != 0 && e->numel > SIZE_MAX / 16 / d) overflow = 1;
        e->numel *= d;
    }
    // data_offsets
    const json_t *jo = json_object_get(v, "data_offsets");
    if (!jo) return err_set("%s: tensor '%s': missing 'data_offsets'", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        !json_is_integer(json_array_get(jo, 0)) || !json_is_integer(json_array_get(jo, 1)))
        return err_set("%s: tensor '%s': 'data_offsets' must be an array of two integers [begin, end]",
                       path, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < b)
        return err_set("%s: tensor '%s': data_offsets [%lld, %lld] must satisfy 0 <= begin <= end",
                       path, name, (long long)b, (long long)en);
    if ((unsigned long long)en > data_size)
        return err_set("%s: tensor '%s': data_offsets [%lld, %lld] past the end of the data buffer "
                       "(%zu bytes)", path, name, (long long)b, (long long)en, data_size);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    size_t have = e->end - e->begin;
    if (overflow || e->numel * ST_DTYPE_SIZES[e->dtype] != have) {
        char buf[160];
        StEntry tmp = *e;
        SafeTensors one = {.n = 1, .entries = &tmp};
        st_shape_str(&one, 0, buf, sizeof buf);
        if (overflow)
            return err_set("%s: tensor '%s': shape %s is too large", path, name, buf);
        return err_set("%s: tensor '%s': shape %s of %s needs %zu bytes, but data_offsets [%zu, %zu] "
                       "hold %zu", path, name, buf, ST_DTYPE_NAMES[e->dtype],
                       e->numel * ST_DTYPE_SIZES[e->dtype], e->begin, e->end, have);
    }
    return 0;
}

static int parse_metadata(SafeTensors *st, const json_t *v) {
    if (!json_is_object(v))
        return err_set("%s: __metadata__ must be an object of strings, got %s", st->path,
                       st_json_type_name(v));
    size_t n = json_object_size(v);
    st->meta_keys = xcalloc(n, sizeof(char *));
    st->meta_values = xcalloc(n, sizeof(char *));
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        if (!json_is_string(val))
            return err_set("%s: __metadata__ key '%s' must be a string, got %s", st->path, key,
                           st_json_type_name(val));
        st->meta_keys[st->n_meta] = xstrdup(key);
        st->meta_values[st->n_meta] = xstrdup(json_string_value(val));
        st->n_meta++;
    }
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const StEntry *x = *(const StEntry *const *)a, *y = *(const StEntry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

// No two tensors with data may share a byte: sorted by begin, each starts at or after the
// previous non-empty one's end.
static int check_overlaps(SafeTensors *st) {
    const StEntry **order = xmalloc((size_t)st->n * sizeof(StEntry *) + 1);
    for (int i = 0; i < st->n; i++) order[i] = &st->entries[i];
    qsort(order, (size_t)st->n, sizeof(StEntry *), cmp_begin);
    const StEntry *prev = NULL;
    int rc = 0;
    for (int k = 0; k < st->n && !rc; k++) {
        const StEntry *e = order[k];
        if (e->begin == e->end) continue;
        if (prev && e->begin < prev->end)
            rc = err_set("%s: tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s' [%zu, %zu]",
                         st->path, e->name, e->begin, e->end, prev->name, prev->begin, prev->end);
        prev = e;
    }
    free(order);
    return rc;
}

static int parse_header(SafeTensors *st, const char *text, size_t len) {
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set("%s: header is not valid JSON: %s (header line %d, column %d)", st->path,
                       jerr.text, jerr.line, jerr.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = err_set("%s: header must be a JSON object, got %s", st->path, st_json_type_name(root));
        goto done;
    }
    st->entries = xcalloc(json_object_size(root), sizeof(StEntry));
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_metadata(st, val))) goto done;
            continue;
        }
        StEntry *e = &st->entries[st->n++];
        e->name = xstrdup(key);
        if ((rc = parse_entry(st->path, e, val, st->data_size))) goto done;
    }
    rc = check_overlaps(st);
done:
    json_decref(root);
    return rc;
}

// ----------------------------------------------------------------------------
// reading: public API

SafeTensors *st_open(const char *path) {
    SafeTensors *st = xcalloc(1, sizeof *st);
    st->path = xstrdup(path);
    int fd = open(path, O_RDONLY | O_NONBLOCK);   // a FIFO is refused below, not waited on
    if (fd < 0) {
        err_set("%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        err_set("%s: not a regular file", path);
        close(fd);
        goto fail;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        err_set("%s: file is %zu bytes, too short for the 8-byte header length", path, size);
        close(fd);
        goto fail;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        err_set("%s: cannot map: %s", path, strerror(errno));
        goto fail;
    }
    st->map = map;
    st->map_size = size;
    const uint8_t *p = map;
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = (n << 8) | p[k];
    if (n > size - 8) {
        err_set("%s: header length %llu is past the end of the file (%zu bytes)", path,
                (unsigned long long)n, size);
        goto fail;
    }
    if (n > ST_MAX_HEADER) {
        err_set("%s: header length %llu exceeds the 100 MB limit", path, (unsigned long long)n);
        goto fail;
    }
    st->data = p + 8 + n;
    st->data_size = size - 8 - (size_t)n;
    if (parse_header(st, (const char *)p + 8, (size_t)n)) goto fail;
    return st;
fail:
    st_close(st);
    return NULL;
}

void st_close(SafeTensors *st) {
    if (!st) return;
    if (st->map) munmap(st->map, st->map_size);
    for (int i = 0; i < st->n; i++) free(st->entries[i].name);
    free(st->entries);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    free(st->path);
    free(st);
}

const char *st_path(const SafeTensors *st) { return st->path; }
int st_count(const SafeTensors *st) { return st->n; }

int st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->entries[i].name, name)) return i;
    return -1;
}

const char *st_name(const SafeTensors *st, int i) { LAB_ASSERT(i >= 0 && i < st->n); return st->entries[i].name; }
StDtype st_dtype(const SafeTensors *st, int i) { LAB_ASSERT(i >= 0 && i < st->n); return st->entries[i].dtype; }
int st_ndim(const SafeTensors *st, int i) { LAB_ASSERT(i >= 0 && i < st->n); return st->entries[i].ndim; }
const int64_t *st_shape(const SafeTensors *st, int i) { LAB_ASSERT(i >= 0 && i < st->n); return st->entries[i].shape; }
size_t st_numel(const SafeTensors *st, int i) { LAB_ASSERT(i >= 0 && i < st->n); return st->entries[i].numel; }

char *st_shape_str(const SafeTensors *st, int i, char *buf, size_t cap) {
    LAB_ASSERT(i >= 0 && i < st->n && cap > 0);
    const StEntry *e = &st->entries[i];
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < e->ndim && len < cap; k++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", k ? ", " : "", (long long)e->shape[k]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

int st_read_f32(const SafeTensors *st, int i, float *out, size_t numel) {
    LAB_ASSERT(i >= 0 && i < st->n);
    const StEntry *e = &st->entries[i];
    if (numel != e->numel)
        return err_set("%s: tensor '%s': has %zu elements, expected %zu", st->path, e->name,
                       e->numel, numel);
    const uint8_t *src = st->data + e->begin;
    // memcpy per element: offsets need not be aligned
    switch (e->dtype) {
    case ST_F32:
        memcpy(out, src, numel * sizeof(float));
        return 0;
    case ST_F16:
        for (size_t k = 0; k < numel; k++) {
            uint16_t h;
            memcpy(&h, src + 2 * k, 2);
            out[k] = st_f16_to_f32(h);
        }
        return 0;
    case ST_BF16:
        for (size_t k = 0; k < numel; k++) {
            uint16_t h;
            memcpy(&h, src + 2 * k, 2);
            out[k] = st_bf16_to_f32(h);
        }
        return 0;
    case ST_F64:
        for (size_t k = 0; k < numel; k++) {
            double d;
            memcpy(&d, src + 8 * k, 8);
            out[k] = (float)d;
        }
        return 0;
    default:
        return err_set("%s: tensor '%s': dtype %s cannot be read as floats (expected F32, F16, BF16 "
                       "or F64)", st->path, e->name, ST_DTYPE_NAMES[e->dtype]);
    }
}

int64_t st_find_nonfinite(const SafeTensors *st, int i) {
    LAB_ASSERT(i >= 0 && i < st->n);
    const StEntry *e = &st->entries[i];
    const uint8_t *src = st->data + e->begin;
    for (size_t k = 0; k < e->numel; k++) {
        // the exponent bits all set: NaN or infinity, in every IEEE width
        uint64_t bits = 0;
        int bad;
        switch (e->dtype) {
        case ST_F64: memcpy(&bits, src + 8 * k, 8); bad = ((bits >> 52) & 0x7ff) == 0x7ff; break;
        case ST_F32: memcpy(&bits, src + 4 * k, 4); bad = ((bits >> 23) & 0xff) == 0xff; break;
        case ST_F16: memcpy(&bits, src + 2 * k, 2); bad = ((bits >> 10) & 0x1f) == 0x1f; break;
        case ST_BF16: memcpy(&bits, src + 2 * k, 2); bad = ((bits >> 7) & 0xff) == 0xff; break;
        default: return -1;
        }
        if (bad) return (int64_t)k;
    }
    return -1;
}

const char *st_metadata(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key)) return st->meta_values[i];
    return NULL;
}

// ----------------------------------------------------------------------------
// writing

struct StWriter {
    char *path, *tmp_path;
    FILE *f;
    int n, next;          // tensors in total, index of the next one to put
    size_t *numel;        // (n)
    int failed;
};

StWriter *st_writer_open(const char *path, const StTensorInfo *tensors, int n,
                         const char *const *meta) {
    json_t *root = json_object();
    if (meta) {
        json_t *jm = json_object();
        for (int k = 0; meta[k]; k += 2) {
            LAB_ASSERT(meta[k + 1] != NULL);
            json_object_set_new(jm, meta[k], json_string(meta[k + 1]));
        }
        json_object_set_new(root, "__metadata__", jm);
    }
    size_t offset = 0;
    size_t *numel = xcalloc((size_t)n + 1, sizeof(size_t));
    for (int i = 0; i < n; i++) {
        const StTensorInfo *t = &tensors[i];
        LAB_ASSERT(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
        if (!strcmp(t->name, "__metadata__") || json_object_get(root, t->name)) {
            err_set("%s: tensor name '%s' is duplicated or reserved", path, t->name);
            json_decref(root);
            free(numel);
            return NULL;
        }
        json_t *shape = json_array();
        numel[i] = 1;
        for (int k = 0; k < t->ndim; k++) {
            LAB_ASSERT(t->shape[k] >= 0);
            json_array_append_new(shape, json_integer(t->shape[k]));
            numel[i] *= (size_t)t->shape[k];
        }
        size_t bytes = numel[i] * sizeof(float);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)offset));
        json_array_append_new(offs, json_integer((json_int_t)(offset + bytes)));
        json_t *jt = json_object();
        json_object_set_new(jt, "dtype", json_string("F32"));
        json_object_set_new(jt, "shape", shape);
        json_object_set_new(jt, "data_offsets", offs);
        json_object_set_new(root, t->name, jt);
        offset += bytes;
    }
    char *header = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    LAB_ASSERT(header != NULL);
    size_t len = strlen(header);
    size_t padded = (len + 7) / 8 * 8;   // spaces to a multiple of 8, as the reference does

    StWriter *w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    w->tmp_path = xmalloc(strlen(path) + 5);
    sprintf(w->tmp_path, "%s.tmp", path);
    w->n = n;
    w->numel = numel;
    w->f = fopen(w->tmp_path, "wb");
    if (!w->f) {
        err_set("%s: cannot create: %s", w->tmp_path, strerror(errno));
        free(header);
        free(w->numel); free(w->tmp_path); free(w->path); free(w);
        return NULL;
    }
    uint8_t lenbuf[8];
    for (int k = 0; k < 8; k++) lenbuf[k] = (uint8_t)((uint64_t)padded >> (8 * k));
    fwrite(lenbuf, 1, 8, w->f);
    fwrite(header, 1, len, w->f);
    for (size_t k = len; k < padded; k++) fputc(' ', w->f);
    free(header);
    if (ferror(w->f)) {
        err_set("%s: write error: %s", w->tmp_path, strerror(errno));
        w->failed = 1;
    }
    return w;
}

int st_writer_put(StWriter *w, const float *data, size_t numel) {
    LAB_ASSERT(w->next < w->n && numel == w->numel[w->next]);
    w->next++;
    if (w->failed) return -1;
    if (numel && fwrite(data, sizeof(float), numel, w->f) != numel) {
        w->failed = 1;
        return err_set("%s: write error: %s", w->tmp_path, strerror(errno));
    }
    return 0;
}

int st_writer_close(StWriter *w) {
    int rc = 0;
    if (!w->failed && w->next != w->n)
        rc = err_set("%s: only %d of %d tensors were written", w->path, w->next, w->n);
    if (w->failed) rc = -1;
    if (fclose(w->f) != 0 && !rc) rc = err_set("%s: write error: %s", w->tmp_path, strerror(errno));
    if (!rc && rename(w->tmp_path, w->path) != 0)
        rc = err_set("%s: cannot rename from %s: %s", w->path, w->tmp_path, strerror(errno));
    if (rc) remove(w->tmp_path);
    free(w->numel);
    free(w->tmp_path);
    free(w->path);
    free(w);
    return rc;
}

int st_write(const char *path, const StTensorInfo *tensors, const float *const *data, int n,
             const char *const *meta) {
    StWriter *w = st_writer_open(path, tensors, n, meta);
    if (!w) return -1;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int k = 0; k < tensors[i].ndim; k++) numel *= (size_t)tensors[i].shape[k];
        st_writer_put(w, data[i], numel);   // errors are sticky; close reports them
    }
    return st_writer_close(w);
}
