"""Tests of Tests/Support/redshift/redshift_dialect.py against the running local PostgreSQL and moto S3.

Run: python3 -m unittest discover -s Tests/Support/redshift -p 'test_redshift_dialect.py'
Connection settings come from the environment (POSTGRES_*, S3_ENDPOINT) or, when missing, from
$HUSKIMO_STACK_DIR/stack.env (default .local/stack/stack.env). Each test starts from its own tables
and bucket objects; the proxy runs on a free port for the whole module. Every rule is shown both
refusing and accepting (a Redshift-valid neighbour of the refused statement).
"""

import gzip
import io
import json
import os
import shlex
import socket
import struct
import subprocess
import sys
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import redshift_dialect as rd  # noqa: E402  (for its SCRAM client only)


def load_env():
    env = dict(os.environ)
    if "POSTGRES_PORT" in env and "S3_ENDPOINT" in env:
        return env
    path = os.path.join(env.get("HUSKIMO_STACK_DIR", os.path.join(HERE, "..", "..", "..", ".local", "stack")), "stack.env")
    with open(path) as f:
        for line in f:
            if line.startswith("export "):
                key, _, value = line[7:].strip().partition("=")
                env.setdefault(key, shlex.split(value)[0] if value else "")
    return env


ENV = load_env()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgError(Exception):
    def __init__(self, fields):
        super().__init__(f"{fields.get('C')}: {fields.get('M')}")
        self.fields = fields
        self.code, self.message = fields.get("C"), fields.get("M", "")


class Result:
    def __init__(self):
        self.rows, self.tag, self.error, self.status, self.notices, self.columns = [], None, None, None, [], []


