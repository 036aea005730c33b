/* YAML trees: shapes, positions, bounds and the errors that name a place. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/yaml.h"

static int parse(const char *text, struct zt_yaml_docs *d, char *err)
{
	return zt_yaml_parse("t.yaml", text, strlen(text), d, err, 256);
}

START_TEST(yaml_parses_multi_document_manifests_with_positions)
{
	struct zt_yaml_docs d;
	char err[256] = "";
	const char *text = "kind: Pod\n"
	                   "metadata:\n"
	                   "  name: a\n"
	                   "  labels: {app: x, \"v\": '1'}\n"
	                   "---\n"
	                   "kind: Service\n"
	                   "spec:\n"
	                   "  ports:\n"
	                   "  - port: 80\n"
	                   "  - port: 0x10\n";
	ck_assert_int_eq(parse(text, &d, err), 0);
	ck_assert_uint_eq(d.n, 2);
	ck_assert_str_eq(d.name, "t.yaml");
	const struct zt_yaml *pod = d.docs[0];
	ck_assert_str_eq(zt_yaml_str(zt_yaml_get(pod, "kind")), "Pod");
	const struct zt_yaml *labels = zt_yaml_get(zt_yaml_get(pod, "metadata"), "labels");
	ck_assert_uint_eq(labels->n, 2);
	ck_assert_str_eq(zt_yaml_str(zt_yaml_key(labels, 1)), "v");
	ck_assert_str_eq(zt_yaml_str(zt_yaml_val(labels, 1)), "1");
	ck_assert(!zt_yaml_val(labels, 1)->plain);
	ck_assert_uint_eq(labels->line, 4);
	const struct zt_yaml *ports = zt_yaml_get(zt_yaml_get(d.docs[1], "spec"), "ports");
	ck_assert_str_eq(zt_yaml_type_name(ports), "sequence");
	int64_t v;
	ck_assert_int_eq(zt_yaml_int(zt_yaml_get(zt_yaml_at(ports, 1), "port"), 0, 65535, &v), 0);
	ck_assert_int_eq(v, 16);
	ck_assert_uint_eq(zt_yaml_at(ports, 1)->line, 10);
	ck_assert_ptr_null(zt_yaml_at(ports, 2));
	ck_assert_ptr_null(zt_yaml_get(ports, "port"));
	zt_yaml_docs_clear(&d);
}
END_TEST

START_TEST(yaml_nulls_bools_and_ints)
{
	struct zt_yaml_docs d;
	char err[256];
	ck_assert_int_eq(
	        parse("a: ~\nb: null\nc: 'null'\nd: true\ne: yes\nf: 70000\ng: x1\nh:\n", &d, err),
	        0);
	const struct zt_yaml *m = d.docs[0];
	ck_assert(zt_yaml_is_null(zt_yaml_get(m, "a")));
	ck_assert(zt_yaml_is_null(zt_yaml_get(m, "b")));
	ck_assert(zt_yaml_is_null(zt_yaml_get(m, "h")));
	ck_assert(zt_yaml_is_null(zt_yaml_get(m, "missing")));
	ck_assert_str_eq(zt_yaml_str(zt_yaml_get(m, "c")), "null");
	bool b = false;
	ck_assert_int_eq(zt_yaml_bool(zt_yaml_get(m, "d"), &b), 0);
	ck_assert(b);
	ck_assert_int_eq(zt_yaml_bool(zt_yaml_get(m, "e"), &b), ZT_E_PARSE);
	int64_t v;
	ck_assert_int_eq(zt_yaml_int(zt_yaml_get(m, "f"), 0, 65535, &v), ZT_E_RANGE);
	ck_assert_int_eq(zt_yaml_int(zt_yaml_get(m, "g"), 0, 65535, &v), ZT_E_PARSE);
	ck_assert_int_eq(zt_yaml_int(zt_yaml_get(m, "a"), 0, 65535, &v), ZT_E_PARSE);
	ck_assert_int_eq(zt_yaml_int(m, 0, 65535, &v), ZT_E_PARSE);
	zt_yaml_docs_clear(&d);
}
END_TEST

START_TEST(yaml_empty_documents_are_null)
{
	struct zt_yaml_docs d;
	char err[256];
	ck_assert_int_eq(parse("---\n---\na: 1\n", &d, err), 0);
	ck_assert_uint_eq(d.n, 2);
	ck_assert(zt_yaml_is_null(d.docs[0]));
	zt_yaml_docs_clear(&d);
	ck_assert_int_eq(parse("", &d, err), 0);
	ck_assert_uint_eq(d.n, 0);
	zt_yaml_docs_clear(&d);
}
END_TEST

START_TEST(yaml_syntax_error_names_file_line_and_column)
{
	struct zt_yaml_docs d;
	char err[256];
	ck_assert_int_eq(parse("a: 1\nb: [1, 2\nc: 3\n", &d, err), ZT_E_PARSE);
	ck_assert_msg(!strncmp(err, "t.yaml:", 7), "%s", err);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_ptr_null(d.docs);
	ck_assert_int_eq(parse("a: 1\n  b: 2\n", &d, err), ZT_E_PARSE);
	ck_assert_msg(strstr(err, "t.yaml:2:"), "%s", err);
}
END_TEST

START_TEST(yaml_rejects_duplicate_keys_and_aliases)
{
	struct zt_yaml_docs d;
	char err[256];
	ck_assert_int_eq(parse("a: 1\nb: 2\na: 3\n", &d, err), ZT_E_PARSE);
	ck_assert_str_eq(err, "t.yaml:3:1: duplicate key \"a\"");
	ck_assert_int_eq(parse("x: &A {k: v}\ny: *A\n", &d, err), ZT_E_PARSE);
	ck_assert_msg(strstr(err, "t.yaml:2:4: aliases"), "%s", err);
	/* An alias where a value is awaited leaves a dangling key: freed without leaks. */
	ck_assert_int_eq(parse("m:\n  k: *A\n", &d, err), ZT_E_PARSE);
}
END_TEST

