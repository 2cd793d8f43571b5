/* Unit tests for controlplane/config: shipped file, defaults, every kind of error, uids, spec,
 * dump. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controlplane/config.h"
#include "dataplane/fwd.h"

#define SHIPPED "conf/fulcrumd.conf"
#define DOCS	"docs/config.md"

/* Two lines every error case below starts from: a node address of each family and a port. */
#define BASE                                                                                       \
	"node = { address = \"10.0.0.2\"; address6 = \"2001:db8::2\"; };\n"                        \
	"dataplane = { port = { devargs = \"net_null0\"; }; };\n"

static void addr_of(const char *text, struct addr *a)
{
	assert_int_equal(addr_parse(text, a), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Load text that must fail with -EINVAL, a message containing every needle, and a zeroed cfg. */
static void expect_error(const char *text, const char *needle1, const char *needle2)
{
	struct fulcrum_config cfg, zero;
	char err[1024];
	int rc;

	memset(&cfg, 0x5a, sizeof(cfg));
	rc = config_load_string(text, "t.conf", &cfg, err, sizeof(err));
	if (rc != -EINVAL || strstr(err, needle1) == NULL ||
	    (needle2 != NULL && strstr(err, needle2) == NULL))
		print_error("config:\n%s\nrc %d, message: %s\nwanted: %s / %s\n", text, rc, err,
			    needle1, needle2 ? needle2 : "");
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, needle1));
	if (needle2 != NULL)
		assert_non_null(strstr(err, needle2));
	/* messages start with the file name */
	assert_int_equal(strncmp(err, "t.conf", 6), 0);
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(&cfg, &zero, sizeof(cfg));
}

static void load_ok(const char *text, struct fulcrum_config *cfg)
{
	char err[1024];
	int rc = config_load_string(text, "t.conf", cfg, err, sizeof(err));

	if (rc != 0)
		print_error("config:\n%s\nrc %d: %s\n", text, rc, err);
	assert_int_equal(rc, 0);
}

static void test_shipped_matches_lab(void **state)
{
	struct fulcrum_config cfg;
	char err[1024];
	struct addr a;
	static const char *const names[] = {"web-nat", "web-dsr", "udp-nat"};
	static const char *const vips[] = {"10.99.0.100", "10.99.0.101", "10.99.0.100"};
	static const uint16_t ports[] = {80, 80, 5353}, bports[] = {8080, 80, 5353};
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_TCP, IPPROTO_UDP};
	static const uint8_t modes[] = {FWD_MODE_NAT, FWD_MODE_DSR, FWD_MODE_NAT};
	static const char *const bes[] = {"10.99.0.21", "10.99.0.22", "10.99.0.23"};
	int rc;

	(void)state;
	rc = config_load(SHIPPED, &cfg, err, sizeof(err));
	if (rc != 0)
		print_error("%s\n", err);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg.path, SHIPPED);
	addr_of("10.99.0.2", &a);
	assert_true(addr_eq(&cfg.node_v4, &a));
	addr_of("10.99.0.10", &a);
	assert_true(addr_eq(&cfg.gateway, &a));
	assert_int_equal(cfg.node_v6.family, ADDR_NONE);
	assert_int_equal(cfg.log_level, CFG_LOG_INFO);
	/* EAL as the lab wants it: floating lcores, no hugepages, no PCI, af_packet on fc-lb0 */
	assert_string_equal(cfg.dp.lcores, "0@(0-1),1@(0-1)");
	assert_true(cfg.dp.no_huge);
	assert_true(cfg.dp.in_memory);
	assert_true(cfg.dp.memory_mb == 256 || cfg.dp.memory_mb == 512);
	assert_int_equal(cfg.dp.n_eal_args, 1);
	assert_string_equal(cfg.dp.eal_args[0], "--no-pci");
	assert_string_equal(cfg.dp.port_devargs, "net_af_packet0,iface=fc-lb0");
	assert_int_equal(cfg.dp.workers, 1);
	assert_int_equal(cfg.dp.idle, CFG_IDLE_ADAPTIVE);
	assert_true(cfg.dp.mbufs >= cfg.dp.workers * (cfg.dp.rx_desc + cfg.dp.tx_desc));
	assert_int_equal(cfg.n_neighbours, 0);

	assert_int_equal(cfg.n_services, 3);
	for (unsigned i = 0; i < 3; i++) {
		const struct cfg_service *s = &cfg.services[i];
		assert_string_equal(s->name, names[i]);
		addr_of(vips[i], &a);
		assert_true(addr_eq(&s->vip, &a));
		assert_int_equal(s->port, ports[i]);
		assert_int_equal(s->proto, protos[i]);
		assert_int_equal(s->mode, modes[i]);
		assert_true(s->announce);
		assert_true(s->line > 0);
		assert_int_equal(s->n_backends, 3);
		for (unsigned k = 0; k < 3; k++) {
			addr_of(bes[k], &a);
			assert_true(addr_eq(&s->backends[k].addr, &a));
			assert_int_equal(s->backends[k].port, bports[i]);
			assert_int_equal(s->backends[k].weight, 1);
			assert_int_equal(s->backends[k].uid,
					 config_backend_uid(&a, s->backends[k].port));
		}
	}
	config_free(&cfg);
	assert_null(cfg.services);
	config_free(&cfg); /* twice is fine */
	config_free(NULL);
}

static void test_defaults(void **state)
{
	struct fulcrum_config cfg;
	struct flow_timeouts def;

	(void)state;
	load_ok("dataplane = { port = { devargs = \"net_null0\"; }; };", &cfg);
	assert_string_equal(cfg.node_name, "fulcrum");
	assert_int_equal(cfg.node_v4.family, ADDR_NONE);
	assert_int_equal(cfg.node_v6.family, ADDR_NONE);
	assert_int_equal(cfg.gateway.family, ADDR_NONE);
	assert_true(cfg.hash_seed == 0x46756c6372756d31ULL);
	assert_int_equal(cfg.log_level, CFG_LOG_INFO);
	assert_string_equal(cfg.dp.lcores, "");
	assert_string_equal(cfg.dp.file_prefix, "");
	assert_int_equal(cfg.dp.memory_mb, 0);
	assert_false(cfg.dp.no_huge);
	assert_false(cfg.dp.in_memory);
	assert_int_equal(cfg.dp.n_eal_args, 0);
	assert_int_equal(cfg.dp.rx_desc, 1024);
	assert_int_equal(cfg.dp.tx_desc, 1024);
	assert_int_equal(cfg.dp.mtu, 1500);
	assert_int_equal(cfg.dp.workers, 1);
	/* 1 * (1024 + 1024 + 64) + 2 * 256 + 1024 = 3648, rounded up to 2^12 - 1 */
	assert_int_equal(cfg.dp.mbufs, 4095);
	assert_int_equal(cfg.dp.mbuf_cache, 256);
	assert_int_equal(cfg.dp.burst, 32);
	assert_int_equal(cfg.dp.tx_flush_us, 100);
	assert_int_equal(cfg.dp.idle, CFG_IDLE_BUSY);
	assert_int_equal(cfg.dp.idle_polls, 300);
	assert_int_equal(cfg.dp.idle_sleep_us, 20);
	assert_int_equal(cfg.dp.flow_capacity, 262144);
	/* the table's defaults must not drift from the flow module's */
	flow_timeouts_default(&def);
	assert_memory_equal(&cfg.dp.timeouts, &def, sizeof(def));
	assert_int_equal(cfg.dp.snat_port_lo, 1024);
	assert_int_equal(cfg.dp.snat_port_hi, 65535);
	assert_int_equal(cfg.dp.arp_timeout_s, 300);
	assert_int_equal(cfg.dp.arp_retry_ms, 1000);
	assert_int_equal(cfg.n_services, 0);
	assert_int_equal(cfg.n_neighbours, 0);
	config_free(&cfg);
}

