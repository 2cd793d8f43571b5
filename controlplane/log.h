/* log: a small leveled logger to stderr with timestamps (control thread; never the fast path). */
#ifndef FULCRUM_CONTROLPLANE_LOG_H
#define FULCRUM_CONTROLPLANE_LOG_H

/*
 * Levels match enum cfg_log_level (controlplane/config.h) numerically so a
 * configured level can be passed straight to log_set_level().
 */
enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/*
 * The current threshold. Read by the macros below without a lock: a plain int
 * written only by log_set_level(), so a reader sees either the old or the new
 * value; both are fine for a log filter.
 */
extern int log_threshold;

/* Set the threshold (levels above it are discarded). Any thread; out-of-range values are clamped. */
void log_set_level(int level);

/*
 * Format and write one line "2026-11-26T16:12:01.123Z LEVEL message\n" to
 * stderr, as a single write so that lines of different threads do not mix.
 * Long messages are truncated. Any thread except DPDK workers (which must not
 * format). Use the macros: they skip the formatting entirely when the level
 * is filtered out.
 */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_AT(lvl, ...)                                                                           \
	do {                                                                                       \
		if ((lvl) <= log_threshold)                                                        \
			log_write((lvl), __VA_ARGS__);                                             \
	} while (0)
#define log_error(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
