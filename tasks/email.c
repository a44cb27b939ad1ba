// tasks/email.c — MIME walking, transfer decodings and HTML stripping. See email.h.
#include "tasks/email.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "core/errors.h"

// ----------------------------------------------------------------------------
// a growable byte buffer

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void buf_putc(Buf *b, char c) { buf_put(b, &c, 1); }

// ----------------------------------------------------------------------------
// decoders

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

size_t email_qp_decode(const char *src, size_t n, char *dst) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] != '=') { dst[o++] = src[i]; continue; }
        // soft line break: '=' then optional trailing blanks then newline
        size_t j = i + 1;
        while (j < n && (src[j] == ' ' || src[j] == '\t')) j++;
        if (j < n && src[j] == '\n') { i = j; continue; }
        if (j + 1 < n && src[j] == '\r' && src[j + 1] == '\n') { i = j + 1; continue; }
        if (j == n) { i = j; continue; }   // '=' at the very end: a soft break without newline
        int hi = i + 1 < n ? hexval((unsigned char)src[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)src[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) { dst[o++] = (char)(hi * 16 + lo); i += 2; }
        else dst[o++] = '=';
    }
    dst[o] = '\0';
    return o;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

size_t email_base64_decode(const char *src, size_t n, char *dst) {
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '=') break;
        int v = b64val((unsigned char)src[i]);
        if (v < 0) continue;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    dst[o] = '\0';
    return o;
}

// UTF-8 encoding of code point cp into out (at most 4 bytes); returns the length, 0 if cp is
// not a valid scalar value.
static int utf8_put(unsigned cp, char *out) {
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// Decodes the entity starting at src[0] == '&' into out; returns the number of source bytes
// consumed (0: not an entity we know, copy '&' literally) and sets *olen.
static size_t html_entity(const char *src, size_t n, char *out, int *olen) {
    static const struct { const char *name; unsigned cp; } NAMED[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}, {"nbsp", ' '},
        {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122}, {"mdash", 0x2014}, {"ndash", 0x2013},
        {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
        {"rdquo", 0x201D}, {"bull", 0x2022}, {"euro", 0x20AC}, {"pound", 0xA3}, {"cent", 0xA2},
    };
    size_t end = 1;
    while (end < n && end < 12 && src[end] != ';' && (isalnum((unsigned char)src[end]) || src[end] == '#')) end++;
    if (end >= n || src[end] != ';' || end == 1) return 0;
    unsigned cp = 0;
    if (src[1] == '#') {
        int hex = end > 2 && (src[2] == 'x' || src[2] == 'X');
        size_t i = hex ? 3 : 2;
        if (i == end) return 0;
        for (; i < end; i++) {
            int v = hex ? hexval((unsigned char)src[i]) : (isdigit((unsigned char)src[i]) ? src[i] - '0' : -1);
            if (v < 0 || cp > 0x10FFFF) return 0;
            cp = cp * (hex ? 16 : 10) + (unsigned)v;
        }
    } else {
        size_t len = end - 1;
        int found = 0;
        for (size_t k = 0; k < sizeof NAMED / sizeof NAMED[0]; k++)
            if (strlen(NAMED[k].name) == len && !strncmp(NAMED[k].name, src + 1, len)) { cp = NAMED[k].cp; found = 1; break; }
        if (!found) return 0;
    }
    *olen = utf8_put(cp, out);
    return end + 1;
}

static int tag_is(const char *name, size_t len, const char *const *list) {
    for (; *list; list++)
        if (strlen(*list) == len && !strncasecmp(*list, name, len)) return 1;
    return 0;
}

// Finds the case-insensitive needle (lower case) in src[from, n); returns its position or n.
static size_t find_ci(const char *src, size_t n, size_t from, const char *needle) {
    size_t m = strlen(needle);
    for (size_t i = from; i + m <= n; i++) {
        if (tolower((unsigned char)src[i]) != needle[0]) continue;
        size_t k = 1;
        while (k < m && tolower((unsigned char)src[i + k]) == needle[k]) k++;
        if (k == m) return i;
    }
    return n;
}

size_t email_html_strip(const char *src, size_t n, char *dst) {
    static const char *const BLOCK[] = {"br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3",
                                        "h4", "h5", "h6", "title", "blockquote", "hr", "pre", "center", NULL};
    static const char *const CELL[] = {"td", "th", NULL};
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = src[i];
        if (c == '&') {
            char tmp[4];
            int len = 0;
            size_t used = html_entity(src + i, n - i, tmp, &len);
            if (used) { memcpy(dst + o, tmp, (size_t)len); o += (size_t)len; i += used; continue; }
            dst[o++] = c; i++;
            continue;
        }
        if (c != '<' || i + 1 >= n) { dst[o++] = c; i++; continue; }
        char d = src[i + 1];
        if (!(isalpha((unsigned char)d) || d == '/' || d == '!' || d == '?')) { dst[o++] = c; i++; continue; }
        if (i + 4 <= n && !strncmp(src + i, "<!--", 4)) {
            size_t e = find_ci(src, n, i + 4, "-->");
            i = e < n ? e + 3 : n;
            continue;
        }
        size_t name = i + 1 + (d == '/'), name_end = name;
        while (name_end < n && isalnum((unsigned char)src[name_end])) name_end++;
        size_t gt = name_end;
        while (gt < n && src[gt] != '>') gt++;
        size_t after = gt < n ? gt + 1 : n;
        static const char *const SKIP[] = {"script", "style", NULL};
        if (d != '/' && tag_is(src + name, name_end - name, SKIP)) {
            char close[16];
            snprintf(close, sizeof close, "</%.*s", (int)(name_end - name), src + name);
            for (char *c = close; *c; c++) *c = (char)tolower((unsigned char)*c);
            size_t e = find_ci(src, n, after, close);
            while (e < n && src[e] != '>') e++;
            i = e < n ? e + 1 : n;
            continue;
        }
        if (tag_is(src + name, name_end - name, BLOCK)) dst[o++] = '\n';
        else if (tag_is(src + name, name_end - name, CELL)) dst[o++] = ' ';
        i = after;
    }
    dst[o] = '\0';
    return o;
}