static void test_defaults_services(void **state)
{
	struct fulcrum_config cfg;
	struct addr a;

	(void)state;
	load_ok(BASE "services = ( { name = \"s\"; vip = \"10.0.0.100\"; port = 443;\n"
		     "  backends = ( { address = \"10.0.0.21\"; }, { address = \"10.0.0.22\"; "
		     "weight = 0; } ); } );\n",
		&cfg);
	assert_int_equal(cfg.n_services, 1);
	assert_int_equal(cfg.services[0].proto, IPPROTO_TCP);
	assert_int_equal(cfg.services[0].mode, FWD_MODE_NAT);
	assert_false(cfg.services[0].announce);
	assert_int_equal(cfg.services[0].table_size, 65537);
	assert_int_equal(cfg.services[0].line, 3);
	assert_int_equal(cfg.services[0].n_backends, 2);
	assert_int_equal(cfg.services[0].backends[0].port, 443); /* the service port */
	assert_int_equal(cfg.services[0].backends[0].weight, 1);
	assert_int_equal(cfg.services[0].backends[1].weight, 0);
	addr_of("10.0.0.21", &a);
	assert_int_equal(cfg.services[0].backends[0].uid, config_backend_uid(&a, 443));
	config_free(&cfg);

	load_ok("dataplane = {\n"
		"  port = { devargs = \"net_null0\"; };\n"
		"  workers = 4; mbuf_cache = 0;\n"
		"  flows = { udp_timeout = 0.25; tcp_established_timeout = 7200; };\n"
		"};\n",
		&cfg);
	assert_true(cfg.dp.timeouts.udp == 250000000ULL);
	assert_true(cfg.dp.timeouts.tcp_est == 7200ULL * 1000000000ULL);
	/* 4 * (1024 + 1024 + 64) + 0 + handoff rings 4 * (1024 + 32) + 1024 = 13696 -> 16383 */
	assert_int_equal(cfg.dp.mbufs, 16383);
	config_free(&cfg);

	/*
	 * The handoff rings (reply steering, workers > 1) are what crosses the
	 * power of two here: 2 * (1024 + 1024 + 64) + 3 * 512 = 5760, + 1024 =
	 * 6784 would be 8191; with 2 * (1024 + 32) more, 8896 -> 16383.
	 */
	load_ok("dataplane = { port = { devargs = \"net_null0\"; }; workers = 2; mbuf_cache = 512; };",
		&cfg);
	assert_int_equal(cfg.dp.mbufs, 16383);
	config_free(&cfg);
}

/* The same 64-bit seed written in every accepted form. */
static void test_seed_forms(void **state)
{
	static const char *const forms[] = {"\"0x1f\"", "\"31\"", "31",
					    "0x1F",	"31L",	  "\"0x00000000000001f\""};
	static const char *const big[] = {"\"0xffffffffffffffff\"", "\"18446744073709551615\""};
	char text[512];
	struct fulcrum_config cfg;

	(void)state;
	for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		snprintf(text, sizeof(text),
			 "node = { hash_seed = %s; };\n"
			 "dataplane = { port = { devargs = \"x\"; }; };\n",
			 forms[i]);
		load_ok(text, &cfg);
		assert_true(cfg.hash_seed == 31);
		config_free(&cfg);
	}
	for (unsigned i = 0; i < 2; i++) {
		snprintf(text, sizeof(text),
			 "node = { hash_seed = %s; };\n"
			 "dataplane = { port = { devargs = \"x\"; }; };\n",
			 big[i]);
		load_ok(text, &cfg);
		assert_true(cfg.hash_seed == UINT64_MAX);
		config_free(&cfg);
	}
	expect_error("node = {\n hash_seed = \"0xZZ\";\n};\n", "t.conf:2: node.hash_seed: \"0xZZ\"",
		     "(expected a 64-bit value");
	expect_error("node = {\n hash_seed = \"0x1ffffffffffffffff\";\n};\n",
		     "t.conf:2: node.hash_seed:", "is not a 64-bit value");
	expect_error("node = {\n hash_seed = \"18446744073709551616\";\n};\n",
		     "t.conf:2: node.hash_seed:", "is not a 64-bit value");
	expect_error("node = {\n hash_seed = -1;\n};\n", "t.conf:2: node.hash_seed: negative",
		     NULL);
	expect_error("node = {\n hash_seed = 1.5;\n};\n", "t.conf:2: node.hash_seed: wrong type",
		     NULL);
}

static void test_syntax_and_lexical(void **state)
{
	(void)state;
	expect_error("node = {\n  name = \"a\"\n  address = ;\n};\n", "t.conf:3: syntax error",
		     NULL);
	expect_error("node = {\n", "t.conf:", "syntax error");
	expect_error("node = { name = \"a\"; name = \"b\"; };\n", "t.conf:1: syntax error",
		     "duplicate");
	/* libconfig would read these as -1294967296 and 1 */
	expect_error(BASE "x = 3000000000;\n", "t.conf:3: integer 3000000000 does not fit", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n flows = {\n  capacity = "
		     "4294967297;\n };\n};\n",
		     "t.conf:4: integer 4294967297 does not fit in 32 bits", NULL);
	expect_error("node = { hash_seed = 0xffffffffffffffffL; };\n", "t.conf:1: integer",
		     "does not fit in 64 bits");
	/* digits inside strings, names and comments are not integers */
	{
		struct fulcrum_config cfg;
		load_ok(
		    "# 99999999999\n/* 88888888888\n 77777777777 */\n"
		    "dataplane = { port = { devargs = \"n99999999999\"; }; }; // 66666666666\n"
		    "neighbours = ( { address = \"10.0.0.9\"; mac = \"02:00:00:00:00:09\"; } );\n",
		    &cfg);
		assert_string_equal(cfg.dp.port_devargs, "n99999999999");
		config_free(&cfg);
	}
	expect_error(BASE "@include \"other.conf\"\n", "t.conf:3: @include", NULL);
}

static void test_unknown_settings(void **state)
{
	(void)state;
	expect_error(
	    BASE "nodes = { };\n",
	    "t.conf:3: nodes: unknown setting (expected one of: node, dataplane, services, "
	    "neighbours, cluster)",
	    NULL);
	expect_error("node = {\n  adress = \"10.0.0.2\";\n};\n", "t.conf:2: node.adress: unknown",
		     "address6");
	expect_error("dataplane = {\n port = { devargs = \"x\";\n  rx_descs = 5; };\n};\n",
		     "t.conf:3: dataplane.port.rx_descs: unknown setting", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n flows = {\n  capcity = 5;\n "
		     "};\n};\n",
		     "t.conf:4: dataplane.flows.capcity: unknown setting", "capacity");
	expect_error(BASE "services = (\n {\n  name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			  "  vips = \"x\";\n } );\n",
		     "t.conf:6: services.[0].vips: unknown setting", NULL);
	expect_error(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			  "   backends = (\n     { address = \"10.0.0.21\"; },\n"
			  "     { address = \"10.0.0.22\"; weigth = 2; }\n ); } );\n",
		     "t.conf:7: services.[0].backends.[1].weigth: unknown setting", "weight");
	expect_error(BASE
		     "neighbours = (\n { address = \"10.0.0.9\"; mac = \"02:00:00:00:00:01\";\n"
		     "   ttl = 5; } );\n",
		     "t.conf:5: neighbours.[0].ttl: unknown setting", NULL);
}

static void test_type_errors(void **state)
{
	(void)state;
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n workers = \"2\";\n};\n",
		     "t.conf:3: dataplane.workers: wrong type: a string (expected an integer in "
		     "1..127)",
		     NULL);
	expect_error("dataplane = {\n port = { devargs = 5; };\n};\n",
		     "t.conf:2: dataplane.port.devargs: wrong type: an integer (expected a string",
		     NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n no_huge = 1;\n};\n",
		     "t.conf:3: dataplane.no_huge: wrong type: an integer (expected true or false)",
		     NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n burst = 32.0;\n};\n",
		     "t.conf:3: dataplane.burst: wrong type: a float", NULL);
	expect_error("dataplane = {\n port = \"net_null0\";\n};\n",
		     "t.conf:2: dataplane.port: wrong type: a string (expected a group", NULL);
	expect_error("node = 5;\n", "t.conf:1: node: wrong type: an integer (expected a group",
		     NULL);
	expect_error(BASE "services = {\n name = \"a\";\n};\n",
		     "t.conf:3: services: wrong type: a group (expected a list", NULL);
	expect_error(BASE "services = (\n 5\n);\n",
		     "t.conf:4: services.[0]: wrong type: an integer (expected a group", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n eal_args = [ \"--no-pci\" ];\n"
		     " eal_args2 = 1; };\n",
		     "t.conf:4: dataplane.eal_args2: unknown", NULL);
	expect_error(
	    "dataplane = {\n port = { devargs = \"x\"; };\n eal_args = ( \"--no-pci\",\n"
	    " 7 );\n};\n",
	    "dataplane.eal_args.[1]: wrong type: an integer (expected a list of at most 32 "
	    "strings",
	    NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n snat_ports = 1024;\n};\n",
		     "t.conf:3: dataplane.snat_ports: not a pair (expected [lo, hi]", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n snat_ports = [1, 2, 3];\n};\n",
		     "t.conf:3: dataplane.snat_ports: not a pair", NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   announce = \"yes\"; } );\n",
	    "t.conf:5: services.[0].announce: wrong type: a string (expected true or false)", NULL);
	expect_error(
	    "dataplane = {\n port = { devargs = \"x\"; };\n flows = {\n  udp_timeout = "
	    "\"60s\";\n };\n};\n",
	    "t.conf:4: dataplane.flows.udp_timeout: wrong type: a string (expected a number "
	    "of seconds",
	    NULL);
}

