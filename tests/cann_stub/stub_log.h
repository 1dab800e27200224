/* Shared by the CANN stand-in libraries: append one line per call to $CANN_STUB_LOG. */
#ifndef STUB_LOG_H
#define STUB_LOG_H
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((unused, format(printf, 1, 2))) static void stub_log(const char *fmt, ...) {
    const char *path = getenv("CANN_STUB_LOG");
    if (!path) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}
#endif
