// core/files.c — file-system helpers. See files.h.
#include "core/files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/errors.h"

int files_make_dirs(const char *dir) {
    char *p = xstrdup(dir);
    for (char *q = p + 1;; q++) {
        char c = *q;
        if (c != '/' && c != '\0') continue;
        *q = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            err_set("%s: cannot create directory: %s", p, strerror(e));
            free(p);
            return -1;
        }
        *q = c;
        if (!c) break;
    }
    free(p);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return err_set("%s: not a directory", dir);
    return 0;
}

int files_make_parent_dirs(const char *path) {
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int status = slash && slash != dir ? (*slash = '\0', files_make_dirs(dir)) : 0;
    free(dir);
    return status;
}

int files_check_regular(const char *path, const char *what) {
    struct stat sb;
    if (stat(path, &sb) != 0 || S_ISREG(sb.st_mode)) return 0;
    const char *kind = S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISDIR(sb.st_mode) ? "a directory"
                     : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
                     : S_ISSOCK(sb.st_mode) ? "a socket" : "not a plain file";
    return err_set("%s: %s is %s; expected a regular file", path, what, kind);
}