static void test_range_errors(void **state)
{
	(void)state;
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n burst = 65;\n};\n",
		     "t.conf:3: dataplane.burst: 65 is out of range (expected an integer in 1..64)",
		     NULL);
	expect_error(
	    "dataplane = {\n port = { devargs = \"x\"; };\n\n workers = 0;\n};\n",
	    "t.conf:4: dataplane.workers: 0 is out of range (expected an integer in 1..127)", NULL);
	expect_error(
	    "dataplane = {\n port = { devargs = \"x\"; };\n flows = { capacity = 0; };\n};\n",
	    "t.conf:3: dataplane.flows.capacity: 0 is out of range (expected an integer in "
	    "1..67108864)",
	    NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n flows = { capacity = "
		     "67108865; };\n};\n",
		     "t.conf:3: dataplane.flows.capacity: 67108865 is out of range", NULL);
	expect_error(
	    "dataplane = {\n port = { devargs = \"x\"; };\n flows = {\n tcp_fin_timeout = "
	    "0;\n };\n};\n",
	    "t.conf:4: dataplane.flows.tcp_fin_timeout: 0 is out of range (expected a number "
	    "of seconds > 0",
	    NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n flows = {\n udp_timeout = "
		     "-1.5;\n };\n};\n",
		     "t.conf:4: dataplane.flows.udp_timeout: -1.5 is out of range", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n flows = {\n other_timeout = "
		     "604801;\n };\n};\n",
		     "t.conf:4: dataplane.flows.other_timeout: 604801 is out of range", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\";\n  mtu = 10000; };\n};\n",
		     "t.conf:3: dataplane.port.mtu: 10000 is out of range", NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   backends = ( { address = \"10.0.0.21\";\n weight = 1000001; } ); } );\n",
	    "t.conf:6: services.[0].backends.[0].weight: 1000001 is out of range (expected "
	    "an integer in 0..1000000)",
	    NULL);
	expect_error(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\";\n port = 0; } );\n",
		     "t.conf:5: services.[0].port: 0 is out of range (expected an integer in "
		     "1..65535)",
		     NULL);
	expect_error(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			  "   backends = ( { address = \"10.0.0.21\";\n port = 65536; } ); } );\n",
		     "t.conf:6: services.[0].backends.[0].port: 65536 is out of range", NULL);
	expect_error("dataplane = {\n port = { devargs = \"\"; };\n};\n",
		     "t.conf:2: dataplane.port.devargs: too short (expected a string of 1 to 255",
		     NULL);
	{
		char text[1024], longarg[400];
		memset(longarg, 'a', sizeof(longarg) - 1);
		longarg[sizeof(longarg) - 1] = '\0';
		snprintf(text, sizeof(text), "dataplane = {\n port = { devargs = \"%s\"; };\n};\n",
			 longarg);
		expect_error(text, "t.conf:2: dataplane.port.devargs: 399 characters is too long",
			     NULL);
	}
	expect_error("node = {\n name = \"my node\";\n};\n",
		     "t.conf:2: node.name: \"my node\" has a character not allowed", NULL);
	expect_error(BASE "services = (\n { name = \"\"; vip = \"10.0.0.100\"; port = 80; } );\n",
		     "t.conf:4: services.[0].name: empty", NULL);
}

static void test_address_errors(void **state)
{
	(void)state;
	expect_error(
	    BASE "services = (\n { name = \"a\";\n   vip = \"10.0.0.300\"; port = 80; } );\n",
	    "t.conf:5: services.[0].vip: \"10.0.0.300\" is not an address (expected an IPv4 "
	    "or IPv6 address)",
	    NULL);
	expect_error(
	    "node = {\n address = \"2001:db8::1\";\n};\n",
	    "t.conf:2: node.address: \"2001:db8::1\" is of the wrong family (expected \"\" "
	    "(none) or an IPv4 address)",
	    NULL);
	expect_error("node = {\n address6 = \"10.0.0.1\";\n};\n",
		     "t.conf:2: node.address6: \"10.0.0.1\" is of the wrong family", NULL);
	expect_error(BASE "services = (\n { name = \"a\";\n   vip = \"\"; port = 80; } );\n",
		     "t.conf:5: services.[0].vip: \"\" is not an address", NULL);
	expect_error(BASE "neighbours = (\n { address = \"10.0.0.9\";\n  mac = \"02:00:00:00:00\"; "
			  "} );\n",
		     "t.conf:5: neighbours.[0].mac: \"02:00:00:00:00\" is not a MAC address "
		     "(expected a unicast MAC",
		     NULL);
	expect_error(
	    BASE "neighbours = (\n { address = \"10.0.0.9\";\n  mac = \"01:00:5e:00:00:01\"; "
		 "} );\n",
	    "t.conf:5: neighbours.[0].mac: \"01:00:5e:00:00:01\" is a multicast address", NULL);
	expect_error(BASE
		     "neighbours = (\n { address = \"10.0.0.9\";\n  mac = \"00:00:00:00:00:00\"; "
		     "} );\n",
		     "t.conf:5: neighbours.[0].mac:", "all zero");
	expect_error(BASE
		     "neighbours = (\n { address = \"10.0.0.9\";\n  mac = \"02:00:00:00:00:0g\"; "
		     "} );\n",
		     "t.conf:5: neighbours.[0].mac:", "not a MAC");
	expect_error(
	    BASE "neighbours = (\n { address = \"10.0.0.9\"; mac = \"02:00:00:00:00:01\"; },\n"
		 " { address = \"10.0.0.9\"; mac = \"02:00:00:00:00:02\"; } );\n",
	    "t.conf:5: neighbours.[1].address: 10.0.0.9 is listed twice (first at line 4", NULL);
}

static void test_enum_errors(void **state)
{
	(void)state;
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   mode = \"fullnat\"; } );\n",
	    "t.conf:5: services.[0].mode: \"fullnat\" is not valid (expected one of \"nat\", "
	    "\"dsr\", \"tunnel\")",
	    NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   proto = \"sctp\"; } );\n",
	    "t.conf:5: services.[0].proto: \"sctp\" is not valid (expected one of \"tcp\", "
	    "\"udp\")",
	    NULL);
	expect_error(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			  "   proto = 6; } );\n",
		     "t.conf:5: services.[0].proto: wrong type: an integer (expected one of", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n idle = \"spin\";\n};\n",
		     "t.conf:3: dataplane.idle: \"spin\" is not valid (expected one of \"busy\", "
		     "\"adaptive\")",
		     NULL);
	expect_error(
	    "node = {\n log_level = \"verbose\";\n};\n",
	    "t.conf:2: node.log_level: \"verbose\" is not valid (expected one of \"error\", "
	    "\"warn\", \"info\", \"debug\")",
	    NULL);
	expect_error("node = {\n log_level = \"INFO\";\n};\n",
		     "t.conf:2: node.log_level:", "is not valid");
}

static void test_missing(void **state)
{
	(void)state;
	/* nothing at all: the port is the one setting without a default */
	expect_error("", "t.conf: dataplane.port.devargs: missing (expected a string of 1 to 255",
		     NULL);
	expect_error("node = { };\n\ndataplane = {\n workers = 1;\n};\n",
		     "t.conf:3: dataplane.port.devargs: missing", NULL);
	expect_error(BASE "services = (\n { name = \"a\"; port = 80; } );\n",
		     "t.conf:4: services.[0].vip: missing (expected an IPv4 or IPv6 address)",
		     NULL);
	expect_error(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			  "   backends = (\n    { port = 80; } ); } );\n",
		     "t.conf:6: services.[0].backends.[0].address: missing", NULL);
	expect_error(BASE "neighbours = (\n { address = \"10.0.0.9\"; } );\n",
		     "t.conf:4: neighbours.[0].mac: missing", NULL);
}

static void test_service_cross_checks(void **state)
{
	(void)state;
	expect_error(BASE "services = (\n { name = \"web\"; vip = \"10.0.0.100\"; port = 80; },\n"
			  " { name = \"web\";\n   vip = \"10.0.0.101\"; port = 80; } );\n",
		     "t.conf:5: services.[1].name: \"web\" is already the name of the service at "
		     "line 4",
		     NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80; },\n"
		 " { name = \"b\"; vip = \"10.0.0.100\"; port = 80; proto = \"tcp\"; } );\n",
	    "t.conf:5: services.[1]: 10.0.0.100 port 80 tcp is already service \"a\" at line "
	    "4",
	    NULL);
	/* the same vip and port over udp is another service */
	{
		struct fulcrum_config cfg;
		load_ok(BASE
			"services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80; },\n"
			" { name = \"b\"; vip = \"10.0.0.100\"; port = 80; proto = \"udp\"; } );\n",
			&cfg);
		assert_int_equal(cfg.n_services, 2);
		config_free(&cfg);
	}
	/* identity is (address, effective port): an omitted port is the service port */
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   backends = (\n    { address = \"10.0.0.21\"; },\n"
		 "    { address = \"10.0.0.21\"; port = 80; weight = 3; } ); } );\n",
	    "t.conf:7: services.[0].backends.[1]: backend 10.0.0.21 port 80 is listed twice "
	    "(first at line 6",
	    NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80; mode = "
		 "\"dsr\";\n   backends = (\n    { address = \"10.0.0.21\";\n"
		 "      port = 8080; } ); } );\n",
	    "t.conf:7: services.[0].backends.[0].port: 8080 differs from the service port in "
	    "dsr mode, which cannot rewrite ports (expected 0 or 80)",
	    NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80; mode = "
		 "\"tunnel\";\n   backends = ( { address = \"10.0.0.21\"; port = 81; } ); } );\n",
	    "t.conf:5: services.[0].backends.[0].port: 81 differs", "tunnel mode");
	expect_error("dataplane = { port = { devargs = \"x\"; }; };\n"
		     "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		     "   mode = \"nat\"; } );\n",
		     "t.conf:4: services.[0].mode: nat needs a node address of the VIP's family "
		     "(expected node.address to be set)",
		     NULL);
	/* the default mode is nat, so the error points at the service */
	expect_error("node = { address = \"10.0.0.2\"; };\n"
		     "dataplane = { port = { devargs = \"x\"; }; };\n"
		     "services = (\n { name = \"a\"; vip = \"2001:db8::100\"; port = 80; } );\n",
		     "t.conf:4: services.[0].mode: nat needs a node address of the VIP's family "
		     "(expected node.address6 to be set)",
		     NULL);
	expect_error("node = { address6 = \"2001:db8::2\"; };\n"
		     "dataplane = { port = { devargs = \"x\"; }; };\n"
		     "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		     "   mode = \"tunnel\"; } );\n",
		     "t.conf:5: services.[0].mode: tunnel needs an IPv4 node address", NULL);
	expect_error(BASE
		     "services = (\n { name = \"a\"; vip = \"2001:db8::100\"; port = 80; mode = "
		     "\"tunnel\";\n   backends = (\n  { address = \"2001:db8::21\"; } ); } );\n",
		     "t.conf:6: services.[0].backends.[0].address: 2001:db8::21 does not fit mode "
		     "tunnel",
		     "(expected an IPv4 address)");
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80; mode = "
		 "\"dsr\";\n   backends = (\n  { address = \"2001:db8::21\"; } ); } );\n",
	    "t.conf:6: services.[0].backends.[0].address: 2001:db8::21 does not fit mode dsr",
	    NULL);
	expect_error(BASE
		     "services = (\n { name = \"a\";\n   vip = \"10.0.0.2\"; port = 80; } );\n",
		     "t.conf:5: services.[0].vip: 10.0.0.2 is the node address", NULL);
	expect_error(
	    BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   table_size = 65536; } );\n",
	    "t.conf:5: services.[0].table_size: 65536 is not prime (expected a prime, e.g. "
	    "65537)",
	    NULL);
	expect_error(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			  "   table_size = 3;\n   backends = ( { address = \"10.0.0.21\"; },\n"
			  "  { address = \"10.0.0.22\"; }, { address = \"10.0.0.23\"; },\n"
			  "  { address = \"10.0.0.24\"; } ); } );\n",
		     "t.conf:5: services.[0].table_size: 3 slots for 4 backends with weight > 0 "
		     "(expected a prime of at least 5",
		     NULL);
	/* drained backends own no slot, so they do not count */
	{
		struct fulcrum_config cfg;
		load_ok(BASE "services = (\n { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
			     "   table_size = 3;\n   backends = ( { address = \"10.0.0.21\"; },\n"
			     "  { address = \"10.0.0.22\"; }, { address = \"10.0.0.23\"; },\n"
			     "  { address = \"10.0.0.24\"; weight = 0; } ); } );\n",
			&cfg);
		config_free(&cfg);
	}
}