class Client:
    """A tiny PostgreSQL wire client: simple queries and unnamed extended-protocol statements."""

    def __init__(self, port, ssl_request=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if ssl_request:
            self.sock.sendall(struct.pack("!II", 8, 80877103))
            assert self.recv_exact(1) == b"N"
        user, password = ENV["POSTGRES_USER"], ENV["POSTGRES_PASSWORD"]
        params = b"user\0" + user.encode() + b"\0database\0" + ENV["POSTGRES_DB"].encode() + b"\0\0"
        body = struct.pack("!I", 196608) + params
        self.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        scram = None
        while True:
            t, body = self.read()
            if t == b"R":
                code = struct.unpack_from("!I", body)[0]
                if code == 10:
                    scram = rd.ScramClient(password)
                    first = scram.first()
                    self.send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
                elif code == 11:
                    self.send(b"p", scram.final(body[4:]))
                elif code == 5:
                    import hashlib
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                    self.send(b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0")
                elif code == 3:
                    self.send(b"p", password.encode() + b"\0")
            elif t == b"E":
                raise PgError(rd.parse_error_fields(body))
            elif t == b"Z":
                self.status = body
                return

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def read(self):
        header = self.recv_exact(5)
        return header[:1], self.recv_exact(struct.unpack("!I", header[1:])[0] - 4)

    def send(self, t, body=b""):
        self.sock.sendall(rd.frame(t, body))

    def collect(self):
        r = Result()
        while True:
            t, body = self.read()
            if t == b"T":
                n = struct.unpack_from("!h", body)[0]
                r.columns = [c.decode() for c in body[2:].split(b"\0")[:1]] if n else []
                names, pos = [], 2
                for _ in range(n):
                    end = body.index(b"\0", pos)
                    names.append(body[pos:end].decode())
                    pos = end + 1 + 18
                r.columns = names
            elif t == b"D":
                r.rows.append(tuple(rd.data_row_values(body)))
            elif t == b"C":
                r.tag = body.rstrip(b"\0").decode()
            elif t == b"E":
                r.error = PgError(rd.parse_error_fields(body))
            elif t == b"N":
                r.notices.append(rd.parse_error_fields(body).get("M"))
            elif t == b"Z":
                r.status = body.decode()
                self.status = body
                return r

    def query(self, sql, check=True):
        self.send(b"Q", sql.encode() + b"\0")
        r = self.collect()
        if check and r.error:
            raise r.error
        return r

    def execute(self, sql, params=(), check=True):
        """Parse/Bind/Describe/Execute/Sync with text parameters, as libpq's PQexecParams does."""
        self.send(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
        bind = b"\0\0" + struct.pack("!h", 0) + struct.pack("!h", len(params))
        for p in params:
            bind += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p.encode())) + p.encode()
        bind += struct.pack("!h", 0)
        self.send(b"B", bind)
        self.send(b"D", b"P\0")
        self.send(b"E", b"\0" + struct.pack("!i", 0))
        self.send(b"S")
        r = self.collect()
        if check and r.error:
            raise r.error
        return r

    def close(self):
        try:
            self.send(b"X")
        finally:
            self.sock.close()


class ProxyTestCase(unittest.TestCase):
    proc = None

    @classmethod
    def setUpClass(cls):
        import boto3
        cls.port = free_port()
        env = dict(ENV, REDSHIFT_DIALECT_PG_USER=ENV["POSTGRES_USER"], REDSHIFT_DIALECT_PG_PASSWORD=ENV["POSTGRES_PASSWORD"])
        cls.log = open(os.path.join("/tmp", f"redshift_dialect_test_{cls.port}.log"), "w")
        cls.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "redshift_dialect.py"), "--listen-port", str(cls.port),
             "--pg-host", ENV.get("POSTGRES_HOSTNAME", "127.0.0.1"), "--pg-port", ENV["POSTGRES_PORT"],
             "--s3-endpoint", ENV["S3_ENDPOINT"], "--s3-region", ENV.get("S3_REGION", "us-east-1")],
            env=env, stdout=cls.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", cls.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        cls.s3 = boto3.client("s3", endpoint_url=ENV["S3_ENDPOINT"], region_name=ENV.get("S3_REGION", "us-east-1"),
                              aws_access_key_id="test", aws_secret_access_key="test")
        cls.bucket = "rsd-test-" + uuid.uuid4().hex[:12]
        cls.s3.create_bucket(Bucket=cls.bucket)
        cls.schema = "rsd_test_" + uuid.uuid4().hex[:8]

    @classmethod
    def tearDownClass(cls):
        try:
            c = Client(cls.port)
            c.query(f'DROP SCHEMA IF EXISTS "{cls.schema}" CASCADE')
            c.close()
        finally:
            cls.proc.terminate()
            cls.proc.wait(10)
            cls.log.close()

    def setUp(self):
        self.c = Client(self.port)
        self.c.query(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        self.table = f'"{self.schema}".t_{uuid.uuid4().hex[:8]}'

    def tearDown(self):
        self.c.close()

    # ---- helpers
    def put(self, key, text, gz=True):
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(data) if gz else data)
        return f"s3://{self.bucket}/{key}"

    def manifest(self, key, urls, mandatory=True):
        body = json.dumps({"entries": [{"url": u, "mandatory": mandatory} for u in urls]})
        return self.put(key, body, gz=False)

    def copy_sql(self, columns, source, options="MANIFEST GZIP DELIMITER '\\t' ESCAPE"):
        return (f"COPY {self.table} ({columns}) FROM '{source}' IAM_ROLE 'arn:aws:iam::123456789012:role/loader' "
                f"{options} REGION 'eu-west-1' TIMEFORMAT 'YYYY-MM-DD HH:MI:SS' MAXERROR 0 COMPUPDATE OFF STATUPDATE OFF")

    def load_errors(self, filename_like):
        rows = self.c.query("SELECT trim(colname), err_code, trim(err_reason), trim(raw_field_value), line_number "
                            f"FROM public.stl_load_errors WHERE filename LIKE '{filename_like}%' ORDER BY line_number").rows
        return [(col, int(code), reason, raw, int(line)) for col, code, reason, raw, line in rows]

    def assertRefused(self, sql, rule, code="0A000"):
        for run in (self.c.query, self.c.execute):
            r = run(sql, check=False)
            self.assertIsNotNone(r.error, f"{run.__name__} accepted: {sql}")
            self.assertEqual(r.error.code, code, r.error.message)
            self.assertIn(f"rule {rule}", r.error.message)
            self.assertEqual(r.status, "I")

    def assertAccepted(self, sql):
        for run in (self.c.query, self.c.execute):
            r = run(sql, check=False)
            self.assertIsNone(r.error, f"{run.__name__} refused {sql}: {r.error}")


