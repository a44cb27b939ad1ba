// tasks/email.h — turning a raw RFC 822 / MIME email into plain text for the spam task.
//
// email_clean keeps the Subject header (RFC 2047 encoded words decoded) and the text of the
// body: multipart messages are walked (multipart/alternative prefers text/plain), parts are
// decoded from quoted-printable or base64, HTML is reduced to its text, non-text parts
// (images, attachments) are dropped. The result is valid UTF-8 (bytes that are not are read
// as Windows-1252), with whitespace squeezed: "Subject: <subject>\n\n<body>".
//
// The decoders are public so that tests can check them on hand-made strings. They never
// write more than the stated bound; none of them fails (malformed input is kept or skipped).
#ifndef LORALAB_EMAIL_H
#define LORALAB_EMAIL_H

#include <stddef.h>

// Quoted-printable: "=XX" → byte, soft line breaks "=\n" / "=\r\n" removed, any other "="
// kept as is. dst needs n + 1 bytes; returns the decoded length (dst NUL-terminated).
size_t email_qp_decode(const char *src, size_t n, char *dst);
// Base64 (RFC 2045): characters outside the alphabet (line breaks) are skipped, decoding
// stops at '='. dst needs n + 1 bytes; returns the decoded length (dst NUL-terminated).
size_t email_base64_decode(const char *src, size_t n, char *dst);
// HTML to text: tags removed (block tags such as <br>, <p>, <div>, <tr>, <li> become a line
// break, table cells a space), comments, <script> and <style> contents dropped, the common
// entities (&amp; &lt; &gt; &quot; &apos; &nbsp; &#N; &#xH; ...) decoded to UTF-8.
// dst needs n + 1 bytes; returns the length.
size_t email_html_strip(const char *src, size_t n, char *dst);
// Decodes RFC 2047 encoded words ("=?charset?Q?...?=", "=?charset?B?...?=") in a header
// value. dst needs n + 1 bytes; returns the length.
size_t email_decode_header(const char *src, size_t n, char *dst);
// Makes text valid UTF-8 (invalid bytes read as Windows-1252), control characters other than
// '\n' become spaces, runs of spaces collapse to one, lines are trimmed, more than one empty
// line collapses to one, and the whole is trimmed. Returns a malloc'd string (caller frees).
char *email_normalize_text(const char *src, size_t n);

// The cleaned text of a raw message, "Subject: <subject>\n\n<body>"; malloc'd, caller frees.
char *email_clean(const char *raw, size_t n);

#endif