static void test_dataplane_cross_checks(void **state)
{
	(void)state;
	expect_error(
	    "dataplane = {\n port = { devargs = \"x\"; };\n snat_ports = [2000, 1000];\n};\n",
	    "t.conf:3: dataplane.snat_ports: lo 2000 is above hi 1000 (expected [lo, hi] "
	    "with 1 <= lo <= hi <= 65535)",
	    NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n snat_ports = [0, 1000];\n};\n",
		     "t.conf:3: dataplane.snat_ports: 0 is out of range", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n workers = 4;\n"
		     " snat_ports = [5000, 5002];\n};\n",
		     "t.conf:4: dataplane.snat_ports: 3 ports for 4 workers (expected at least one "
		     "port per worker)",
		     NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n workers = 2;\n"
		     " lcores = \"0@(0-1),1@(0-1)\";\n};\n",
		     "t.conf:4: dataplane.lcores: names 2 lcores, too few for 2 workers", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n lcores = \"0@(0-1\";\n};\n",
		     "t.conf:3: dataplane.lcores: \"0@(0-1\" is not an lcore list", NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n lcores = \"0,a\";\n};\n",
		     "t.conf:3: dataplane.lcores:", "is not an lcore list");
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n lcores = \"3-1\";\n};\n",
		     "t.conf:3: dataplane.lcores:", "is not an lcore list");
	expect_error("dataplane = {\n port = { devargs = \"x\"; };\n mbufs = 1000;\n};\n",
		     "t.conf:3: dataplane.mbufs: 1000 is too few (expected 0 or at least 2624",
		     NULL);
	expect_error("dataplane = {\n port = { devargs = \"x\"; rx_desc = 64; tx_desc = 64; };\n"
		     " mbufs = 500;\n mbuf_cache = 512;\n};\n",
		     "t.conf:3: dataplane.mbufs: 500 is too few", NULL);
	/* two workers: 2 * (64 + 64 + 64) + 0 = 384, + handoff rings 2 * (64 + 32) = 576 */
	expect_error("dataplane = {\n port = { devargs = \"x\"; rx_desc = 64; tx_desc = 64; };\n"
		     " workers = 2;\n mbuf_cache = 0;\n mbufs = 575;\n};\n",
		     "t.conf:5: dataplane.mbufs: 575 is too few (expected 0 or at least 576 = ",
		     "+ workers * (rx_desc + burst) for the handoff rings)");
	{
		struct fulcrum_config cfg;
		load_ok("dataplane = {\n port = { devargs = \"x\"; rx_desc = 64; tx_desc = 64; };\n"
			" workers = 2;\n mbuf_cache = 0;\n mbufs = 576;\n};\n",
			&cfg);
		assert_int_equal(cfg.dp.mbufs, 576);
		config_free(&cfg);
	}
	/* lcore lists EAL accepts */
	{
		static const char *const ok[] = {"0,1,2", "0-2", "(0,1)@0,2@(0-1)", "0@1,1@1,2@1",
						 "0-1,2@(0,1)"};
		char text[256];
		struct fulcrum_config cfg;
		for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			snprintf(text, sizeof(text),
				 "dataplane = { port = { devargs = \"x\"; }; workers = 2; lcores = "
				 "\"%s\"; };",
				 ok[i]);
			load_ok(text, &cfg);
			config_free(&cfg);
		}
	}
}

/* Stable identity: same backend, same uid, in every load and every version (pinned value). */
static void test_uid_stability(void **state)
{
	const char *text =
	    BASE "services = (\n"
		 " { name = \"a\"; vip = \"10.0.0.100\"; port = 80;\n"
		 "   backends = ( { address = \"10.0.0.21\"; port = 8080; },\n"
		 "                { address = \"10.0.0.21\"; port = 8081; },\n"
		 "                { address = \"10.0.0.22\"; } ); },\n"
		 " { name = \"b\"; vip = \"10.0.0.101\"; port = 8080;\n"
		 "   backends = ( { address = \"10.0.0.22\"; port = 80; weight = 5; },\n"
		 "                { address = \"10.0.0.21\"; } ); } );\n";
	struct fulcrum_config c1, c2;
	struct addr a;

	(void)state;
	load_ok(text, &c1);
	load_ok(text, &c2);
	for (unsigned i = 0; i < c1.n_services; i++)
		for (unsigned k = 0; k < c1.services[i].n_backends; k++) {
			assert_int_not_equal(c1.services[i].backends[k].uid, 0);
			assert_int_equal(c1.services[i].backends[k].uid,
					 c2.services[i].backends[k].uid);
		}
	/* different ports, different uids */
	assert_int_not_equal(c1.services[0].backends[0].uid, c1.services[0].backends[1].uid);
	/* the uid names the identity, not the service or the weight */
	assert_int_equal(c1.services[0].backends[0].uid, c1.services[1].backends[1].uid);
	assert_int_equal(c1.services[0].backends[2].uid, c1.services[1].backends[0].uid);
	addr_of("10.0.0.21", &a);
	assert_int_equal(config_backend_uid(&a, 8080), c1.services[0].backends[0].uid);
	/*
	 * Pinned: a change of the uid function would make nodes of different
	 * versions disagree about backend identities. Update only knowingly.
	 */
	assert_int_equal(config_backend_uid(&a, 8080), 0xe847b819u);
	addr_of("2001:db8::21", &a);
	assert_int_not_equal(config_backend_uid(&a, 8080), 0);
	config_free(&c1);
	config_free(&c2);
}