class RuleTests(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.c.query(f"CREATE TABLE {self.table} (id bigint, name varchar(10), n bigint)")

    def test_array(self):
        self.assertRefused("SELECT ARRAY[1, 2]", "array")
        self.assertRefused(f"SELECT id FROM {self.table} WHERE id = ANY('{{1,2}}')", "array")
        self.assertRefused("SELECT CAST('{1}' AS int[])", "array")
        self.assertRefused("SELECT '{1}'::bigint[]", "array")
        self.assertRefused("SELECT ('{1,2}'::varchar(9))[1]", "array")
        self.assertAccepted("SELECT 'ARRAY[1]' AS text_not_array, 1::bigint")
        self.assertAccepted(f"SELECT id FROM {self.table} WHERE id = ANY (SELECT n FROM {self.table})")
        self.assertAccepted(f"SELECT id FROM {self.table} UNION ALL (SELECT n FROM {self.table})")

    def test_any_parameter_extended(self):
        r = self.c.execute(f"SELECT id FROM {self.table} WHERE id = ANY($1::bigint[])", ["{1,2}"], check=False)
        self.assertEqual(r.error.code, "0A000")
        r = self.c.execute(f"SELECT count(*) FROM {self.table} WHERE id IN ($1, $2)", ["1", "2"])
        self.assertEqual(r.rows, [("0",)])

    def test_aggregate_filter(self):
        self.assertRefused(f"SELECT count(*) FILTER (WHERE id > 1) FROM {self.table}", "aggregate-filter")
        self.assertAccepted(f"SELECT count(CASE WHEN id > 1 THEN 1 END) FROM {self.table}")

    def test_copy_stdin(self):
        self.assertRefused(f"COPY {self.table} FROM STDIN", "copy-stdin")
        self.assertRefused(f"COPY {self.table} TO STDOUT", "copy-stdin")
        # accepted form: COPY FROM 's3://' (see CopyTests); here a comment mentioning STDIN is fine
        self.assertAccepted(f"SELECT 1 -- COPY t FROM STDIN")

    def test_on_conflict(self):
        self.assertRefused(f"INSERT INTO {self.table} VALUES (1, 'a', 1) ON CONFLICT DO NOTHING", "on-conflict")
        self.assertAccepted(f"INSERT INTO {self.table} VALUES (1, 'conflict', 1)")

    def test_returning(self):
        self.assertRefused(f"INSERT INTO {self.table} VALUES (1, 'a', 1) RETURNING id", "returning")
        self.assertRefused(f"DELETE FROM {self.table} RETURNING *", "returning")
        self.assertAccepted(f'SELECT 1 AS "returning"')

    def test_advisory_lock(self):
        self.assertRefused("SELECT pg_advisory_xact_lock(42)", "advisory-lock")
        self.assertRefused("SELECT pg_try_advisory_lock(42)", "advisory-lock")
        self.assertAccepted(f"SELECT 'pg_advisory_lock(1)' /* pg_advisory_lock(1) */")

    def test_create_index(self):
        self.assertRefused(f"CREATE INDEX i_{uuid.uuid4().hex[:6]} ON {self.table} (id)", "create-index")
        self.assertRefused(f"CREATE UNIQUE INDEX i_{uuid.uuid4().hex[:6]} ON {self.table} (id)", "create-index")
        self.assertAccepted(f"CREATE TABLE IF NOT EXISTS {self.table}_x (id bigint) SORTKEY (id)")

    def test_serial(self):
        self.assertRefused(f"CREATE TABLE {self.table}_s (id bigserial, v int)", "serial")
        self.assertRefused(f"ALTER TABLE {self.table} ADD COLUMN s serial", "serial")
        self.assertAccepted(f"CREATE TABLE IF NOT EXISTS {self.table}_s2 (id bigint, serial varchar(3))")
        self.assertAccepted(f"SELECT serial, id FROM {self.table}_s2")

    def test_jsonb(self):
        self.assertRefused(f"CREATE TABLE {self.table}_j (doc jsonb)", "jsonb")
        self.assertRefused("SELECT '{}'::jsonb", "jsonb")
        self.assertAccepted(f"CREATE TABLE IF NOT EXISTS {self.table}_j2 (doc varchar(100))")

    def test_distinct_on(self):
        self.assertRefused(f"SELECT DISTINCT ON (id) id, name FROM {self.table}", "distinct-on")
        self.assertAccepted(f"SELECT DISTINCT id, name FROM {self.table}")
        self.assertAccepted(f"SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY id ORDER BY n) AS rn "
                            f"FROM {self.table}) x WHERE rn = 1")

    def test_is_distinct_from(self):
        self.assertRefused(f"SELECT 1 FROM {self.table} WHERE id IS DISTINCT FROM n", "is-distinct-from")
        self.assertAccepted(f"SELECT 1 FROM {self.table} WHERE id <> n OR (id IS NULL) <> (n IS NULL)")

    def test_unsupported_aggregate(self):
        self.assertRefused(f"SELECT string_agg(name, ',') FROM {self.table}", "unsupported-aggregate")
        self.assertAccepted(f"SELECT count(name), max(name) FROM {self.table}")

    def test_on_commit(self):
        self.assertRefused("CREATE TEMP TABLE tmp_oc (id int) ON COMMIT DROP", "on-commit")
        self.assertAccepted("CREATE TEMP TABLE IF NOT EXISTS tmp_oc2 AS SELECT CAST('' AS varchar(10)) AS k WHERE 1 = 0")

    def test_refusal_fails_transaction_in_both_protocols(self):
        for run in (self.c.query, self.c.execute):
            self.c.query("BEGIN")
            r = run("SELECT ARRAY[1]", check=False)
            self.assertEqual((r.error.code, r.status), ("0A000", "E"))
            r = self.c.query("SELECT 1", check=False)
            self.assertEqual(r.error.code, "25P02")
            self.c.query("ROLLBACK")
            self.assertEqual(self.c.query("SELECT 1").rows, [("1",)])

    def test_pipelined_batch_with_refused_parse(self):
        # first statement forwarded, second refused, one Sync: the client still gets one ReadyForQuery
        for sql in ("SELECT 1", "SELECT ARRAY[1]"):
            self.c.send(b"P", b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))
            self.c.send(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))
            self.c.send(b"E", b"\0" + struct.pack("!i", 0))
        self.c.send(b"S")
        r = self.c.collect()
        self.assertEqual(r.error.code, "0A000")
        self.assertEqual(self.c.query("SELECT 2").rows, [("2",)])