size_t email_decode_header(const char *src, size_t n, char *dst) {
    size_t o = 0;
    int last_was_word = 0;
    for (size_t i = 0; i < n;) {
        // "=?charset?X?text?="
        if (i + 1 < n && src[i] == '=' && src[i + 1] == '?') {
            size_t q1 = i + 2;
            while (q1 < n && src[q1] != '?') q1++;
            if (q1 + 2 < n && src[q1 + 2] == '?') {
                char enc = (char)toupper((unsigned char)src[q1 + 1]);
                size_t text = q1 + 3, end = text;
                while (end + 1 < n && !(src[end] == '?' && src[end + 1] == '=')) end++;
                if (end + 1 < n && (enc == 'Q' || enc == 'B')) {
                    // whitespace between two adjacent encoded words is dropped
                    if (last_was_word) while (o > 0 && (dst[o - 1] == ' ' || dst[o - 1] == '\t')) o--;
                    if (enc == 'B') o += email_base64_decode(src + text, end - text, dst + o);
                    else {
                        size_t start = o;
                        o += email_qp_decode(src + text, end - text, dst + o);
                        for (size_t k = start; k < o; k++) if (dst[k] == '_') dst[k] = ' ';
                    }
                    i = end + 2;
                    last_was_word = 1;
                    continue;
                }
            }
        }
        if (src[i] != ' ' && src[i] != '\t') last_was_word = 0;
        dst[o++] = src[i++];
    }
    dst[o] = '\0';
    return o;
}

// ----------------------------------------------------------------------------
// normalisation

// Unicode code points of Windows-1252 bytes 0x80..0x9F (0: undefined).
static const unsigned short CP1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178};

// Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid.
static int utf8_valid(const unsigned char *s, size_t n) {
    if (s[0] < 0x80) return 1;
    int len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int k = 1; k < len; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    unsigned cp = len == 2 ? (s[0] & 0x1Fu) : len == 3 ? (s[0] & 0x0Fu) : (s[0] & 0x07u);
    for (int k = 1; k < len; k++) cp = (cp << 6) | (s[k] & 0x3Fu);
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

char *email_normalize_text(const char *src, size_t n) {
    // pass 1: valid UTF-8, control characters to spaces
    Buf u = {0};
    buf_put(&u, "", 0);
    const unsigned char *s = (const unsigned char *)src;
    for (size_t i = 0; i < n;) {
        int len = utf8_valid(s + i, n - i);
        if (len == 1) {
            char c = (char)s[i];
            if (c == '\r') { i++; continue; }
            if ((unsigned char)c < 0x20 && c != '\n') c = ' ';
            if (c == 0x7F) c = ' ';
            buf_putc(&u, c);
        } else if (len > 1) {
            buf_put(&u, (const char *)s + i, (size_t)len);
            i += (size_t)len;
            continue;
        } else {
            unsigned cp = s[i] >= 0xA0 ? s[i] : CP1252[s[i] - 0x80];
            char tmp[4];
            int w = cp ? utf8_put(cp, tmp) : 0;
            if (w) buf_put(&u, tmp, (size_t)w);
            else buf_putc(&u, ' ');
        }
        i++;
    }
    // pass 2: squeeze spaces, trim lines, at most one empty line in a row, trim the whole
    Buf o = {0};
    buf_put(&o, "", 0);
    int newlines = 0, space = 0;
    for (size_t i = 0; i < u.n; i++) {
        char c = u.p[i];
        if (c == ' ') { space = 1; continue; }
        if (c == '\n') { newlines++; space = 0; continue; }
        if (o.n > 0) {
            if (newlines) buf_put(&o, "\n\n", newlines > 1 ? 2 : 1);
            else if (space) buf_putc(&o, ' ');
        }
        newlines = 0; space = 0;
        buf_putc(&o, c);
    }
    free(u.p);
    return o.p;
}

// ----------------------------------------------------------------------------
// MIME

typedef struct {
    char type[64];        // "text/plain" (lower case), "" if absent
    char boundary[128];
    char encoding[32];    // "quoted-printable", "base64", ... (lower case)
} PartHeaders;

// Copies the value of parameter `key` (e.g. boundary) of a Content-Type value.
static void header_param(const char *v, size_t n, const char *key, char *out, size_t cap) {
    out[0] = '\0';
    size_t k = strlen(key);
    for (size_t i = 0; i + k < n; i++) {
        if (strncasecmp(v + i, key, k) || v[i + k] != '=') continue;
        if (i > 0 && !(v[i - 1] == ';' || v[i - 1] == ' ' || v[i - 1] == '\t')) continue;
        size_t j = i + k + 1, o = 0;
        int quoted = j < n && v[j] == '"';
        if (quoted) j++;
        while (j < n && o + 1 < cap) {
            if (quoted ? v[j] == '"' : (v[j] == ';' || v[j] == ' ' || v[j] == '\t' || v[j] == '\r')) break;
            out[o++] = v[j++];
        }
        out[o] = '\0';
        return;
    }
}

static void lower_token(const char *v, size_t n, char *out, size_t cap) {
    size_t o = 0, i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    for (; i < n && o + 1 < cap && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && v[i] != '\r'; i++)
        out[o++] = (char)tolower((unsigned char)v[i]);
    out[o] = '\0';
}

// Parses the header block s[0..n) (unfolding continuation lines). Fills h, and the decoded
// subject into *subject if subject != NULL. Returns the offset of the body.
static size_t parse_headers(const char *s, size_t n, PartHeaders *h, Buf *subject) {
    memset(h, 0, sizeof *h);
    size_t i = 0;
    Buf value = {0};
    while (i < n) {
        size_t eol = i;
        while (eol < n && s[eol] != '\n') eol++;
        size_t line_end = eol > i && s[eol - 1] == '\r' ? eol - 1 : eol;
        if (line_end == i) { free(value.p); return eol < n ? eol + 1 : n; }   // the empty line ends the headers
        size_t colon = i;
        while (colon < line_end && s[colon] != ':' && s[colon] != ' ') colon++;
        size_t next = eol < n ? eol + 1 : n;
        if (colon == line_end || s[colon] != ':') { i = next; continue; }   // "From x date" etc.
        // gather the value with its continuation lines
        value.n = 0;
        buf_put(&value, s + colon + 1, line_end - colon - 1);
        while (next < n && (s[next] == ' ' || s[next] == '\t')) {
            size_t e = next;
            while (e < n && s[e] != '\n') e++;
            size_t le = e > next && s[e - 1] == '\r' ? e - 1 : e;
            buf_put(&value, s + next, le - next);
            next = e < n ? e + 1 : n;
        }
        size_t name_len = colon - i;
        if (name_len == 7 && !strncasecmp(s + i, "subject", 7) && subject && subject->n == 0) {
            char *dec = xmalloc(value.n + 1);
            size_t dn = email_decode_header(value.p, value.n, dec);
            buf_put(subject, dec, dn);
            free(dec);
        } else if (name_len == 12 && !strncasecmp(s + i, "content-type", 12)) {
            lower_token(value.p, value.n, h->type, sizeof h->type);
            header_param(value.p, value.n, "boundary", h->boundary, sizeof h->boundary);
        } else if (name_len == 25 && !strncasecmp(s + i, "content-transfer-encoding", 25)) {
            lower_token(value.p, value.n, h->encoding, sizeof h->encoding);
        }
        i = next;
    }
    free(value.p);
    return n;
}

static void walk_entity(const char *s, size_t n, Buf *out, int depth);

// Appends the decoded text of a leaf part.
static void emit_text(const PartHeaders *h, const char *body, size_t n, Buf *out) {
    char *dec = xmalloc(n + 1);
    size_t dn;
    if (!strcmp(h->encoding, "quoted-printable")) dn = email_qp_decode(body, n, dec);
    else if (!strcmp(h->encoding, "base64")) dn = email_base64_decode(body, n, dec);
    else { memcpy(dec, body, n); dec[n] = '\0'; dn = n; }
    // Many spams send HTML without saying so; strip whatever looks like HTML.
    int html = !strcmp(h->type, "text/html") || find_ci(dec, dn, 0, "<html") < dn ||
               find_ci(dec, dn, 0, "<body") < dn;
    if (html) {
        char *txt = xmalloc(dn + 1);
        size_t tn = email_html_strip(dec, dn, txt);
        buf_put(out, txt, tn);
        free(txt);
    } else {
        buf_put(out, dec, dn);
    }
    buf_putc(out, '\n');
    free(dec);
}

// Splits a multipart body at its boundary lines; calls walk_entity on each part (for
// multipart/alternative only the first text/plain part, else the first part that yields text).
static void walk_multipart(const PartHeaders *h, const char *s, size_t n, Buf *out, int depth) {
    enum { MAX_PARTS = 64 };
    size_t start[MAX_PARTS], end[MAX_PARTS];
    int np = 0;
    size_t blen = strlen(h->boundary), cur = (size_t)-1;
    for (size_t i = 0; i < n;) {
        size_t eol = i;
        while (eol < n && s[eol] != '\n') eol++;
        if (eol - i >= blen + 2 && s[i] == '-' && s[i + 1] == '-' && !strncmp(s + i + 2, h->boundary, blen)) {
            if (cur != (size_t)-1 && np < MAX_PARTS) { start[np] = cur; end[np] = i; np++; }
            int closing = eol - i >= blen + 4 && s[i + 2 + blen] == '-' && s[i + 3 + blen] == '-';
            if (closing) { cur = (size_t)-1; break; }
            cur = eol < n ? eol + 1 : n;
        }
        i = eol < n ? eol + 1 : n;
    }
    if (cur != (size_t)-1 && cur < n && np < MAX_PARTS) { start[np] = cur; end[np] = n; np++; }
    if (strcmp(h->type, "multipart/alternative") != 0) {
        for (int p = 0; p < np; p++) walk_entity(s + start[p], end[p] - start[p], out, depth + 1);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int p = 0; p < np; p++) {
            PartHeaders ph;
            parse_headers(s + start[p], end[p] - start[p], &ph, NULL);
            int plain = !strcmp(ph.type, "text/plain") || ph.type[0] == '\0';
            if (pass == 0 && !plain) continue;
            size_t before = out->n;
            walk_entity(s + start[p], end[p] - start[p], out, depth + 1);
            for (size_t k = before; k < out->n; k++)
                if (!isspace((unsigned char)out->p[k])) return;
            out->n = before;
            out->p[before] = '\0';
        }
    }
}

