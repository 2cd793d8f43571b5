/* log: leveled, timestamped lines to stderr. */
#include "controlplane/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int log_threshold = LOG_LVL_INFO;

void log_set_level(int level)
{
	if (level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	log_threshold = level;
}

static const char *log_name(int level)
{
	switch (level) {
	case LOG_LVL_ERROR:
		return "ERROR";
	case LOG_LVL_WARN:
		return "WARN ";
	case LOG_LVL_INFO:
		return "INFO ";
	default:
		return "DEBUG";
	}
}

void log_write(int level, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
		     log_name(level));
	if (r > 0)
		n += (size_t)r;

	va_list ap;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';

	/* One write(2) per line: stdio buffering could interleave lines of two threads. */
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}