class TranslationTests(ProxyTestCase):
    def test_redshift_ddl_is_translated(self):
        ddl = (f"CREATE TABLE IF NOT EXISTS {self.table} (\n  k varchar(10) NOT NULL ENCODE zstd,\n"
               f"  at timestamp NOT NULL DEFAULT getdate(),\n  PRIMARY KEY (k)\n) DISTSTYLE KEY DISTKEY (k) "
               f"SORTKEY (at, k);\nCREATE OR REPLACE VIEW {self.table}_v AS SELECT k FROM {self.table}")
        self.c.query(ddl)
        self.c.query(f"INSERT INTO {self.table} (k) VALUES ('a'), ('a')")   # Redshift does not enforce PRIMARY KEY
        self.assertEqual(self.c.query(f"SELECT count(*), count(at) FROM {self.table}_v v JOIN {self.table} USING (k)").rows,
                         [("4", "4")])
        # PostgreSQL alone refuses the Redshift attributes: the proxy is what makes them work
        direct = DirectClient()
        r = direct.query(ddl.replace(self.table, self.table + "_direct"), check=False)
        direct.close()
        self.assertEqual(r.error.code, "42601")

    def test_pg_last_copy_count_column_name(self):
        r = self.c.query("SELECT pg_last_copy_count()")
        self.assertEqual((r.columns, r.rows), (["pg_last_copy_count"], [("0",)]))


def DirectClient():
    c = Client.__new__(Client)
    Client.__init__(c, int(ENV["POSTGRES_PORT"]), ssl_request=False)
    return c


HARD_ROWS = [
    # (id, text as Python value); None is NULL
    ("1", "tab\there"), ("2", "line\nfeed"), ("3", "carriage\rreturn"), ("4", "back\\slash"),
    ("5", "looks \\N like null"), ("6", "\\N"), ("7", "emoji 😀👍🏽"), ("8", "中文字符 日本語"),
    ("9", "עברית RTL العربية"), ("10", ""), ("11", None), ("12", "\\t is not a tab"), ("13", "trailing\\"),
]


def staged(value):
    """The project's staged-file encoding: \\N for NULL, backslash escapes TAB, LF and backslash."""
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\\t").replace("\n", "\\\n")