START_TEST(yaml_finds_duplicate_keys_in_large_and_nested_mappings)
{
	struct zt_yaml_docs d;
	char err[256];
	size_t cap = 100000 * 16, len = 0;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	/* 100k distinct keys (the hash index grows many times), then one repeat of key 777. */
	len += (size_t)snprintf(text + len, cap - len, "outer:\n  inner: {a: 1, b: 2, a: 3}\n");
	ck_assert_int_eq(zt_yaml_parse("t.yaml", text, len, &d, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_str_eq(err, "t.yaml:2:23: duplicate key \"a\"");
	len = 0;
	for (int i = 0; i < 100000; i++)
		len += (size_t)snprintf(text + len, cap - len, "k%d: %d\n", i, i);
	ck_assert_int_eq(zt_yaml_parse("t.yaml", text, len, &d, err, sizeof(err)), 0);
	ck_assert_uint_eq(d.docs[0]->n, 100000);
	ck_assert_str_eq(zt_yaml_str(zt_yaml_get(d.docs[0], "k99999")), "99999");
	zt_yaml_docs_clear(&d);
	len += (size_t)snprintf(text + len, cap - len, "k777: again\n");
	ck_assert_int_eq(zt_yaml_parse("t.yaml", text, len, &d, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_str_eq(err, "t.yaml:100001:1: duplicate key \"k777\"");
	free(text);
}
END_TEST

START_TEST(yaml_bounds_depth_and_size)
{
	struct zt_yaml_docs d;
	char err[256];
	char deep[ZT_YAML_MAX_DEPTH * 2 + 8];
	size_t n = 0;
	for (int i = 0; i <= ZT_YAML_MAX_DEPTH; i++)
		deep[n++] = '[';
	deep[n] = '\0';
	ck_assert_int_eq(parse(deep, &d, err), ZT_E_TOOBIG);
	ck_assert_msg(strstr(err, "nested deeper"), "%s", err);
	ck_assert_int_eq(zt_yaml_parse("big", "a", (size_t)ZT_YAML_MAX_INPUT + 1, &d, err, 256),
	                 ZT_E_TOOBIG);
}
END_TEST

START_TEST(yaml_load_file_reads_and_reports_missing_files)
{
	char path[] = "/tmp/zt-yaml-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char text[] = "kind: Namespace\nmetadata: {name: demo}\n";
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (int)sizeof(text) - 1);
	close(fd);
	struct zt_yaml_docs d;
	char err[256];
	ck_assert_int_eq(zt_yaml_load_file(path, &d, err, sizeof(err)), 0);
	ck_assert_str_eq(d.name, path);
	ck_assert_str_eq(zt_yaml_str(zt_yaml_get(zt_yaml_get(d.docs[0], "metadata"), "name")),
	                 "demo");
	zt_yaml_docs_clear(&d);
	unlink(path);
	ck_assert_int_lt(zt_yaml_load_file(path, &d, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "No such file"), "%s", err);
	ck_assert_int_eq(zt_yaml_load_file("/tmp", &d, err, sizeof(err)), ZT_E_PARSE);
}
END_TEST

START_TEST(yaml_reader_names_object_path_and_field_in_errors)
{
	struct zt_yaml_docs d;
	struct zt_yaml_rd r;
	char err[256] = "", perr[256];
	const struct zt_yaml *spec = NULL, *seq = NULL;
	const char *str = "unset";
	bool b = true;
	int64_t v = 7;

	ck_assert_int_eq(parse("spec:\n  name: web\n  up: maybe\n  port: 70000\n"
	                       "  list: [a]\n  colour: red\n",
	                       &d, perr),
	                 0);
	zt_yaml_rd_init(&r, "m.yaml", err, sizeof(err), false);
	snprintf(r.obj, sizeof(r.obj), "Pod default/web");
	ck_assert_int_eq(zt_yaml_rd_map(&r, d.docs[0], "spec", &spec), 0);
	ck_assert_ptr_nonnull(spec);
	zt_yaml_rd_enter(&r, "spec");
	ck_assert_int_eq(zt_yaml_rd_str(&r, spec, "name", true, &str), 0);
	ck_assert_str_eq(str, "web");
	/* Not given: nothing changes, unless required. */
	ck_assert_int_eq(zt_yaml_rd_str(&r, spec, "absent", false, &str), 0);
	ck_assert_ptr_null(str);
	ck_assert_int_eq(zt_yaml_rd_bool(&r, spec, "absent", &b), 0);
	ck_assert(b);
	ck_assert_int_eq(zt_yaml_rd_str(&r, spec, "absent", true, &str), ZT_E_PARSE);
	ck_assert_str_eq(err, "m.yaml:2: Pod default/web: spec.absent: required");
	ck_assert_int_eq(zt_yaml_rd_bool(&r, spec, "up", &b), ZT_E_PARSE);
	ck_assert_str_eq(err, "m.yaml:3: Pod default/web: spec.up: expected true or false, got "
	                      "\"maybe\"");
	ck_assert_int_eq(zt_yaml_rd_int(&r, spec, "port", 1, 65535, &v), ZT_E_RANGE);
	ck_assert_int_eq(v, 7);
	ck_assert_str_eq(err, "m.yaml:4: Pod default/web: spec.port: expected an integer "
	                      "1..65535, got \"70000\"");
	ck_assert_int_eq(zt_yaml_rd_map(&r, spec, "list", &seq), ZT_E_PARSE);
	ck_assert_str_eq(err, "m.yaml:5: Pod default/web: spec.list: expected a mapping, got "
	                      "sequence");
	ck_assert_int_eq(zt_yaml_rd_seq(&r, spec, "list", &seq), 0);
	ck_assert_uint_eq(seq->n, 1);
	/* The path is back to "spec" after each failure; columns on request. */
	r.columns = true;
	ck_assert_int_eq(zt_yaml_rd_only_keys(&r, spec,
	                                      (const char *const[]){"name", "up", "port", "list",
	                                                            NULL}),
	                 ZT_E_PARSE);
	ck_assert_str_eq(err, "m.yaml:6:3: Pod default/web: spec: unknown field \"colour\"");
	zt_yaml_docs_clear(&d);
}
END_TEST

START_TEST(yaml_reader_refuses_a_string_with_a_nul_byte)
{
	struct zt_yaml_docs d;
	struct zt_yaml_rd r;
	char err[256] = "", perr[256];
	const char *str;

	ck_assert_int_eq(parse("name: \"a\\0b\"\n", &d, perr), 0);
	zt_yaml_rd_init(&r, "f.yaml", err, sizeof(err), true);
	ck_assert_int_eq(zt_yaml_rd_str(&r, d.docs[0], "name", false, &str), ZT_E_PARSE);
	ck_assert_ptr_null(str);
	ck_assert_str_eq(err, "f.yaml:1:7: name: contains a NUL byte");
	zt_yaml_docs_clear(&d);
}
END_TEST

/* ---- streaming ---------------------------------------------------------------------------- */

static char *temp_yaml(const char *text)
{
	char *path = strdup("/tmp/zt-yaml-stream-XXXXXX");
	ck_assert_ptr_nonnull(path);
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	return path;
}

struct seen {
	size_t n;
	char names[8][16];
	size_t stop_at; /* return ZT_E_RANGE for this index (SIZE_MAX: never) */
};

static int on_doc(void *arg, const struct zt_yaml *doc, size_t index)
{
	struct seen *s = arg;
	ck_assert_uint_eq(index, s->n);
	const char *name = zt_yaml_str(zt_yaml_get(doc, "name"));
	snprintf(s->names[s->n++ % 8], 16, "%s", name ? name : "-");
	return index == s->stop_at ? ZT_E_RANGE : 0;
}

START_TEST(yaml_stream_hands_over_each_document_in_turn)
{
	char *path = temp_yaml("name: a\n---\n---\nname: b\nlist: [1, 2, 3]\n---\nname: c\n");
	struct zt_yaml_limits lim = {.max_bytes = 1024, .max_nodes = 9};
	struct seen s = {.stop_at = SIZE_MAX};
	char err[256] = "";
	/* 4 documents of at most 9 nodes each, 17 in all: the node bound is per document. */
	ck_assert_msg(zt_yaml_stream_file(path, &lim, on_doc, &s, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(s.n, 4);
	ck_assert_str_eq(s.names[0], "a");
	ck_assert_str_eq(s.names[1], "-"); /* an empty document: a null scalar */
	ck_assert_str_eq(s.names[2], "b");
	ck_assert_str_eq(s.names[3], "c");
	/* A callback's error stops the stream and is returned. */
	s = (struct seen){.stop_at = 2};
	ck_assert_int_eq(zt_yaml_stream_file(path, &lim, on_doc, &s, err, sizeof(err)), ZT_E_RANGE);
	ck_assert_uint_eq(s.n, 3);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(yaml_stream_errors_name_file_line_and_the_bound)
{
	char *path = temp_yaml("name: a\n---\nname: b\nlist: [1, 2, 3, 4, 5, 6, 7, 8]\n---\nname: [\n");
	struct zt_yaml_limits lim = {.max_bytes = 1024, .max_nodes = 100};
	struct seen s = {.stop_at = SIZE_MAX};
	char err[256] = "", want[512];
	/* A syntax error in the third document: the first two were handed over already. */
	ck_assert_int_eq(zt_yaml_stream_file(path, &lim, on_doc, &s, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_uint_eq(s.n, 2);
	snprintf(want, sizeof(want), "%s:7:1:", path);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "%s", err);
	/* Too many nodes in the second document, with the caller's hint. */
	lim = (struct zt_yaml_limits){.max_bytes = 1024, .max_nodes = 8, .nodes_hint = " (hint)"};
	s = (struct seen){.stop_at = SIZE_MAX};
	ck_assert_int_eq(zt_yaml_stream_file(path, &lim, on_doc, &s, err, sizeof(err)), ZT_E_TOOBIG);
	ck_assert_uint_eq(s.n, 1);
	snprintf(want, sizeof(want), "%s:4:", path);
	ck_assert_msg(!strncmp(err, want, strlen(want)) && strstr(err, ": more than 8 nodes (hint)"),
	              "%s", err);
	/* A file over the byte bound is refused before parsing. */
	lim = (struct zt_yaml_limits){.max_bytes = 16, .max_nodes = 100, .bytes_hint = " (b)"};
	s = (struct seen){.stop_at = SIZE_MAX};
	ck_assert_int_eq(zt_yaml_stream_file(path, &lim, on_doc, &s, err, sizeof(err)), ZT_E_TOOBIG);
	ck_assert_uint_eq(s.n, 0);
	snprintf(want, sizeof(want), "%s: larger than 16 bytes (b)", path);
	ck_assert_str_eq(err, want);
	unlink(path);
	ck_assert_int_eq(zt_yaml_stream_file(path, &lim, on_doc, &s, err, sizeof(err)), -ENOENT);
	ck_assert_int_eq(zt_yaml_stream_file("/tmp", &lim, on_doc, &s, err, sizeof(err)), ZT_E_PARSE);
	ck_assert_str_eq(err, "/tmp: not a regular file");
	free(path);
}
END_TEST

Suite *yaml_suite(void);
Suite *yaml_suite(void)
{
	Suite *s = suite_create("yaml");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, yaml_parses_multi_document_manifests_with_positions);
	tcase_add_test(tc, yaml_nulls_bools_and_ints);
	tcase_add_test(tc, yaml_empty_documents_are_null);
	tcase_add_test(tc, yaml_syntax_error_names_file_line_and_column);
	tcase_add_test(tc, yaml_rejects_duplicate_keys_and_aliases);
	tcase_add_test(tc, yaml_finds_duplicate_keys_in_large_and_nested_mappings);
	tcase_add_test(tc, yaml_bounds_depth_and_size);
	tcase_add_test(tc, yaml_load_file_reads_and_reports_missing_files);
	tcase_add_test(tc, yaml_reader_names_object_path_and_field_in_errors);
	tcase_add_test(tc, yaml_reader_refuses_a_string_with_a_nul_byte);
	tcase_add_test(tc, yaml_stream_hands_over_each_document_in_turn);
	tcase_add_test(tc, yaml_stream_errors_name_file_line_and_the_bound);
	suite_add_tcase(s, tc);
	return s;
}