struct uid_probe {
	uint32_t uid;
	uint32_t host;
};

static int uid_probe_cmp(const void *x, const void *y)
{
	const struct uid_probe *a = x, *b = y;

	if (a->uid != b->uid)
		return a->uid < b->uid ? -1 : 1;
	return a->host < b->host ? -1 : a->host > b->host;
}

/* Find a real 32-bit collision (birthday search) and check that loading rejects it. */
static void test_uid_collision_detected(void **state)
{
	const uint32_t n = 300000;
	struct uid_probe *p = malloc(n * sizeof(*p));
	struct addr a;
	uint8_t b4[4];
	char text[2048], x[ADDR_STRLEN], y[ADDR_STRLEN];
	int found = 0;

	(void)state;
	assert_non_null(p);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t host = 0x0a000000u + i; /* 10.0.0.0 + i */
		b4[0] = (uint8_t)(host >> 24);
		b4[1] = (uint8_t)(host >> 16);
		b4[2] = (uint8_t)(host >> 8);
		b4[3] = (uint8_t)host;
		addr_set_v4(&a, b4);
		p[i].uid = config_backend_uid(&a, 80);
		p[i].host = host;
	}
	qsort(p, n, sizeof(*p), uid_probe_cmp);
	for (uint32_t i = 1; i < n && !found; i++) {
		if (p[i].uid != p[i - 1].uid)
			continue;
		snprintf(x, sizeof(x), "%u.%u.%u.%u", p[i - 1].host >> 24,
			 (p[i - 1].host >> 16) & 255, (p[i - 1].host >> 8) & 255,
			 p[i - 1].host & 255);
		snprintf(y, sizeof(y), "%u.%u.%u.%u", p[i].host >> 24, (p[i].host >> 16) & 255,
			 (p[i].host >> 8) & 255, p[i].host & 255);
		found = 1;
	}
	free(p);
	/* 300000 identities in 2^32 values: a collision is all but certain (and deterministic) */
	assert_true(found);
	snprintf(text, sizeof(text),
		 BASE
		 "services = (\n { name = \"a\"; vip = \"10.255.0.100\"; port = 80;\n"
		 "   backends = (\n    { address = \"%s\"; },\n    { address = \"%s\"; } ); } );\n",
		 x, y);
	expect_error(text, "t.conf:7: services.[0].backends.[1]: uid ",
		     "collides with the backend at line 6");
}

struct neigh_ctx {
	unsigned calls;
};

/* Resolves 10.99.0.21 and 10.99.0.23 only. */
static int neigh_cb(void *ctx, const struct addr *a, uint8_t mac[6])
{
	struct neigh_ctx *nc = ctx;

	nc->calls++;
	if (a->family == ADDR_V4 && a->b[0] == 10 && a->b[1] == 99 && a->b[2] == 0 &&
	    (a->b[3] == 21 || a->b[3] == 23)) {
		static const uint8_t m[6] = {0x02, 0, 0, 0, 0, 0};
		memcpy(mac, m, 6);
		mac[5] = a->b[3];
		return 1;
	}
	memset(mac, 0xee, 6); /* junk that config_to_spec must not keep */
	return 0;
}

static void test_to_spec_builds(void **state)
{
	static const uint8_t port_mac[6] = {0x02, 0xaa, 0, 0, 0, 1},
			     gw_mac[6] = {0x02, 0xbb, 0, 0, 0, 2};
	struct fulcrum_config cfg;
	struct fwd_spec spec;
	struct fwd_state *st;
	struct neigh_ctx nc = {0};
	struct addr vip;
	char err[512];
	uint32_t si;

	(void)state;
	assert_int_equal(config_load(SHIPPED, &cfg, err, sizeof(err)), 0);
	assert_int_equal(config_to_spec(&cfg, 42, port_mac, gw_mac, neigh_cb, &nc, 0, &spec), 0);
	assert_int_equal(nc.calls, 9);
	assert_true(spec.revision == 42);
	assert_true(spec.hash_seed == cfg.hash_seed);
	assert_memory_equal(spec.port_mac, port_mac, 6);
	assert_memory_equal(spec.gateway_mac, gw_mac, 6);
	assert_true(addr_eq(&spec.node_v4, &cfg.node_v4));
	assert_int_equal(spec.n_workers, cfg.dp.workers);
	assert_int_equal(spec.n_services, 3);
	for (unsigned i = 0; i < 3; i++) {
		const struct fwd_service_spec *s = &spec.services[i];
		assert_true(addr_eq(&s->vip, &cfg.services[i].vip));
		assert_int_equal(s->port, cfg.services[i].port);
		assert_int_equal(s->proto, cfg.services[i].proto);
		assert_int_equal(s->mode, cfg.services[i].mode);
		assert_int_equal(s->announce, 1);
		assert_int_equal(s->table_size, cfg.services[i].table_size);
		assert_int_equal(s->n_backends, 3);
		for (unsigned k = 0; k < 3; k++) {
			const struct fwd_backend_spec *b = &s->backends[k];
			assert_true(addr_eq(&b->addr, &cfg.services[i].backends[k].addr));
			assert_int_equal(b->port, cfg.services[i].backends[k].port);
			assert_int_equal(b->uid, cfg.services[i].backends[k].uid);
			assert_int_equal(b->weight, 1);
			/* mac_ok follows the callback: .21 and .23 resolved, .22 not */
			assert_int_equal(b->mac_ok, k != 1);
			if (k != 1)
				assert_int_equal(b->mac[5], 21 + k);
			else
				assert_memory_equal(b->mac, "\0\0\0\0\0\0", 6);
		}
	}
	st = fwd_state_build(&spec, err, sizeof(err));
	if (st == NULL)
		print_error("fwd_state_build: %s\n", err);
	assert_non_null(st);
	addr_of("10.99.0.100", &vip);
	si = fwd_find_service(st, &vip, 80, IPPROTO_TCP);
	assert_int_equal(si, 0);
	assert_int_equal(st->services[si].mode, FWD_MODE_NAT);
	assert_int_equal(fwd_find_service(st, &vip, 5353, IPPROTO_UDP), 2);
	addr_of("10.99.0.101", &vip);
	assert_int_equal(fwd_find_service(st, &vip, 80, IPPROTO_TCP), 1);
	for (unsigned k = 0; k < st->services[0].n_backends; k++) {
		const struct fwd_backend *b = &st->services[0].backends[k];
		assert_int_equal(b->mac_ok, !(b->addr.b[3] == 22));
		assert_int_equal(b->port, 8080);
	}
	fwd_state_free(st);
	config_spec_free(&spec);
	assert_null(spec.services);
	assert_int_equal(spec.n_services, 0);
	config_spec_free(&spec);

	/* no resolver: nothing resolved; workers given explicitly */
	assert_int_equal(config_to_spec(&cfg, 1, NULL, NULL, NULL, NULL, 3, &spec), 0);
	assert_int_equal(spec.n_workers, 3);
	for (unsigned i = 0; i < spec.n_services; i++)
		for (unsigned k = 0; k < spec.services[i].n_backends; k++)
			assert_int_equal(spec.services[i].backends[k].mac_ok, 0);
	st = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(st);
	fwd_state_free(st);
	config_spec_free(&spec);
	config_free(&cfg);
}

