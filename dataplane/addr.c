#include "dataplane/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>

int addr_parse(const char *text, struct addr *a)
{
	uint8_t b[16];

	memset(a, 0, sizeof(*a));
	if (text == NULL)
		return -EINVAL;
	if (inet_pton(AF_INET, text, b) == 1) {
		addr_set_v4(a, b);
		return 0;
	}
	if (inet_pton(AF_INET6, text, b) == 1) {
		addr_set_v6(a, b);
		return 0;
	}
	return -EINVAL;
}

char *addr_format(const struct addr *a, char *buf, size_t size)
{
	char tmp[ADDR_STRLEN];
	const char *s = "-";

	if (size == 0)
		return buf;
	if (a->family == ADDR_V4 && inet_ntop(AF_INET, a->b, tmp, sizeof(tmp)))
		s = tmp;
	else if (a->family == ADDR_V6 && inet_ntop(AF_INET6, a->b, tmp, sizeof(tmp)))
		s = tmp;
	snprintf(buf, size, "%s", s);
	return buf;
}