class CopyTests(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.c.query(f"CREATE TABLE {self.table} (channel_name varchar(512) NOT NULL, id bigint, body varchar(200), "
                     f"at timestamp, code varchar(3), price decimal(10, 2), flag boolean) DISTSTYLE EVEN")
        self.prefix = "stage/" + uuid.uuid4().hex[:8]

    def rows_file(self, rows):
        return "".join("\t".join(fields) + "\n" for fields in rows)

    def test_manifest_of_two_gzip_files_round_trips_hard_characters(self):
        lines = [["ch", i, staged(v), "2024-01-02 13:04:05", "abc", "1.50", "t"] for i, v in HARD_ROWS]
        a = self.put(f"{self.prefix}/a.tsv.gz", self.rows_file(lines[:7]))
        b = self.put(f"{self.prefix}/b.tsv.gz", self.rows_file(lines[7:]))
        m = self.manifest(f"{self.prefix}/a.tsv.gz.manifest", [a, b])
        self.c.query("BEGIN")
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag", m))
        self.assertEqual(r.tag, f"COPY {len(HARD_ROWS)}")
        self.assertEqual(self.c.query("SELECT pg_last_copy_count()").rows, [(str(len(HARD_ROWS)),)])
        self.assertEqual(self.c.execute("SELECT pg_last_copy_count()").rows, [(str(len(HARD_ROWS)),)])
        got = self.c.query(f"SELECT id, body, at, price, flag FROM {self.table} ORDER BY id").rows
        self.c.query("COMMIT")
        expected = sorted([(i, v, "2024-01-02 13:04:05", "1.50", "t") for i, v in HARD_ROWS], key=lambda r: int(r[0]))
        self.assertEqual(got, expected)

    def test_varchar_length_is_in_bytes(self):
        # PostgreSQL alone accepts '日本' (2 characters) into varchar(3) ...
        self.c.query(f"INSERT INTO {self.table} (channel_name, code) VALUES ('direct', '日本')")
        # ... Redshift counts bytes (6 > 3) and refuses the row
        src = self.put(f"{self.prefix}/long.tsv.gz", self.rows_file([["ch", "1", "x", "", "abc", "", ""],
                                                                      ["ch", "2", "x", "", "日本", "", ""]]))
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag", src, "GZIP DELIMITER '\\t' ESCAPE"),
                         check=False)
        self.assertEqual(r.error.code, "XX000")
        self.assertEqual(r.error.message, f"Load into table '{self.table.split('.')[1]}' failed.  "
                                          "Check 'stl_load_errors' system table for details.")
        self.assertEqual(self.load_errors(src), [("code", 1204, "String length exceeds DDL length", "日本", 2)])
        self.assertEqual(self.c.query(f"SELECT count(*) FROM {self.table}").rows, [("1",)])   # nothing loaded
        self.assertEqual(self.c.query("SELECT pg_last_copy_count()").rows, [("0",)])
        # 'abc' (3 bytes) and, with TRUNCATECOLUMNS, '日本' cut to '日' (3 bytes) load
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag", src,
                                       "GZIP DELIMITER '\\t' ESCAPE TRUNCATECOLUMNS"))
        self.assertEqual(r.tag, "COPY 2")
        self.assertEqual(self.c.query(f"SELECT code FROM {self.table} WHERE id = 2").rows, [("日",)])

    def test_missing_mandatory_manifest_entry(self):
        a = self.put(f"{self.prefix}/a.gz", self.rows_file([["ch", "1", "x", "", "", "", ""]]))
        missing = f"s3://{self.bucket}/{self.prefix}/missing.gz"
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag",
                                       self.manifest(f"{self.prefix}/m1", [a, missing])), check=False)
        self.assertEqual(r.error.code, "XX000")
        self.assertIn("mandatory", r.error.message)
        # the same entry marked non-mandatory is skipped
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag",
                                       self.manifest(f"{self.prefix}/m2", [a, missing], mandatory=False)))
        self.assertEqual(r.tag, "COPY 1")

    def test_key_prefix_without_manifest(self):
        self.put(f"{self.prefix}/p/1.gz", self.rows_file([["ch", "1", "x", "", "", "", ""]]))
        self.put(f"{self.prefix}/p/2.gz", self.rows_file([["ch", "2", "y", "", "", "", ""]]))
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag",
                                       f"s3://{self.bucket}/{self.prefix}/p/", "GZIP DELIMITER '\\t' ESCAPE"))
        self.assertEqual(r.tag, "COPY 2")
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag",
                                       f"s3://{self.bucket}/{self.prefix}/nothing/", "GZIP DELIMITER '\\t'"), check=False)
        self.assertEqual(r.error.code, "XX000")
        self.assertIn("prefix", r.error.message)

    def test_authorization_exactly_one(self):
        src = self.put(f"{self.prefix}/a.gz", self.rows_file([["ch", "1", "x", "", "", "", ""]]))
        base = f"COPY {self.table} (channel_name, id, body, at, code, price, flag) FROM '{src}' GZIP DELIMITER '\\t' "
        role, keys = "IAM_ROLE 'arn:aws:iam::123456789012:role/loader' ", "ACCESS_KEY_ID 'AKIA' SECRET_ACCESS_KEY 'sec' "
        r = self.c.query(base + role + keys, check=False)
        self.assertEqual(r.error.code, "42601")
        self.assertIn("authorization given twice", r.error.message)
        r = self.c.query(base + keys + "CREDENTIALS 'aws_iam_role=arn:aws:iam::123456789012:role/x'", check=False)
        self.assertIn("authorization given twice", r.error.message)
        r = self.c.query(base, check=False)
        self.assertIn("needs authorization", r.error.message)
        for auth in (role, keys, "CREDENTIALS 'aws_access_key_id=AKIA;aws_secret_access_key=sec'"):
            self.assertEqual(self.c.query(base + auth).tag, "COPY 1")

    def test_unknown_option_is_refused_by_name(self):
        src = self.put(f"{self.prefix}/a.gz", self.rows_file([["ch", "1", "x", "", "", "", ""]]))
        sql = self.copy_sql("channel_name, id, body, at, code, price, flag", src, "GZIP DELIMITER '\\t' ESCAPE")
        r = self.c.query(sql + " FROBNICATE", check=False)
        self.assertEqual(r.error.code, "42601")
        self.assertIn("FROBNICATE", r.error.message)
        r = self.c.query(sql + " CSV", check=False)
        self.assertEqual(r.error.code, "0A000")
        self.assertIn("CSV", r.error.message)
        self.assertEqual(self.c.query(sql + " EMPTYASNULL BLANKSASNULL ACCEPTINVCHARS NULL AS '\\N' "
                                            "DATEFORMAT 'YYYY-MM-DD'").tag, "COPY 1")

    def test_rows_visible_after_commit_gone_after_rollback(self):
        src = self.put(f"{self.prefix}/a.gz", self.rows_file([["ch", "1", "x", "", "", "", ""], ["ch", "2", "y", "", "", "", ""]]))
        sql = self.copy_sql("channel_name, id, body, at, code, price, flag", src, "GZIP DELIMITER '\\t' ESCAPE")
        other = Client(self.port)
        try:
            self.c.query("BEGIN")
            self.assertEqual(self.c.query(sql).tag, "COPY 2")
            self.assertEqual(other.query(f"SELECT count(*) FROM {self.table}").rows, [("0",)])
            self.c.query("COMMIT")
            self.assertEqual(other.query(f"SELECT count(*) FROM {self.table}").rows, [("2",)])
            self.c.query("BEGIN")
            self.c.query(sql)
            self.assertEqual(self.c.query(f"SELECT count(*) FROM {self.table}").rows, [("4",)])
            self.c.query("ROLLBACK")
            self.assertEqual(other.query(f"SELECT count(*) FROM {self.table}").rows, [("2",)])
        finally:
            other.close()

    def test_failed_copy_leaves_transaction_failed_and_records_error(self):
        src = self.put(f"{self.prefix}/bad.gz", self.rows_file([["ch", "1", "x", "", "", "", ""], ["ch", "x1", "y", "", "", "", ""]]))
        self.c.query("BEGIN")
        self.c.query(f"INSERT INTO {self.table} (channel_name, id) VALUES ('before', 0)")
        r = self.c.query(self.copy_sql("channel_name, id, body, at, code, price, flag", src, "GZIP DELIMITER '\\t' ESCAPE"),
                         check=False)
        self.assertEqual((r.error.code, r.status), ("XX000", "E"))
        self.assertEqual(self.c.query("SELECT 1", check=False).error.code, "25P02")
        self.c.query("ROLLBACK")
        self.assertEqual(self.c.query(f"SELECT count(*) FROM {self.table}").rows, [("0",)])
        # the stl_load_errors row survived the rollback (written on a separate connection)
        self.assertEqual(self.load_errors(src), [("id", 1207, "Invalid digit, Value 'x', Pos 0, Type: Long", "x1", 2)])

    def test_maxerror_skips_up_to_n_bad_rows(self):
        src = self.put(f"{self.prefix}/m.gz", self.rows_file([["ch", "1", "x", "", "", "", ""], ["ch", "2", "y", "bad", "", "", ""],
                                                              ["ch", "3", "z", "", "", "", ""]]))
        sql = self.copy_sql("channel_name, id, body, at, code, price, flag", src, "GZIP DELIMITER '\\t' ESCAPE")
        r = self.c.query(sql.replace("MAXERROR 0", "MAXERROR 1"))
        self.assertEqual(r.tag, "COPY 2")
        self.assertTrue(any("could not be loaded" in n for n in r.notices))
        self.assertEqual([e[:2] for e in self.load_errors(src)], [("at", 1206)])
        self.assertEqual(self.c.query(sql, check=False).error.code, "XX000")   # MAXERROR 0: the same file fails

    def test_escape_rules(self):
        # with ESCAPE: backslash-t is the letter t, backslash-TAB is a TAB, \N on the raw field is NULL, \\N is text
        raw = "ch\t1\ta\\tb\\\tc\t\t\t\t\nch\t2\t\\N\t\t\t\t\nch\t3\t\\\\N\t\t\t\t\n"
        src = self.put(f"{self.prefix}/e.gz", raw)
        cols = "channel_name, id, body, at, code, price, flag"
        self.c.query(self.copy_sql(cols, src, "GZIP DELIMITER '\\t' ESCAPE"))
        self.assertEqual(self.c.query(f"SELECT id, body FROM {self.table} ORDER BY id").rows,
                         [("1", "atb\tc"), ("2", None), ("3", "\\N")])
        # without ESCAPE backslashes are data (and backslash-TAB splits the field: wrong field count)
        src2 = self.put(f"{self.prefix}/e2.gz", "ch\t4\ta\\tb\t\t\t\t\n")
        self.c.query(self.copy_sql(cols, src2, "GZIP DELIMITER '\\t'"))
        self.assertEqual(self.c.query(f"SELECT body FROM {self.table} WHERE id = 4").rows, [("a\\tb",)])
        src3 = self.put(f"{self.prefix}/e3.gz", "ch\t5\ta\\\tb\t\t\t\t\n")
        r = self.c.query(self.copy_sql(cols, src3, "GZIP DELIMITER '\\t'"), check=False)
        self.assertEqual(r.error.code, "XX000")
        self.assertEqual([e[1] for e in self.load_errors(src3)], [1216])

    def test_field_count_and_timestamp_and_utf8(self):
        cols = "channel_name, id, body, at, code, price, flag"
        short = self.put(f"{self.prefix}/short.gz", "ch\t1\tx\n")
        self.assertEqual(self.c.query(self.copy_sql(cols, short, "GZIP DELIMITER '\\t'"), check=False).error.code, "XX000")
        self.assertEqual([e[1:3] for e in self.load_errors(short)], [(1214, "Delimiter not found")])
        # HH in a COPY TIMEFORMAT is HH24: 13:04:05 loads; month 13 does not
        ok = self.put(f"{self.prefix}/ts.gz", "ch\t1\tx\t2024-01-02 23:59:59\t\t\t\n")
        self.c.query(self.copy_sql(cols, ok, "GZIP DELIMITER '\\t'"))
        self.assertEqual(self.c.query(f"SELECT at FROM {self.table}").rows, [("2024-01-02 23:59:59",)])
        bad = self.put(f"{self.prefix}/ts2.gz", "ch\t1\tx\t2024-13-02 10:00:00\t\t\t\n")
        self.c.query(self.copy_sql(cols, bad, "GZIP DELIMITER '\\t'"), check=False)
        self.assertEqual([e[1] for e in self.load_errors(bad)], [1206])
        # invalid UTF-8: a load error, unless ACCEPTINVCHARS (replaced by '?', one per byte)
        inv = self.put(f"{self.prefix}/utf.gz", b"ch\t9\tA\xff\xfeB\t\t\t\t\n")
        self.c.query(self.copy_sql(cols, inv, "GZIP DELIMITER '\\t'"), check=False)
        self.assertEqual([e[1] for e in self.load_errors(inv)], [1220])
        self.c.query(self.copy_sql(cols, inv, "GZIP DELIMITER '\\t' ACCEPTINVCHARS"))
        self.assertEqual(self.c.query(f"SELECT body FROM {self.table} WHERE id = 9").rows, [("A??B",)])
        # NOT NULL column given NULL
        nn = self.put(f"{self.prefix}/nn.gz", "\\N\t1\tx\t\t\t\t\n")
        self.c.query(self.copy_sql(cols, nn, "GZIP DELIMITER '\\t'"), check=False)
        self.assertEqual([e[:2] for e in self.load_errors(nn)], [("channel_name", 1213)])

    def test_copy_through_extended_protocol(self):
        src = self.put(f"{self.prefix}/x.gz", self.rows_file([["ch", "1", "x", "", "", "", ""]]))
        r = self.c.execute(self.copy_sql("channel_name, id, body, at, code, price, flag", src, "GZIP DELIMITER '\\t' ESCAPE"))
        self.assertEqual(r.tag, "COPY 1")
        self.assertEqual(self.c.execute("SELECT pg_last_copy_count()").rows, [("1",)])