static void walk_entity(const char *s, size_t n, Buf *out, int depth) {
    if (depth > 8) return;
    PartHeaders h;
    size_t body = parse_headers(s, n, &h, NULL);
    if (!strncmp(h.type, "multipart/", 10) && h.boundary[0]) walk_multipart(&h, s + body, n - body, out, depth);
    else if (!strcmp(h.type, "message/rfc822")) walk_entity(s + body, n - body, out, depth + 1);
    else if (h.type[0] == '\0' || !strncmp(h.type, "text/", 5)) emit_text(&h, s + body, n - body, out);
}

char *email_clean(const char *raw, size_t n) {
    Buf subject = {0}, body = {0};
    buf_put(&subject, "", 0);
    buf_put(&body, "", 0);
    PartHeaders h;
    size_t off = parse_headers(raw, n, &h, &subject);
    if (!strncmp(h.type, "multipart/", 10) && h.boundary[0]) walk_multipart(&h, raw + off, n - off, &body, 0);
    else if (h.type[0] == '\0' || !strncmp(h.type, "text/", 5)) emit_text(&h, raw + off, n - off, &body);
    char *subj = email_normalize_text(subject.p, subject.n);
    char *text = email_normalize_text(body.p, body.n);
    for (char *p = subj; *p; p++) if (*p == '\n') *p = ' ';
    Buf out = {0};
    buf_put(&out, "Subject: ", 9);
    buf_put(&out, subj, strlen(subj));
    buf_put(&out, "\n\n", 2);
    buf_put(&out, text, strlen(text));
    free(subj); free(text); free(subject.p); free(body.p);
    return out.p;
}