static void test_to_spec_static_neighbours_and_empty(void **state)
{
	struct fulcrum_config cfg;
	struct fwd_spec spec;
	struct fwd_state *st;
	struct addr a;
	uint8_t mac[6];
	char err[512];

	(void)state;
	load_ok(BASE "services = (\n"
		     " { name = \"v6\"; vip = \"2001:db8::100\"; port = 443; mode = \"nat\";\n"
		     "   backends = ( { address = \"2001:db8::21\"; port = 8443; weight = 2; },\n"
		     "                { address = \"2001:db8::22\"; port = 8443; } ); },\n"
		     " { name = \"tun\"; vip = \"10.0.0.100\"; port = 53; proto = \"udp\";\n"
		     "   mode = \"tunnel\"; table_size = 251;\n"
		     "   backends = ( { address = \"192.0.2.21\"; } ); },\n"
		     " { name = \"empty\"; vip = \"10.0.0.101\"; port = 80; mode = \"dsr\"; } );\n"
		     "neighbours = (\n"
		     " { address = \"2001:db8::21\"; mac = \"02:00:00:00:00:21\"; },\n"
		     " { address = \"192.0.2.21\"; mac = \"02-00-00-00-00-99\"; } );\n",
		&cfg);
	addr_of("192.0.2.21", &a);
	assert_int_equal(config_neigh_static(&cfg, &a, mac), 1);
	assert_int_equal(mac[5], 0x99);
	addr_of("192.0.2.22", &a);
	assert_int_equal(config_neigh_static(&cfg, &a, mac), 0);

	assert_int_equal(config_to_spec(&cfg, 9, NULL, NULL, config_neigh_static, &cfg, 2, &spec),
			 0);
	assert_int_equal(spec.services[0].backends[0].mac_ok, 1);
	assert_int_equal(spec.services[0].backends[0].mac[5], 0x21);
	assert_int_equal(spec.services[0].backends[1].mac_ok, 0);
	assert_int_equal(spec.services[1].backends[0].mac_ok, 1);
	assert_int_equal(spec.services[2].n_backends, 0);
	st = fwd_state_build(&spec, err, sizeof(err));
	if (st == NULL)
		print_error("fwd_state_build: %s\n", err);
	assert_non_null(st);
	assert_int_equal(st->services[1].table.size, 251);
	fwd_state_free(st);
	config_spec_free(&spec);
	config_free(&cfg);

	/* no services at all */
	load_ok("dataplane = { port = { devargs = \"x\"; }; };", &cfg);
	assert_int_equal(config_to_spec(&cfg, 1, NULL, NULL, NULL, NULL, 0, &spec), 0);
	assert_int_equal(spec.n_services, 0);
	st = fwd_state_build(&spec, err, sizeof(err));
	assert_non_null(st);
	fwd_state_free(st);
	config_spec_free(&spec);
	config_free(&cfg);
}

static void assert_configs_equal(const struct fulcrum_config *a, const struct fulcrum_config *b)
{
	assert_string_equal(a->node_name, b->node_name);
	assert_int_equal(a->log_level, b->log_level);
	assert_true(a->hash_seed == b->hash_seed);
	assert_memory_equal(&a->node_v4, &b->node_v4, sizeof(a->node_v4));
	assert_memory_equal(&a->node_v6, &b->node_v6, sizeof(a->node_v6));
	assert_memory_equal(&a->gateway, &b->gateway, sizeof(a->gateway));
	assert_memory_equal(&a->dp, &b->dp, sizeof(a->dp));
	assert_int_equal(a->n_services, b->n_services);
	for (uint32_t i = 0; i < a->n_services; i++) {
		const struct cfg_service *x = &a->services[i], *y = &b->services[i];
		assert_string_equal(x->name, y->name);
		assert_memory_equal(&x->vip, &y->vip, sizeof(x->vip));
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->proto, y->proto);
		assert_int_equal(x->mode, y->mode);
		assert_int_equal(x->announce, y->announce);
		assert_int_equal(x->table_size, y->table_size);
		assert_int_equal(x->n_backends, y->n_backends);
		if (x->n_backends > 0)
			assert_memory_equal(x->backends, y->backends,
					    x->n_backends * sizeof(*x->backends));
	}
	assert_int_equal(a->n_neighbours, b->n_neighbours);
	if (a->n_neighbours > 0)
		assert_memory_equal(a->neighbours, b->neighbours,
				    a->n_neighbours * sizeof(*a->neighbours));
}

static void roundtrip(const struct fulcrum_config *a)
{
	struct fulcrum_config b;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(config_dump(a, f), 0);
	fclose(f);
	load_ok(text, &b);
	assert_configs_equal(a, &b);
	config_free(&b);
	free(text);
}

/* config_dump writes what was loaded: loading the dump gives the same config. */
static void test_dump_roundtrip(void **state)
{
	struct fulcrum_config cfg;
	char err[512];

	(void)state;
	assert_int_equal(config_load(SHIPPED, &cfg, err, sizeof(err)), 0);
	roundtrip(&cfg);
	config_free(&cfg);

	load_ok(
	    "node = { name = \"n-1.a_b\"; address = \"10.0.0.2\"; address6 = \"2001:db8::2\";\n"
	    "  gateway = \"2001:db8::1\"; hash_seed = \"0xfedcba9876543210\"; log_level = "
	    "\"debug\"; };\n"
	    "dataplane = { lcores = \"0-2\"; file_prefix = \"fc1\"; memory_mb = 512;\n"
	    "  eal_args = [ \"--no-pci\", \"--log-level=lib.eal:debug\", \"a\\\"quoted\\\\\" ];\n"
	    "  port = { devargs = \"net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap\"; rx_desc = 512; "
	    "tx_desc = 256; mtu = 9000; };\n"
	    "  workers = 2; mbufs = 65535; mbuf_cache = 128; burst = 64; tx_flush_us = 50;\n"
	    "  idle = \"adaptive\"; idle_polls = 10; idle_sleep_us = 5;\n"
	    "  flows = { capacity = 1000; tcp_syn_timeout = 1.5; udp_timeout = 0.001; };\n"
	    "  snat_ports = [20000, 20009]; arp_timeout = 60; arp_retry_ms = 250; };\n"
	    "services = (\n"
	    " { name = \"v6\"; vip = \"2001:db8::100\"; port = 443; announce = true;\n"
	    "   backends = ( { address = \"2001:db8::21\"; port = 8443; weight = 2; },\n"
	    "                { address = \"2001:db8::22\"; weight = 0; } ); },\n"
	    " { name = \"tun\"; vip = \"10.0.0.100\"; port = 53; proto = \"udp\";\n"
	    "   mode = \"tunnel\"; table_size = 251;\n"
	    "   backends = ( { address = \"192.0.2.21\"; } ); },\n"
	    " { name = \"empty\"; vip = \"10.0.0.101\"; port = 80; mode = \"dsr\"; } );\n"
	    "neighbours = ( { address = \"192.0.2.21\"; mac = \"02:00:00:00:00:99\"; } );\n",
	    &cfg);
	assert_int_equal(cfg.dp.n_eal_args, 3);
	assert_string_equal(cfg.dp.eal_args[2], "a\"quoted\\");
	assert_true(cfg.dp.timeouts.udp == 1000000ULL);
	roundtrip(&cfg);
	config_free(&cfg);
}

/* docs/config.md carries the generated reference verbatim: the docs follow the table. */
static void test_docs_in_step(void **state)
{
	char *doc = slurp(DOCS);
	char *ref = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&ref, &len);

	(void)state;
	assert_non_null(f);
	assert_int_equal(config_dump_reference(f), 0);
	fclose(f);
	if (strstr(doc, ref) == NULL)
		print_error("docs/config.md does not contain the current reference; regenerate it "
			    "from config_dump_reference()\n");
	assert_non_null(strstr(doc, ref));
	/* every setting of the shipped file is documented */
	assert_non_null(strstr(ref, "`dataplane.flows.tcp_established_timeout`"));
	assert_non_null(strstr(ref, "`services.[].backends.[].weight`"));
	free(ref);
	free(doc);
}

/* Every example config in docs/config.md (a code block starting with "node = {") loads. */
static void test_docs_examples_load(void **state)
{
	char *doc = slurp(DOCS);
	char *p = doc;
	unsigned n = 0;

	(void)state;
	while ((p = strstr(p, "```\nnode = {")) != NULL) {
		char *start = p + 4, *end = strstr(start, "```");
		struct fulcrum_config cfg;
		assert_non_null(end);
		*end = '\0';
		load_ok(start, &cfg);
		assert_true(cfg.n_services >= 1);
		config_free(&cfg);
		n++;
		p = end + 1;
	}
	assert_true(n >= 2);
	free(doc);
}

/* ---- The cluster section ---- */

#define CL_HEAD                                                                                    \
	BASE "cluster = { id = 2; cluster_id = \"0xfc01\"; data_dir = \"/tmp/fc\";\n"              \
	     "  raft_listen = \"127.0.0.1:7002\"; api_listen = \"127.0.0.1:8002\";\n"

#define CL_PEERS                                                                                   \
	"  peers = ( { id = 1; raft = \"127.0.0.1:7001\"; api = \"127.0.0.1:8001\"; },\n"          \
	"            { id = 2; raft = \"127.0.0.1:7002\"; api = \"127.0.0.1:8002\"; },\n"          \
	"            { id = 3; raft = \"[::1]:7003\"; api = \"[::1]:8003\"; } );\n"