class RobustnessTests(ProxyTestCase):
    def test_oversized_message_is_refused(self):
        self.c.sock.sendall(b"Q" + struct.pack("!I", rd.MAX_MESSAGE + 100))
        t, body = self.c.read()
        self.assertEqual((t, rd.parse_error_fields(body)["C"]), (b"E", "08P01"))
        other = Client(self.port)
        self.assertEqual(other.query("SELECT 1").rows, [("1",)])
        other.close()

    def test_client_disconnecting_mid_message(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.sendall(struct.pack("!II", 8, 80877103))
        s.recv(1)
        s.sendall(struct.pack("!I", 40) + b"\0\3")     # half a startup packet, then gone
        s.close()
        self.c.sock.sendall(b"Q" + struct.pack("!I", 100) + b"SELECT")   # half a query, then gone
        self.c.sock.close()
        self.c = Client(self.port)
        self.assertEqual(self.c.query("SELECT 1").rows, [("1",)])

    def test_upstream_error_relayed(self):
        r = self.c.query("SELECT * FROM no_such_table_rsd", check=False)
        self.assertEqual((r.error.code, r.status), ("42P01", "I"))


class UnitTests(unittest.TestCase):
    """Pure functions (no services needed)."""

    def test_mask_keeps_lengths_and_hides_literals(self):
        sql = "SELECT 'ARRAY[' , \"ON CONFLICT\", $$RETURNING$$ -- ANY(\n/* DISTINCT ON ( */ 1"
        masked = rd.mask_sql(sql)
        self.assertEqual(len(masked), len(sql))
        self.assertIsNone(rd.check_rules(sql))

    def test_translate_strips_attributes_only_in_create_table(self):
        out = rd.translate("CREATE TABLE t (a int ENCODE az64, b int) DISTSTYLE ALL SORTKEY (a); "
                           "SELECT 'DISTSTYLE ALL', getdate()", 7)
        self.assertEqual(out, "CREATE TABLE t (a int, b int); SELECT 'DISTSTYLE ALL', "
                              "CAST(statement_timestamp() AS timestamp)")

    def test_datetime_formats(self):
        p = rd.compile_format("YYYY-MM-DD HH:MI:SS")
        self.assertEqual(rd.parse_datetime("2024-02-29 23:01:02", p, True), "2024-02-29 23:01:02")
        self.assertIsNone(rd.parse_datetime("2023-02-29 23:01:02", p, True))
        p12 = rd.compile_format("MM/DD/YYYY HH12:MI:SS AM")
        self.assertEqual(rd.parse_datetime("03/31/2003 06:45:05 PM", p12, True), "2003-03-31 18:45:05")


if __name__ == "__main__":
    unittest.main()
