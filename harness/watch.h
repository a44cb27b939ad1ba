// harness/watch.h — `loralab status --watch`: the live progress view read from the database.
#ifndef LORALAB_WATCH_H
#define LORALAB_WATCH_H

#include "harness/store.h"

// Shows the running runs of sweep (NULL: every run) and the sweep line on stdout, redrawn
// every `interval` seconds (in place on a terminal, plain lines otherwise) until no run is
// running or pending. 0, or -1 with err_set().
int status_watch(Store *st, const char *sweep, double interval);

#endif