/* No cluster group: single node, nothing of the cluster in the dump (so it reloads as one). */
static void test_cluster_absent(void **state)
{
	struct fulcrum_config cfg, again;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_ok(BASE, &cfg);
	assert_false(cfg.cluster.enabled);
	assert_int_equal(cfg.cluster.id, 0);
	assert_int_equal(cfg.cluster.heartbeat_ms, 0); /* no defaults applied when absent */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(config_dump(&cfg, f), 0);
	fclose(f);
	assert_null(strstr(text, "cluster"));
	load_ok(text, &again);
	assert_false(again.cluster.enabled);
	config_free(&again);
	free(text);
	config_free(&cfg);
	assert_int_equal(config_load(SHIPPED, &cfg, (char[256]){0}, 256), 0);
	assert_false(cfg.cluster.enabled);
	config_free(&cfg);
}

static void test_cluster_loads(void **state)
{
	struct fulcrum_config cfg, b;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	load_ok(CL_HEAD CL_PEERS
		"  admin_tokens = [ \"admin-token-0123456789\" ];\n"
		"  registration_tokens = ( { token = \"reg/token+web=\"\"000\"; services = [ "
		"\"web\", \"api.v2\" ]; } );\n"
		"};\n",
		&cfg);
	assert_true(cfg.cluster.enabled);
	assert_int_equal(cfg.cluster.id, 2);
	assert_true(cfg.cluster.cluster_id == 0xfc01);
	assert_string_equal(cfg.cluster.data_dir, "/tmp/fc");
	assert_false(cfg.cluster.bootstrap);
	/* DESIGN.md's timing defaults */
	assert_int_equal(cfg.cluster.tick_ms, 10);
	assert_int_equal(cfg.cluster.heartbeat_ms, 50);
	assert_int_equal(cfg.cluster.election_min_ms, 150);
	assert_int_equal(cfg.cluster.snapshot_every, 10000);
	assert_int_equal(cfg.cluster.n_peers, 3);
	assert_false(config_peer_is_self(&cfg, 0));
	assert_true(config_peer_is_self(&cfg, 1));
	assert_false(config_peer_is_self(&cfg, 2));
	assert_false(config_peer_is_self(&cfg, 3));
	assert_string_equal(cfg.cluster.peers[2].raft, "[::1]:7003");
	assert_int_equal(cfg.cluster.n_admin_tokens, 1);
	assert_int_equal(cfg.cluster.n_reg_tokens, 1);
	assert_string_equal(cfg.cluster.reg_tokens[0].token, "reg/token+web=000");
	assert_int_equal(cfg.cluster.reg_tokens[0].n_services, 2);
	assert_string_equal(cfg.cluster.reg_tokens[0].services[1], "api.v2");

	/* the dump carries the section and loads back equal */
	f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(config_dump(&cfg, f), 0);
	fclose(f);
	load_ok(text, &b);
	assert_configs_equal(&cfg, &b);
	assert_true(b.cluster.enabled);
	assert_int_equal(b.cluster.id, cfg.cluster.id);
	assert_true(b.cluster.cluster_id == cfg.cluster.cluster_id);
	assert_string_equal(b.cluster.raft_listen, cfg.cluster.raft_listen);
	assert_string_equal(b.cluster.api_listen, cfg.cluster.api_listen);
	assert_int_equal(b.cluster.n_peers, 3);
	assert_memory_equal(b.cluster.peers, cfg.cluster.peers, 3 * sizeof(*cfg.cluster.peers));
	assert_memory_equal(b.cluster.admin_tokens, cfg.cluster.admin_tokens,
			    sizeof(cfg.cluster.admin_tokens));
	assert_memory_equal(b.cluster.reg_tokens, cfg.cluster.reg_tokens,
			    sizeof(*cfg.cluster.reg_tokens));
	config_free(&b);
	free(text);
	config_free(&cfg);

	/* the smallest cluster: one node, no peers, no tokens */
	load_ok(CL_HEAD "bootstrap = true; heartbeat_ms = 10; election_min_ms = 20; tick_ms = 5; };\n",
		&cfg);
	assert_true(cfg.cluster.bootstrap);
	assert_int_equal(cfg.cluster.n_peers, 0);
	config_free(&cfg);
}

static void test_cluster_errors(void **state)
{
	(void)state;
	expect_error(BASE "cluster = { cluster_id = \"0x1\"; data_dir = \"/d\"; raft_listen = "
			  "\"127.0.0.1:1\"; api_listen = \"127.0.0.1:2\"; };\n",
		     "t.conf:3: cluster.id: missing", NULL);
	expect_error(BASE "cluster = { id = 1; };\n", "cluster.cluster_id: missing", NULL);
	expect_error(CL_HEAD "};\ncluster2 = 1;\n", "t.conf:6: cluster2: unknown setting", NULL);
	expect_error(CL_HEAD "hearbeat_ms = 50; };\n", "t.conf:5: cluster.hearbeat_ms: unknown",
		     "heartbeat_ms");
	expect_error(BASE "cluster = { id = 0; };\n", "cluster.id: 0 is out of range", NULL);
	expect_error(BASE "cluster = { id = 1; cluster_id = \"1\"; data_dir = \"/d\";\n"
			  "raft_listen = 1; api_listen = \"127.0.0.1:2\"; };\n",
		     "t.conf:4: cluster.raft_listen: wrong type", NULL);
	/* addresses: numeric host, port 1..65535, brackets exactly for IPv6 */
	static const char *bad_hostports[] = {
	    "localhost:7001", "127.0.0.1",   "127.0.0.1:",	    "127.0.0.1:0", "127.0.0.1:65536",
	    "127.0.0.1:7a",   "::1:7001",    "[127.0.0.1]:7001", "[::1]7001",   "[::1]:",
	    ":7001",	      "127.0.0.1:123456"};
	for (size_t i = 0; i < sizeof(bad_hostports) / sizeof(bad_hostports[0]); i++) {
		char text[512];
		snprintf(text, sizeof(text),
			 BASE "cluster = { id = 1; cluster_id = \"1\"; data_dir = \"/d\";\n"
			      "raft_listen = \"%s\"; api_listen = \"127.0.0.1:2\"; };\n",
			 bad_hostports[i]);
		expect_error(text, "t.conf:4: cluster.raft_listen:", "not a numeric address and port");
	}
	expect_error(BASE "cluster = { id = 1; cluster_id = \"0x0\"; data_dir = \"/d\";\n"
			  "raft_listen = \"127.0.0.1:1\"; api_listen = \"127.0.0.1:2\"; };\n",
		     "cluster.cluster_id: 0 is reserved", NULL);
	expect_error(BASE "cluster = { id = 1; cluster_id = \"1\"; data_dir = \"/d\";\n"
			  "raft_listen = \"127.0.0.1:1\"; api_listen = \"127.0.0.1:1\"; };\n",
		     "t.conf:4: cluster.api_listen:", "also raft_listen");
	expect_error(BASE "cluster = { id = 1; cluster_id = \"1\"; data_dir = \"\";\n"
			  "raft_listen = \"127.0.0.1:1\"; api_listen = \"127.0.0.1:2\"; };\n",
		     "t.conf:3: cluster.data_dir: too short", NULL);
	/* timing: whole ticks, heartbeat < election, election >= 2 ticks */
	expect_error(CL_HEAD "tick_ms = 20; heartbeat_ms = 10; };\n",
		     "cluster.heartbeat_ms: 10 is shorter than tick_ms 20", NULL);
	expect_error(CL_HEAD "heartbeat_ms = 150; };\n", "cluster.election_min_ms: 150 gives 15",
		     "more than the heartbeat");
	expect_error(CL_HEAD "tick_ms = 100; heartbeat_ms = 100; election_min_ms = 150; };\n",
		     "cluster.election_min_ms", "at least 2 ticks");
	expect_error(CL_HEAD "snapshot_every = 0; };\n", "cluster.snapshot_every: 0 is out of range",
		     NULL);
	/* peers */
	expect_error(CL_HEAD "peers = ( { id = 1; raft = \"127.0.0.1:7001\"; } ); };\n",
		     "cluster.peers.[0].api: missing", NULL);
	expect_error(CL_HEAD "peers = ( { id = 2; raft = \"127.0.0.1:7009\"; api = "
			     "\"127.0.0.1:8002\"; } ); };\n",
		     "t.conf:5: cluster.peers.[0]: id 2 is this node", "raft_listen/api_listen");
	expect_error(CL_HEAD "peers = ( { id = 1; raft = \"127.0.0.1:7002\"; api = "
			     "\"127.0.0.1:8001\"; } ); };\n",
		     "cluster.peers.[0].raft:", "this node's raft_listen");
	expect_error(CL_HEAD "peers = ( { id = 1; raft = \"127.0.0.1:7001\"; api = "
			     "\"127.0.0.1:8002\"; } ); };\n",
		     "cluster.peers.[0].api:", NULL);
	expect_error(CL_HEAD "peers = ( { id = 1; raft = \"127.0.0.1:7001\"; api = "
			     "\"127.0.0.1:8001\"; },\n"
			     "{ id = 1; raft = \"127.0.0.1:7003\"; api = \"127.0.0.1:8003\"; } ); };\n",
		     "t.conf:6: cluster.peers.[1]: id 1 is listed twice (first at line 5", NULL);
	expect_error(CL_HEAD "peers = ( { id = 1; raft = \"127.0.0.1:7001\"; api = "
			     "\"127.0.0.1:8001\"; },\n"
			     "{ id = 3; raft = \"127.0.0.1:8001\"; api = \"127.0.0.1:8003\"; } ); };\n",
		     "cluster.peers.[1]: an address of member 3 is also member 1's", NULL);
	{
		/* 17 members: one more than Raft's configuration holds */
		char text[4096];
		int n = snprintf(text, sizeof(text), "%s", CL_HEAD "peers = (");
		for (int i = 0; i < 16; i++)
			n += snprintf(text + n, sizeof(text) - (size_t)n,
				      "%s{ id = %d; raft = \"10.0.1.%d:1\"; api = \"10.0.2.%d:1\"; }",
				      i ? ", " : "", 10 + i, i, i);
		snprintf(text + n, sizeof(text) - (size_t)n, "); };\n");
		expect_error(text, "cluster.peers: 17 members with this node", "at most 16");
	}
	/* tokens */
	expect_error(CL_HEAD "admin_tokens = [ \"short\" ]; };\n",
		     "t.conf:5: cluster.admin_tokens.[0]: not a usable token", "at least 16");
	expect_error(CL_HEAD "admin_tokens = [ \"has a space in it......\" ]; };\n",
		     "cluster.admin_tokens.[0]: not a usable token", NULL);
	expect_error(CL_HEAD "registration_tokens = ( { token = \"short\"; services = [\"a\"]; } ); };\n",
		     "cluster.registration_tokens.[0].token: too short", NULL);
	expect_error(CL_HEAD "registration_tokens = ( { token = \"0123456789abcdef\"; } ); };\n",
		     "cluster.registration_tokens.[0].services: missing", NULL);
	expect_error(CL_HEAD "registration_tokens = ( { token = \"0123456789abcdef\"; services = "
			     "[]; } ); };\n",
		     "cluster.registration_tokens.[0].services: empty", NULL);
	expect_error(CL_HEAD "registration_tokens = ( { token = \"0123456789abcdef\"; services = "
			     "[\"we b\"]; } ); };\n",
		     "\"we b\" is not a service name", NULL);
	expect_error(CL_HEAD "registration_tokens = ( { token = \"0123456789abcde!\"; services = "
			     "[\"web\"]; } ); };\n",
		     "cluster.registration_tokens.[0].token: has a character not allowed", NULL);
	expect_error(CL_HEAD "admin_tokens = [ \"0123456789abcdef\" ];\n"
			     "registration_tokens = ( { token = \"0123456789abcdef\"; services = "
			     "[\"web\"]; } ); };\n",
		     "t.conf:6: cluster: a token is listed twice (first at line 5", NULL);
}

