// core/files.h — small file-system helpers shared by the core and the harness.
#ifndef LORALAB_FILES_H
#define LORALAB_FILES_H

// mkdir -p: creates dir and any missing parents. 0, or -1 with err_set() naming the
// directory that could not be made (or a path that exists but is not a directory).
int files_make_dirs(const char *dir);
// mkdir -p of the directory part of path ("a/b/c.db" makes "a/b"); nothing for "c.db".
int files_make_parent_dirs(const char *path);
// 0 when path is a regular file or does not exist (the caller's open then says why), -1
// with err_set() naming it when it is a FIFO, device, socket or directory: reading one
// would block forever or never end. `what` names the file's role in the message.
int files_check_regular(const char *path, const char *what);

#endif
