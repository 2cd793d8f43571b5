/* Corpus replay: feed every file of a directory to a libFuzzer target, without libFuzzer. */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/*
 * Linked with one tests/fuzz/fuzz_NAME.c, built as replay_NAME. With no
 * argument it replays tests/fuzz/corpus/NAME (relative to the working
 * directory, the repository root under make), NAME coming from the
 * program's own name; argv[1] names another directory. Files are replayed
 * in name order, each from an exact-size heap copy so that sanitizers see
 * reads past its end. Dot files are skipped. Exit status: 0 if at least one
 * file was replayed, 1 if the directory is missing, unreadable or empty (a
 * replay that replays nothing must not pass), and a crash is a crash.
 */


static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	uint8_t *p;

	if (fp == NULL)
		return -errno;
	if (fstat(fileno(fp), &st) != 0) {
		fclose(fp);
		return -EIO;
	}
	p = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (p == NULL) {
		fclose(fp);
		return -ENOMEM;
	}
	if (fread(p, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		free(p);
		fclose(fp);
		return -EIO;
	}
	fclose(fp);
	*data = p;
	*size = (size_t)st.st_size;
	return 0;
}

int main(int argc, char **argv)
{
	char dir[4096], path[8192];
	const char *base;
	char **names = NULL;
	size_t n = 0, cap = 0, done = 0;
	struct dirent *de;
	DIR *d;
	int rc = 1;

	if (argc > 1) {
		snprintf(dir, sizeof(dir), "%s", argv[1]);
	} else {
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strncmp(base, "replay_", 7) != 0 || base[7] == '\0') {
			fprintf(stderr, "%s: no corpus name in my name; pass a directory\n",
				argv[0]);
			return 1;
		}
		snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s", base + 7);
	}
	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], dir, strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **m = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*names));

			if (m == NULL)
				goto out;
			names = m;
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			goto out;
		n++;
	}
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		uint8_t *data = NULL;
		size_t size = 0;
		int err;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		err = read_file(path, &data, &size);
		if (err) {
			fprintf(stderr, "%s: %s: %s\n", argv[0], path, strerror(-err));
			goto out;
		}
		LLVMFuzzerTestOneInput(data, size);
		free(data);
		done++;
	}
	printf("%s: replayed %zu files from %s\n", argv[0], done, dir);
	if (done == 0)
		fprintf(stderr, "%s: no input in %s\n", argv[0], dir);
	else
		rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}