/* The shipped 3-node cluster: each file loads; the three agree on what must agree. */
static void test_cluster_shipped(void **state)
{
	struct fulcrum_config cfg[3];
	char err[1024], path[64];

	(void)state;
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "conf/cluster/node%d.conf", i + 1);
		int rc = config_load(path, &cfg[i], err, sizeof(err));
		if (rc != 0)
			print_error("%s\n", err);
		assert_int_equal(rc, 0);
		assert_true(cfg[i].cluster.enabled);
		assert_int_equal(cfg[i].cluster.id, (uint64_t)i + 1);
		assert_true(cfg[i].cluster.bootstrap);
		assert_int_equal(cfg[i].cluster.heartbeat_ms, 50);
		assert_int_equal(cfg[i].cluster.election_min_ms, 150);
		assert_int_equal(cfg[i].cluster.n_peers, 3);
	}
	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 3; j++) {
			const struct cfg_cluster *a = &cfg[i].cluster, *b = &cfg[j].cluster;
			assert_true(a->cluster_id == b->cluster_id);
			assert_true(cfg[i].hash_seed == cfg[j].hash_seed);
			assert_memory_equal(a->peers, b->peers, 3 * sizeof(*a->peers));
			if (i != j) {
				assert_string_not_equal(a->data_dir, b->data_dir);
				assert_string_not_equal(a->raft_listen, b->raft_listen);
				assert_string_not_equal(cfg[i].dp.file_prefix, cfg[j].dp.file_prefix);
			}
		}
		/* node i's own entry is where it listens */
		assert_true(config_peer_is_self(&cfg[i], (uint32_t)i));
	}
	for (int i = 0; i < 3; i++)
		config_free(&cfg[i]);
}

static void test_file_errors(void **state)
{
	struct fulcrum_config cfg;
	char err[512];
	char path[] = "/tmp/fulcrum-test-config-XXXXXX";
	int fd;
	FILE *f;

	(void)state;
	assert_int_equal(config_load("conf/does-not-exist.conf", &cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "conf/does-not-exist.conf: cannot open"));
	assert_null(cfg.services);

	/* messages from a file name it, with lines */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("dataplane = {\n  port = { devargs = \"x\"; };\n  burst = 0;\n};\n", f);
	fclose(f);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":3: dataplane.burst: 0 is out of range"));
	unlink(path);

	/* a tiny error buffer truncates, never overflows */
	{
		char small[8];
		memset(small, 'x', sizeof(small));
		assert_int_equal(
		    config_load_string("node = 1;", "t.conf", &cfg, small, sizeof(small)), -EINVAL);
		assert_int_equal(small[7], '\0');
		assert_int_equal(config_load_string("node = 1;", "t.conf", &cfg, NULL, 0), -EINVAL);
	}
}

/* A big config loads quickly and frees fully (ASan checks the latter). */
static void test_many_services(void **state)
{
	const unsigned ns = 200, nb = 64;
	size_t cap = 1u << 21, n = 0;
	char *text = malloc(cap);
	struct fulcrum_config cfg;

	(void)state;
	assert_non_null(text);
	n += (size_t)snprintf(text + n, cap - n, BASE "services = (\n");
	for (unsigned i = 0; i < ns; i++) {
		n += (size_t)snprintf(text + n, cap - n,
				      "%s{ name = \"s%u\"; vip = \"10.1.%u.%u\"; port = %u; "
				      "table_size = 6553;\n backends = (",
				      i ? ",\n" : "", i, i / 250, i % 250 + 1, 1000 + i);
		for (unsigned k = 0; k < nb; k++)
			n += (size_t)snprintf(
			    text + n, cap - n,
			    "%s{ address = \"10.2.%u.%u\"; port = %u; weight = %u; }",
			    k ? ", " : "", k, i % 200 + 1, 8000 + k % 3, k % 5);
		n += (size_t)snprintf(text + n, cap - n, "); }");
		assert_true(n < cap);
	}
	n += (size_t)snprintf(text + n, cap - n, ");\n");
	assert_true(n < cap);
	load_ok(text, &cfg);
	assert_int_equal(cfg.n_services, ns);
	assert_int_equal(cfg.services[ns - 1].n_backends, nb);
	assert_int_equal(cfg.services[ns - 1].backends[nb - 1].weight, (nb - 1) % 5);
	config_free(&cfg);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shipped_matches_lab),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_defaults_services),
	    cmocka_unit_test(test_seed_forms),
	    cmocka_unit_test(test_syntax_and_lexical),
	    cmocka_unit_test(test_unknown_settings),
	    cmocka_unit_test(test_type_errors),
	    cmocka_unit_test(test_range_errors),
	    cmocka_unit_test(test_address_errors),
	    cmocka_unit_test(test_enum_errors),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_service_cross_checks),
	    cmocka_unit_test(test_dataplane_cross_checks),
	    cmocka_unit_test(test_uid_stability),
	    cmocka_unit_test(test_uid_collision_detected),
	    cmocka_unit_test(test_to_spec_builds),
	    cmocka_unit_test(test_to_spec_static_neighbours_and_empty),
	    cmocka_unit_test(test_dump_roundtrip),
	    cmocka_unit_test(test_docs_in_step),
	    cmocka_unit_test(test_docs_examples_load),
	    cmocka_unit_test(test_file_errors),
	    cmocka_unit_test(test_many_services),
	    cmocka_unit_test(test_cluster_absent),
	    cmocka_unit_test(test_cluster_loads),
	    cmocka_unit_test(test_cluster_errors),
	    cmocka_unit_test(test_cluster_shipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
