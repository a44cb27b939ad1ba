// tests/tmpdir.h — one scratch directory per test binary: the group setup makes it under /tmp,
// the group teardown removes it with everything in it; tmp_path names a file inside it.
#ifndef LORALAB_TESTS_TMPDIR_H
#define LORALAB_TESTS_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[256];

static int tmpdir_setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loralab_test_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int tmpdir_teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

// tmpdir/name; the last four results stay valid.
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

#endif
