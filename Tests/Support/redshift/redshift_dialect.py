#!/usr/bin/env python3
"""redshift_dialect.py — a Redshift-dialect TEST server (like moto is for S3), not a Redshift.

A PostgreSQL wire-protocol proxy on 127.0.0.1 in front of a local PostgreSQL and a local S3
(moto). Every client connection gets its own upstream PostgreSQL connection; the startup and
authentication exchange is relayed byte for byte (md5 / SCRAM pass through), SSLRequest and
GSSENCRequest are answered 'N'. After that the proxy behaves as Amazon Redshift does where the
Huskimo loader depends on it, written from the Redshift documentation (URLs in RULES and in
Tests/Support/redshift/README.md):

Modelled
  * Refusal rules (RULES): PostgreSQL features Redshift does not support are refused with SQLSTATE
    0A000, whether sent by simple Query or in a Parse message; matched outside string literals,
    quoted identifiers and comments. A refused statement inside a transaction block leaves the
    transaction failed, like a real error.
  * Translations (not rules): Redshift-only table attributes (DISTSTYLE, DISTKEY, SORTKEY, ENCODE,
    BACKUP) are stripped from CREATE TABLE; PRIMARY KEY / UNIQUE constraints are stripped because
    Redshift accepts but does not enforce them; getdate() / sysdate are rewritten to PostgreSQL
    expressions; pg_last_copy_count() is rewritten to the session's last COPY count.
  * COPY table [(columns)] FROM 's3://...' with MANIFEST or a key prefix, from the S3 endpoint given
    on the command line. Options: GZIP, DELIMITER, ESCAPE, NULL AS, TIMEFORMAT, DATEFORMAT, REGION,
    MAXERROR, EMPTYASNULL, BLANKSASNULL, ACCEPTINVCHARS, TRUNCATECOLUMNS, COMPUPDATE, STATUPDATE,
    and exactly one authorization (ACCESS_KEY_ID + SECRET_ACCESS_KEY [SESSION_TOKEN] | CREDENTIALS |
    IAM_ROLE). Fields are parsed and validated by Redshift's rules (escapes, NULL on the raw field,
    byte lengths for CHAR/VARCHAR, UTF-8, integers, decimals, booleans, dates/timestamps by format
    string where HH means HH24). Bad rows are recorded in public.stl_load_errors over a separate
    autocommit connection (so they survive the client's rollback); beyond MAXERROR the COPY fails
    with XX000 "Load into table 'T' failed.  Check 'stl_load_errors' system table for details.".
    Good rows are loaded with COPY ... FROM STDIN on the client's own upstream connection, i.e.
    inside the client's transaction.

Not modelled (forwarded to PostgreSQL unchanged, or refused as "not modelled"): CSV/JSON/Parquet/
FIXEDWIDTH COPY, other compressions, UNLOAD, IDENTITY columns, Redshift system tables other than
stl_load_errors, the bucket-region check, Redshift's type coercions in ordinary SQL, NOTIFY messages
arriving while the client is idle (they are relayed with the next response), and every Redshift SQL
difference not listed in RULES.

Usage: redshift_dialect.py --listen-port P --pg-host H --pg-port N --s3-endpoint URL [--s3-region R]
Options can also come from the environment (REDSHIFT_DIALECT_LISTEN_PORT, _PG_HOST, _PG_PORT,
_S3_ENDPOINT, _S3_REGION). The stl_load_errors writer logs in with REDSHIFT_DIALECT_PG_USER /
REDSHIFT_DIALECT_PG_PASSWORD (falling back to PGUSER / PGPASSWORD, and to the client's user name);
the password is only ever read from the environment.
"""

import argparse
import asyncio
import base64
import datetime as dt
import gzip
import hashlib
import hmac
import json
import logging
import os
import re
import struct
import sys
import zlib

LOG = logging.getLogger("redshift_dialect")

MAX_MESSAGE = 64 * 1024 * 1024          # client message size limit
MAX_UPSTREAM_MESSAGE = 256 * 1024 * 1024
MAX_STARTUP = 10000
IDLE_TIMEOUT = 900.0                    # seconds without a client message
MAX_CLIENTS = 64
MAX_RECORD = 4 * 1024 * 1024            # Redshift: "The maximum size of a single input row ... is 4 MB"
CHUNK = 256 * 1024                      # CopyData batch size towards PostgreSQL
READ_SIZE = 64 * 1024

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102

DOC = "https://docs.aws.amazon.com/redshift/latest/dg/"

# ------------------------------------------------------------------------------ refusal rules
# (name, pattern on the masked SQL, reason, Redshift documentation URL). Patterns are matched
# case-insensitively on the statement text with literals, quoted identifiers and comments masked.
RULES = [
    ("array", r"\bARRAY\s*\[|[\w)\"]\s*\[\s*\d*\s*\]"
              r"|\b(ANY|SOME|ALL)\s*\(\s*(?!SELECT\b|WITH\b|\()|\b(ARRAY_AGG|UNNEST|ARRAY_LENGTH|ARRAY_TO_STRING)\s*\(",
     "arrays (ARRAY[...], type[] and subscripts, ANY/ALL over an array, array functions) are not supported",
     DOC + "c_unsupported-postgresql-datatypes.html"),
    ("aggregate-filter", r"\bFILTER\s*\(\s*WHERE\b",
     "the aggregate FILTER (WHERE ...) clause is not supported; use CASE inside the aggregate",
     DOC + "c_Aggregate_Functions.html"),
    ("copy-stdin", r"^\s*COPY\b[\s\S]*\b(FROM\s+STDIN|TO\s+STDOUT|TO\s+'|TO\s+PROGRAM)\b",
     "COPY loads only FROM Amazon S3 (or EMR, DynamoDB, SSH); no FROM STDIN / TO STDOUT (use UNLOAD to export)",
     DOC + "r_COPY.html"),
    ("on-conflict", r"\bON\s+CONFLICT\b",
     "INSERT ... ON CONFLICT is not supported; use MERGE or delete-then-insert",
     DOC + "r_INSERT_30.html"),
    ("returning", r"\bRETURNING\b",
     "RETURNING is not supported by INSERT, UPDATE or DELETE",
     DOC + "r_INSERT_30.html"),
    ("advisory-lock", r"\bPG_(TRY_)?ADVISORY_\w*\s*\(",
     "advisory lock functions are not supported (use LOCK table)",
     DOC + "c_unsupported-postgresql-functions.html"),
    ("create-index", r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\b",
     "indexes are not supported (use DISTKEY / SORTKEY)",
     DOC + "c_unsupported-postgresql-features.html"),
    ("serial", r"^\s*(CREATE|ALTER)\b[\s\S]*?[\w\"]\s+(SMALL|BIG)?SERIAL[248]?\s*(,|\)|$|NOT\b|NULL\b|PRIMARY\b|UNIQUE\b|DEFAULT\b|REFERENCES\b)",
     "SERIAL / BIGSERIAL / SMALLSERIAL types are not supported (use IDENTITY)",
     DOC + "c_unsupported-postgresql-datatypes.html"),
    ("jsonb", r"\bJSONB\w*",
     "the JSONB type and its functions are not supported (use SUPER or VARCHAR with JSON functions)",
     DOC + "c_unsupported-postgresql-datatypes.html"),
    ("distinct-on", r"\bDISTINCT\s+ON\s*\(",
     "SELECT DISTINCT ON (...) is not supported; use row_number() OVER (PARTITION BY ...)",
     DOC + "r_SELECT_list.html"),
    ("is-distinct-from", r"\bIS\s+(NOT\s+)?DISTINCT\s+FROM\b",
     "IS [NOT] DISTINCT FROM is not supported",
     DOC + "c_unsupported-postgresql-functions.html"),
    ("unsupported-aggregate", r"\b(STRING_AGG|EVERY|XMLAGG)\s*\(",
     "STRING_AGG / EVERY / XMLAGG are not supported (use LISTAGG / BOOL_AND)",
     DOC + "c_unsupported-postgresql-functions.html"),
    ("on-commit", r"^\s*CREATE\s+[\s\S]*\bTABLE\b[\s\S]*\bON\s+COMMIT\b",
     "CREATE TABLE ... ON COMMIT is not supported",
     DOC + "r_CREATE_TABLE_NEW.html"),
]
RULES = [(name, re.compile(p, re.IGNORECASE), reason, url) for name, p, reason, url in RULES]

# Redshift COPY options this proxy knows but does not model (refused as such, 0A000).
UNMODELLED_COPY_OPTIONS = {
    "CSV", "JSON", "AVRO", "PARQUET", "ORC", "FIXEDWIDTH", "SHAPEFILE", "FORMAT", "QUOTE", "BZIP2",
    "LZOP", "ZSTD", "IGNOREHEADER", "FILLRECORD", "TRIMBLANKS", "ROUNDEC", "EXPLICIT_IDS",
    "ACCEPTANYDATE", "IGNOREBLANKLINES", "REMOVEQUOTES", "NOLOAD", "ENCODING", "ENCRYPTED",
    "MASTER_SYMMETRIC_KEY", "COMPROWS", "READRATIO", "SSH", "JSONPATHS", "IGNOREALLERRORS",
}


# Conflicts a concurrent transaction causes on Redshift, injectable by tests with
# SELECT huskimo_test_inject_conflict('serializable' | 'snapshot', N, 'schema'): the next N COPYs into that schema fail so.
# https://docs.aws.amazon.com/redshift/latest/dg/c_serial_isolation.html (error 1023, SQLSTATE XX000), and under
# SNAPSHOT isolation "could not complete because of conflict with concurrent transaction".
_CONFLICTS = {
    "serializable": ("XX000", "1023",
                     "Serializable isolation violation on table - 100387, transactions forming the cycle are: 1, 2 (pid:1)"),
    "snapshot": ("XX000", "could not complete because of conflict with concurrent transaction", None),
}
_INJECT = re.compile(r"\s*SELECT\s+huskimo_test_inject_conflict\s*\(\s*'(\w+)'\s*,\s*(\d+)\s*,\s*'([^']+)'\s*\)\s*;?\s*$", re.I)
INJECTED = {}


class ProtocolError(Exception):
    pass


class SqlError(Exception):
    """An error to answer the client with (SQLSTATE, message, optional detail)."""

    def __init__(self, code, message, detail=None):
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail


# ------------------------------------------------------------------------------ wire helpers

def frame(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def error_response(code, message, detail=None, severity="ERROR"):
    fields = [b"S" + severity.encode(), b"V" + severity.encode(), b"C" + code.encode(),
              b"M" + message.encode("utf-8", "replace")]
    if detail:
        fields.append(b"D" + detail.encode("utf-8", "replace"))
    return frame(b"E" if severity in ("ERROR", "FATAL") else b"N", b"\0".join(fields) + b"\0\0")


def notice(message):
    return error_response("00000", message, severity="INFO")


def cstrings(body):
    return body.split(b"\0")


def parse_error_fields(body):
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[part[:1].decode()] = part[1:].decode("utf-8", "replace")
    return out


def data_row_values(body):
    (n,), pos, values = struct.unpack_from("!h", body, 0), 2, []
    for _ in range(n):
        (size,) = struct.unpack_from("!i", body, pos)
        pos += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[pos:pos + size].decode("utf-8"))
            pos += size
    return values


async def read_message(reader, limit, timeout=None):
    """(type, body) of one message; a length over limit is a protocol violation, a stall a timeout."""
    header = await asyncio.wait_for(reader.readexactly(5), timeout)
    length = struct.unpack("!I", header[1:])[0]
    if length < 4 or length - 4 > limit:
        raise ProtocolError(f"message length {length} out of bounds")
    return header[:1], await asyncio.wait_for(reader.readexactly(length - 4), timeout)


def literal(text):
    """A standard-conforming SQL string literal (NUL bytes dropped: text cannot hold them)."""
    return "'" + text.replace("\0", "").replace("'", "''") + "'"


# ------------------------------------------------------------------------------ SQL masking

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def mask_sql(sql):
    """Same-length copy of sql with the contents of string literals, quoted identifiers, dollar-quoted
    strings and comments replaced, so patterns only see code."""
    out, i, n = list(sql), 0, len(sql)

    def blank(a, b, ch):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = ch

    while i < n:
        c = sql[i]
        if c in "'\"":
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE" and not (i > 1 and (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            j = i + 1
            while j < n:
                if escapes and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            blank(i + 1, min(j, n), "_")
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            blank(i, j, " ")
            i = j
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j, " ")
            i = j
        elif c == "$" and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")) and (m := _DOLLAR_TAG.match(sql, i)):
            tag = m.group(0)
            end = sql.find(tag, m.end())
            end = n if end < 0 else end
            blank(m.end(), end, "_")
            i = end + len(tag)
        else:
            i += 1
    return "".join(out)


def split_statements(sql, masked):
    """(start, end) spans of the ;-separated statements that contain code."""
    spans, start = [], 0
    for m in re.finditer(";", masked):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(sql)))
    return [(a, b) for a, b in spans if masked[a:b].strip()]


def check_rules(sql):
    masked = mask_sql(sql)
    for a, b in split_statements(sql, masked):
        stmt = masked[a:b]
        for name, pattern, reason, url in RULES:
            if pattern.search(stmt):
                return SqlError("0A000", f"Redshift does not support this statement (rule {name}): {reason}",
                                f"See {url} (refused by the Redshift-dialect test proxy)")
    return None


# ------------------------------------------------------------------------------ translations

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+((LOCAL\s+|GLOBAL\s+)?(TEMP|TEMPORARY)\s+)?TABLE\b", re.I)
_TABLE_ATTRS = [re.compile(p, re.I) for p in (
    r"\s+DISTSTYLE\s+(ALL|KEY|EVEN|AUTO)\b",
    r"\s+DISTKEY\s*\([^)]*\)",
    r"\s+(COMPOUND\s+|INTERLEAVED\s+)?SORTKEY\s*\([^)]*\)",
    r"\s+SORTKEY\s+AUTO\b",
    r"\s+BACKUP\s+(YES|NO)\b",
    r"\s+ENCODE\s+\w+",
    r"\s+DISTKEY\b",
    r"\s+SORTKEY\b",
    # Redshift accepts PRIMARY KEY / UNIQUE but does not enforce them ("informational only").
    r",\s*(CONSTRAINT\s+[\w\"]+\s+)?(PRIMARY\s+KEY|UNIQUE)\s*\([^)]*\)",
    r"\s+PRIMARY\s+KEY\b",
    r"\s+UNIQUE\b",
)]
_EXPRESSIONS = [
    (re.compile(r"\bGETDATE\s*\(\s*\)", re.I), "CAST(statement_timestamp() AS timestamp)"),
    (re.compile(r"(?<![\w.])SYSDATE\b(?!\s*\()", re.I), "CAST(transaction_timestamp() AS timestamp)"),
]
_LAST_COPY_COUNT = re.compile(r"\bPG_LAST_COPY_COUNT\s*\(\s*\)", re.I)


def _edit(sql, masked, pattern, replacement, start=0, end=None):
    """Replace matches of pattern found in masked[start:end] in both strings (kept in step)."""
    end = len(sql) if end is None else end
    pieces_s, pieces_m, pos = [], [], 0
    for m in pattern.finditer(masked, start, end):
        rep = replacement(m) if callable(replacement) else replacement
        pieces_s += [sql[pos:m.start()], rep]
        pieces_m += [masked[pos:m.start()], rep]
        pos = m.end()
    pieces_s.append(sql[pos:])
    pieces_m.append(masked[pos:])
    return "".join(pieces_s), "".join(pieces_m)


def translate(sql, last_copy_count):
    """Redshift SQL → PostgreSQL SQL: strip table attributes, rewrite getdate()/pg_last_copy_count()."""
    masked = mask_sql(sql)
    for pattern, rep in _EXPRESSIONS:
        sql, masked = _edit(sql, masked, pattern, rep)
    # A scalar subquery keeps the column name pg_last_copy_count (PostgreSQL names it after its column).
    sql, masked = _edit(sql, masked, _LAST_COPY_COUNT,
                        f"(SELECT CAST({int(last_copy_count)} AS bigint) AS pg_last_copy_count)")
    i = 0
    while True:
        spans = split_statements(sql, masked)
        if i >= len(spans):
            return sql
        a, b = spans[i]
        if _CREATE_TABLE.match(masked[a:b]):
            for pattern in _TABLE_ATTRS:
                a, b = split_statements(sql, masked)[i]
                sql, masked = _edit(sql, masked, pattern, "", a, b)
        i += 1


# ------------------------------------------------------------------------------ COPY statement

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<qid>"(?:[^"]|"")*")|(?P<word>[A-Za-z_][\w$]*)"""
                    r"""|(?P<num>\d+)|(?P<punct>[(),.;=]))""")


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise SqlError("42601", f"syntax error at or near \"{text[pos:pos + 20].strip()}\"")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind == "qid":
            value = value[1:-1].replace('""', '"')
        tokens.append((kind, value))
        pos = m.end()
    return tokens


class CopySpec:
    """A parsed COPY ... FROM 's3://...' statement."""

    def __init__(self):
        self.table_parts, self.columns, self.source = [], None, None
        self.manifest = self.gzip = self.escape = False
        self.emptyasnull = self.blanksasnull = self.truncatecolumns = False
        self.delimiter, self.null_as = "|", "\\N"
        self.timeformat, self.dateformat = None, None
        self.region, self.maxerror, self.acceptinvchars = None, 0, None
        self.access_key = self.secret_key = self.session_token = None
        self.credentials = self.iam_role = None

    @property
    def table_name(self):
        return self.table_parts[-1]

    @property
    def qualified(self):
        return ".".join('"' + p.replace('"', '""') + '"' for p in self.table_parts)


def _ident(tok):
    kind, value = tok
    if kind == "qid":
        return value
    if kind == "word":
        return value.lower()
    raise SqlError("42601", f"syntax error at or near \"{value}\"")


def _char_option(value, name):
    mapped = {"\\t": "\t", "\\n": "\n", "\\r": "\r", "\\\\": "\\", "\\0": "\0", "\\000": "\0", "\\011": "\t"}.get(value, value)
    if name == "DELIMITER" and len(mapped.encode()) != 1:
        raise SqlError("42601", f"COPY delimiter must be a single ASCII character, not '{value}'")
    return mapped


def parse_copy(sql):
    toks = [t for t in tokenize(sql) if t != ("punct", ";")]
    spec, i = CopySpec(), 1
    take = lambda: toks[i] if i < len(toks) else ("eof", "")
    spec.table_parts.append(_ident(take()))
    i += 1
    while take() == ("punct", "."):
        spec.table_parts.append(_ident(toks[i + 1]))
        i += 2
    if take() == ("punct", "("):
        spec.columns, i = [], i + 1
        while True:
            spec.columns.append(_ident(take()))
            i += 1
            if take() == ("punct", ")"):
                i += 1
                break
            if take() != ("punct", ","):
                raise SqlError("42601", f"syntax error at or near \"{take()[1]}\" in the COPY column list")
            i += 1
    if take()[1].upper() != "FROM" or i + 1 >= len(toks) or toks[i + 1][0] != "str":
        raise SqlError("0A000", "Redshift COPY needs FROM 's3://bucket/prefix' (the test proxy models Amazon S3 only)",
                       f"See {DOC}r_COPY.html")
    spec.source, i = toks[i + 1][1], i + 2
    if not spec.source.startswith("s3://"):
        raise SqlError("0A000", f"COPY source '{spec.source}' is not modelled: only s3:// is supported by the test proxy")
    seen = set()

    def value(kinds=("str",), optional_as=True):
        nonlocal i
        if optional_as and take()[0] == "word" and take()[1].upper() == "AS":
            i += 1
        if take()[0] not in kinds:
            raise SqlError("42601", f"syntax error at or near \"{take()[1]}\": {opt} needs a value")
        v = take()[1]
        i += 1
        return v

    while i < len(toks):
        kind, word = take()
        if kind != "word":
            raise SqlError("42601", f"syntax error at or near \"{word}\" in COPY options")
        opt = word.upper()
        i += 1
        if opt == "WITH" and take()[0] == "word" and take()[1].upper() == "CREDENTIALS":
            continue
        if opt in seen:
            raise SqlError("42601", f"conflicting or redundant options: COPY option {opt} given twice")
        seen.add(opt)
        if opt in ("MANIFEST", "GZIP", "ESCAPE", "EMPTYASNULL", "BLANKSASNULL", "TRUNCATECOLUMNS"):
            setattr(spec, opt.lower(), True)
        elif opt == "DELIMITER":
            spec.delimiter = _char_option(value(), opt)
        elif opt == "NULL":
            spec.null_as = _char_option(value(), opt)
        elif opt in ("TIMEFORMAT", "DATEFORMAT"):
            setattr(spec, opt.lower(), value())
        elif opt == "REGION":
            spec.region = value()
            if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", spec.region):
                raise SqlError("XX000", f"Invalid REGION '{spec.region}'")
        elif opt == "MAXERROR":
            spec.maxerror = int(value(("num",)))
        elif opt == "ACCEPTINVCHARS":
            if take()[0] == "str" or (take()[0] == "word" and take()[1].upper() == "AS"):
                spec.acceptinvchars = value()
                if len(spec.acceptinvchars) != 1 or not spec.acceptinvchars.isascii():
                    raise SqlError("42601", "ACCEPTINVCHARS replacement must be one ASCII character")
            else:
                spec.acceptinvchars = "?"
        elif opt in ("COMPUPDATE", "STATUPDATE"):
            if take()[0] == "word" and take()[1].upper() in ("ON", "OFF", "TRUE", "FALSE", "PRESET"):
                i += 1
        elif opt == "IAM_ROLE":
            spec.iam_role = value(("str", "word"), optional_as=False)
        elif opt == "ACCESS_KEY_ID":
            spec.access_key = value(optional_as=False)
        elif opt == "SECRET_ACCESS_KEY":
            spec.secret_key = value(optional_as=False)
        elif opt == "SESSION_TOKEN":
            spec.session_token = value(optional_as=False)
        elif opt == "CREDENTIALS":
            spec.credentials = value()
        elif opt in UNMODELLED_COPY_OPTIONS:
            raise SqlError("0A000", f"COPY option {opt} is valid in Redshift but not modelled by the test proxy")
        else:
            raise SqlError("42601", f"syntax error at or near \"{word}\": unknown COPY option {opt}",
                           f"See {DOC}r_COPY.html")
    check_authorization(spec)
    return spec


def check_authorization(spec):
    """Exactly one of IAM_ROLE, ACCESS_KEY_ID + SECRET_ACCESS_KEY, CREDENTIALS (copy-parameters-authorization)."""
    keys = spec.access_key is not None or spec.secret_key is not None or spec.session_token is not None
    given = [name for name, present in (("IAM_ROLE", spec.iam_role is not None),
                                        ("ACCESS_KEY_ID/SECRET_ACCESS_KEY", keys),
                                        ("CREDENTIALS", spec.credentials is not None)) if present]
    url = f"See {DOC}copy-parameters-authorization.html"
    if not given:
        raise SqlError("XX000", "COPY needs authorization: one of IAM_ROLE, ACCESS_KEY_ID and SECRET_ACCESS_KEY, "
                                "or CREDENTIALS", url)
    if len(given) > 1:
        raise SqlError("42601", f"conflicting or redundant options: COPY authorization given twice ({' and '.join(given)})", url)
    if keys and (spec.access_key is None or spec.secret_key is None):
        raise SqlError("XX000", "ACCESS_KEY_ID and SECRET_ACCESS_KEY must be given together", url)
    if spec.credentials is not None:
        parts = dict(p.split("=", 1) for p in spec.credentials.split(";") if "=" in p)
        if "aws_iam_role" in parts:
            spec.iam_role = parts["aws_iam_role"]
        elif "aws_access_key_id" in parts and "aws_secret_access_key" in parts:
            spec.access_key, spec.secret_key = parts["aws_access_key_id"], parts["aws_secret_access_key"]
            spec.session_token = parts.get("token")
        else:
            raise SqlError("XX000", "Invalid credentials. Must be of the format: credentials "
                                    "'aws_iam_role=...' or 'aws_access_key_id=...;aws_secret_access_key=...[;token=...]'", url)
    if spec.iam_role is not None and spec.iam_role.lower() != "default" and \
            not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+", spec.iam_role):
        raise SqlError("XX000", f"Invalid IAM_ROLE ARN '{spec.iam_role}'", url)


# ------------------------------------------------------------------------------ datetime formats

_FMT_TOKENS = [("YYYY", r"(?P<Y>\d{4})"), ("HH24", r"(?P<H>\d{1,2})"), ("HH12", r"(?P<h>\d{1,2})"),
               ("MON", r"(?P<MON>[A-Za-z]{3,9})"), ("YY", r"(?P<y>\d{2})"), ("MM", r"(?P<M>\d{1,2})"),
               ("DD", r"(?P<D>\d{1,2})"),
               # Redshift: "in the DATEFORMAT and TIMEFORMAT strings for COPY, HH is the same as HH24"
               ("HH", r"(?P<H>\d{1,2})"), ("MI", r"(?P<MI>\d{1,2})"),
               ("SS", r"(?P<S>\d{1,2})(?:\.(?P<F>\d{1,6}))?"), ("AM", r"(?P<AMPM>[AaPp][Mm])"),
               ("PM", r"(?P<AMPM>[AaPp][Mm])")]
_MONTHS = {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_AUTO = re.compile(r"(?P<Y>\d{4})-(?P<M>\d{1,2})-(?P<D>\d{1,2})(?:[ T](?P<H>\d{1,2}):(?P<MI>\d{2})"
                   r"(?::(?P<S>\d{2})(?:\.(?P<F>\d{1,6}))?)?)?")
_OFFSET = re.compile(r"\s*(?P<OF>Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$", re.I)


def compile_format(fmt):
    if fmt.lower() == "auto":
        return _AUTO
    out, i, used = [], 0, set()
    while i < len(fmt):
        for tok, rx in _FMT_TOKENS:
            if fmt.upper().startswith(tok, i):
                group = re.search(r"\?P<(\w+)>", rx).group(1)
                out.append(rx if group not in used else rx.replace(f"?P<{group}>", "?:"))
                used.add(group)
                i += len(tok)
                break
        else:
            out.append(r"\s+" if fmt[i] == " " else re.escape(fmt[i]))
            i += 1
    return re.compile("".join(out))


def parse_datetime(value, pattern, with_time, with_tz=False):
    text = value.strip()
    offset = None
    if with_tz:
        m = _OFFSET.search(text)
        if m and m.group("OF"):
            offset = m.group("OF")
            text = text[:m.start()].rstrip()
    m = pattern.fullmatch(text)
    if not m:
        return None
    g = m.groupdict()
    try:
        year = int(g["Y"]) if g.get("Y") else (2000 + int(g["y"]) if int(g["y"]) < 70 else 1900 + int(g["y"])) if g.get("y") else None
        month = int(g["M"]) if g.get("M") else _MONTHS.get((g.get("MON") or "")[:3].lower())
        day = int(g["D"]) if g.get("D") else 1
        hour = int(g["H"]) if g.get("H") else 0
        if g.get("h"):
            hour = int(g["h"]) % 12 + (12 if (g.get("AMPM") or "").lower() == "pm" else 0)
        stamp = dt.datetime(year, month, day, hour, int(g.get("MI") or 0), int(g.get("S") or 0),
                            int((g.get("F") or "0").ljust(6, "0")))
    except (TypeError, ValueError):
        return None
    text = f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}"
    if with_time:
        text += f" {stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
        if stamp.microsecond:
            text += f".{stamp.microsecond:06d}"
    if with_tz:
        text += " " + ("+00" if offset is None or offset.upper() in ("Z", "UTC") else offset)
    return text


# ------------------------------------------------------------------------------ field conversion

class FieldError(Exception):
    def __init__(self, code, reason, position=0):
        super().__init__(reason)
        self.code, self.reason, self.position = code, reason, position


class Column:
    def __init__(self, name, data_type, char_len, precision, scale, nullable):
        self.name, self.data_type = name, data_type
        self.char_len = int(char_len) if char_len is not None else None
        self.precision = int(precision) if precision is not None else None
        self.scale = int(scale) if scale is not None else None
        self.nullable = nullable == "YES"
        if data_type == "text":                       # Redshift: TEXT is converted to VARCHAR(256)
            self.char_len = 256

    @property
    def is_char(self):
        return self.data_type in ("character varying", "character", "text")

    @property
    def type_label(self):
        return {"character varying": "varchar", "character": "char", "bigint": "int8", "integer": "int4",
                "smallint": "int2", "timestamp without time zone": "timestamp",
                "timestamp with time zone": "timestamptz"}.get(self.data_type, self.data_type)[:10]


_INT_RANGES = {"smallint": 2 ** 15, "integer": 2 ** 31, "bigint": 2 ** 63}
_INT_LABEL = {"smallint": "Short", "integer": "Integer", "bigint": "Long"}
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_BOOLS = {"t": "t", "true": "t", "1": "t", "y": "t", "yes": "t", "f": "f", "false": "f", "0": "f", "n": "f", "no": "f"}


def _hex(bs):
    return " ".join(f"{b:02x}" for b in bs)


def decode_utf8(raw, replacement):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        if replacement is None:
            raise FieldError(1220, f"String contains invalid or unsupported UTF8 codepoints. "
                                   f"Bad UTF8 hex sequence: {_hex(raw[e.start:e.end + 2])}", e.start)
    out, pos = [], 0
    while pos < len(raw):
        try:
            out.append(raw[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            out.append(raw[pos:pos + e.start].decode("utf-8"))
            out.append(replacement * (e.end - e.start))   # "a string of equal length" (per byte)
            pos += e.end
    return "".join(out)


def truncate_bytes(text, limit):
    data = text.encode("utf-8")[:limit]
    return data.decode("utf-8", "ignore")                 # cut back to a character boundary


class FieldConverter:
    """Turns one raw field (bytes as in the file) into a PostgreSQL text value or None, by Redshift rules."""

    def __init__(self, spec):
        self.spec = spec
        self.null_raw = spec.null_as.encode("utf-8")
        self.time_pattern = compile_format(spec.timeformat or "YYYY-MM-DD HH:MI:SS")
        self.date_pattern = compile_format(spec.dateformat or "YYYY-MM-DD")

    def unescape(self, raw):
        if not self.spec.escape or b"\\" not in raw:
            return raw
        out, i = bytearray(), 0
        while i < len(raw):
            if raw[i] == 0x5C and i + 1 < len(raw):
                out.append(raw[i + 1])          # the escaped byte is literal: \t is "t", \<TAB> is TAB
                i += 2
            else:
                out.append(raw[i])
                i += 1
        return bytes(out)

    def convert(self, raw, col):
        if raw == self.null_raw:
            value = None
        else:
            replacement = self.spec.acceptinvchars if col.data_type == "character varying" else None
            value = decode_utf8(self.unescape(raw), replacement)
            value = self.convert_char(value, col) if col.is_char else self.convert_other(value, col)
        if value is None and not col.nullable:
            raise FieldError(1213, "Missing data for not-null field")
        return value

    def convert_char(self, value, col):
        spec = self.spec
        if spec.emptyasnull and value == "":
            return None
        if spec.blanksasnull and value != "" and not value.strip(" \t"):
            return None
        if col.data_type == "character":
            if not value.isascii():
                bad = next(ch for ch in value if not ch.isascii())
                raise FieldError(1220, f"Multibyte character not supported for CHAR (Hint: try using VARCHAR). "
                                       f"Invalid char: {_hex(bad.encode())}", value.index(bad))
            value = value.rstrip(" ")
        size = len(value.encode("utf-8"))
        if col.char_len is not None and size > col.char_len:
            if not spec.truncatecolumns:
                raise FieldError(1204, "String length exceeds DDL length", col.char_len)
            value = truncate_bytes(value, col.char_len)
        return value

    def convert_other(self, value, col):
        if value == "" or (self.spec.blanksasnull and not value.strip(" \t")):
            return None                          # empty non-character fields always load as NULL
        t, v = col.data_type, value.strip(" ")
        if t in _INT_RANGES:
            if not re.fullmatch(r"[+-]?\d+", v):
                pos = next((k for k, ch in enumerate(v) if not (ch.isdigit() or (k == 0 and ch in "+-"))), 0)
                raise FieldError(1207, f"Invalid digit, Value '{v[pos:pos + 1]}', Pos {pos}, Type: {_INT_LABEL[t]}", pos)
            if not -_INT_RANGES[t] <= int(v) < _INT_RANGES[t]:
                raise FieldError(1204, f"Overflow, Value '{v}' out of range for type {col.type_label}")
            return str(int(v))
        if t == "numeric":
            return self.convert_decimal(v, col)
        if t in ("real", "double precision"):
            try:
                float(v)
            except ValueError:
                raise FieldError(1208, f"Invalid float value '{v}'")
            return v
        if t == "boolean":
            if v.lower() not in _BOOLS:
                raise FieldError(1210, f"Invalid boolean value '{v}'")
            return _BOOLS[v.lower()]
        if t == "date":
            out = parse_datetime(v, self.date_pattern, with_time=False)
            if out is None:
                raise FieldError(1205, f"Invalid Date Format - value '{v}' does not match [{self.spec.dateformat or 'YYYY-MM-DD'}]")
            return out
        if t.startswith("timestamp"):
            out = parse_datetime(v, self.time_pattern, with_time=True, with_tz=t == "timestamp with time zone")
            if out is None:
                raise FieldError(1206, f"Invalid timestamp format or value [{self.spec.timeformat or 'YYYY-MM-DD HH24:MI:SS'}]")
            return out
        return value

    @staticmethod
    def convert_decimal(v, col):
        if not _DECIMAL.fullmatch(v):
            pos = next((k for k, ch in enumerate(v) if not (ch.isdigit() or ch == "." or (k == 0 and ch in "+-"))), 0)
            raise FieldError(1207, f"Invalid digit, Value '{v[pos:pos + 1]}', Pos {pos}, Type: Decimal", pos)
        sign = "-" if v.startswith("-") else ""
        whole, _, frac = v.lstrip("+-").partition(".")
        whole = whole.lstrip("0") or "0"
        if col.precision is not None and col.scale is not None:
            frac = frac[:col.scale]                    # Redshift truncates extra scale digits (no ROUNDEC)
            if len(whole.lstrip("0")) > col.precision - col.scale:
                raise FieldError(1204, f"Numeric data overflow (result precision) for value '{v}'")
        return sign + whole + ("." + frac if frac else "")


def pg_text(value):
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def display_line(raw, limit=1024):
    """stl_load_errors.raw_line: "Multibyte characters in the load data are replaced with a period"."""
    text = raw.decode("utf-8", "replace")
    return "".join(ch if ord(ch) < 128 else "." for ch in text)[:limit]


# ------------------------------------------------------------------------------ S3 reading (sync, in a thread)

def split_s3_url(url):
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", url)
    if not m:
        raise SqlError("XX000", f"Invalid S3 URL '{url}'")
    return m.group(1), m.group(2)


class LoadFailure(Exception):
    """The COPY failed as a whole (not a row error)."""


class S3Loader:
    """Lists, reads, gunzips and parses the staged objects; yields chunks of PostgreSQL text-COPY data.

    Runs synchronously (boto3) in worker threads, one next() at a time."""

    def __init__(self, spec, columns, s3):
        self.spec, self.columns, self.s3 = spec, columns, s3
        self.converter = FieldConverter(spec)
        self.delim = spec.delimiter.encode("utf-8")
        self.errors, self.loaded, self.failed = [], 0, False

    def s3_error(self, e):
        return LoadFailure(f"S3ServiceException:{e}")

    def files(self):
        bucket, key = split_s3_url(self.spec.source)
        if self.spec.manifest:
            return self.manifest_files(bucket, key)
        return self.prefix_files(bucket, key)

    def manifest_files(self, bucket, key):
        import botocore.exceptions
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_MESSAGE)
            entries = json.loads(body)["entries"]
        except botocore.exceptions.ClientError as e:
            raise LoadFailure(f"Problem reading manifest file - S3ServiceException:{e.response['Error'].get('Message', e)},"
                              f"Status {e.response['ResponseMetadata'].get('HTTPStatusCode')}, manifest {self.spec.source}")
        except (ValueError, KeyError, TypeError):
            raise LoadFailure(f"Manifest file is not in correct format: {self.spec.source}")
        files = []
        for entry in entries:
            url, mandatory = entry.get("url"), entry.get("mandatory", False) is True
            b, k = split_s3_url(url or "")
            if not k or k.endswith("/"):
                raise LoadFailure(f"COPY with MANIFEST parameter requires full path of an S3 object: '{url}' (code 8001)")
            try:
                self.s3.head_object(Bucket=b, Key=k)
            except botocore.exceptions.ClientError as e:
                if mandatory:
                    raise LoadFailure(f"Manifest file entry '{url}' is mandatory but was not found "
                                      f"(S3ServiceException:{e.response['Error'].get('Message', e)})")
                continue                                            # missing non-mandatory entry: skipped
            files.append((b, k))
        if not files:
            raise LoadFailure(f"None of the files listed in the manifest {self.spec.source} were found")
        return files

    def prefix_files(self, bucket, prefix):
        import botocore.exceptions
        files = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                files += [(bucket, o["Key"]) for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        except botocore.exceptions.ClientError as e:
            raise LoadFailure(f"S3ServiceException:{e.response['Error'].get('Message', e)}")
        if not files:
            raise LoadFailure(f"The specified S3 prefix '{prefix}' does not exist")
        return sorted(files)

    def physical_lines(self, stream):
        """(line_number, bytes without LF | None if longer than MAX_RECORD), bounded buffering."""
        buf, number, skipping = b"", 0, False
        while chunk := stream.read(READ_SIZE):
            lines = (buf + chunk).split(b"\n")
            buf = lines.pop()
            for line in lines:
                number += 1
                if skipping:
                    skipping = False
                    continue
                yield number, line
            if len(buf) > MAX_RECORD:
                if not skipping:
                    yield number + 1, None
                skipping, buf = True, b""
        if buf and not skipping:
            yield number + 1, buf

    def records(self, stream):
        """Logical records: with ESCAPE, a LF after an escaping backslash continues the record."""
        pending, start = None, None
        for number, line in self.physical_lines(stream):
            if line is None:
                yield number, None
                pending = None
                continue
            if pending is not None:
                line = pending + b"\n" + line
            else:
                start = number
            trailing = len(line) - len(line.rstrip(b"\\"))
            if self.spec.escape and trailing % 2 == 1:
                pending = line
                if len(pending) > MAX_RECORD:
                    yield start, None
                    pending = None
                continue
            pending = None
            yield start, line
        if pending is not None:
            yield start, pending

    def split_fields(self, record):
        if not self.spec.escape or b"\\" not in record:
            return record.split(self.delim)
        fields, cur, i = [], bytearray(), 0
        while i < len(record):
            b = record[i:i + 1]
            if b == b"\\" and i + 1 < len(record):
                cur += record[i:i + 2]                  # kept raw; unescaped after the NULL check
                i += 2
            elif b == self.delim:
                fields.append(bytes(cur))
                cur = bytearray()
                i += 1
            else:
                cur += b
                i += 1
        fields.append(bytes(cur))
        return fields

    def convert_record(self, record):
        """PostgreSQL text-COPY line, or raises FieldError with .column / .raw_field set."""
        if record is None:
            e = FieldError(1216, f"Input line exceeds the maximum row size of {MAX_RECORD} bytes")
            e.column, e.raw_field = None, b""
            raise e
        fields = self.split_fields(record)
        if len(fields) != len(self.columns):
            code, reason = (1214, "Delimiter not found") if len(fields) < len(self.columns) else (1216, "Extra column(s) found")
            col = self.columns[min(len(fields), len(self.columns)) - 1]
            e = FieldError(code, reason, len(record))
            e.column, e.raw_field = col, fields[-1] if fields else b""
            raise e
        out = []
        for raw, col in zip(fields, self.columns):
            try:
                out.append(pg_text(self.converter.convert(raw, col)))
            except FieldError as e:
                e.column, e.raw_field = col, raw
                raise
        return ("\t".join(out) + "\n").encode("utf-8")

    def open(self, bucket, key):
        import botocore.exceptions
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        except botocore.exceptions.ClientError as e:
            raise LoadFailure(f"S3ServiceException:{e.response['Error'].get('Message', e)} (s3://{bucket}/{key})")
        return gzip.GzipFile(fileobj=body, mode="rb") if self.spec.gzip else body

    def chunks(self):
        """Generator of CopyData payloads; row errors go to self.errors; stops when MAXERROR is exceeded."""
        out = []
        size = 0
        for bucket, key in self.files():
            stream = self.open(bucket, key)
            try:
                for number, record in self.records(stream):
                    try:
                        row = self.convert_record(record)
                    except FieldError as e:
                        self.errors.append((f"s3://{bucket}/{key}", number, record or b"", e))
                        if len(self.errors) > self.spec.maxerror:
                            self.failed = True
                            return
                        continue
                    out.append(row)
                    size += len(row)
                    self.loaded += 1
                    if size >= CHUNK:
                        yield b"".join(out)
                        out, size = [], 0
            except (OSError, EOFError, zlib.error) as e:
                raise LoadFailure(f"gzip: {e} (s3://{bucket}/{key})")
        if out:
            yield b"".join(out)


def make_s3_client(endpoint, region, spec):
    import boto3
    from botocore.config import Config
    key = spec.access_key or os.environ.get("S3_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID") or "test"
    secret = spec.secret_key or os.environ.get("S3_SECRET_ACCESS_KEY") or os.environ.get("AWS_SECRET_ACCESS_KEY") or "test"
    return boto3.client("s3", endpoint_url=endpoint, region_name=spec.region or region,
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        aws_session_token=spec.session_token if spec.access_key else None,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                      connect_timeout=10, read_timeout=60))


# ------------------------------------------------------------------------------ side connection (stl_load_errors)

STL_LOAD_ERRORS_DDL = """CREATE TABLE IF NOT EXISTS public.stl_load_errors (
    userid integer, slice integer, tbl integer, starttime timestamp, session integer, query integer,
    filename character(256), line_number bigint, colname character(127), type character(10),
    col_length character(10), position integer, raw_line character(1024), raw_field_value character(1024),
    err_code integer, err_reason character(100), is_partial integer, start_offset bigint)"""


class SideConnection:
    """A minimal autocommit PostgreSQL client (simple queries; trust, cleartext, md5, SCRAM-SHA-256)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host, port, user, password, database):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        self = cls(reader, writer)
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0application_name\0redshift_dialect\0\0"
        body = struct.pack("!I", 196608) + params
        writer.write(struct.pack("!I", len(body) + 4) + body)
        await self.authenticate(user, password or "")
        return self

    async def authenticate(self, user, password):
        scram = None
        while True:
            t, body = await read_message(self.reader, MAX_UPSTREAM_MESSAGE, 10)
            if t == b"E":
                raise SqlError("XX000", "stl_load_errors writer: " + parse_error_fields(body).get("M", "login failed"))
            if t == b"Z":
                return
            if t != b"R":
                continue
            code = struct.unpack_from("!I", body)[0]
            if code == 3:
                self.writer.write(frame(b"p", password.encode() + b"\0"))
            elif code == 5:
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                self.writer.write(frame(b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0"))
            elif code == 10:
                scram = ScramClient(password)
                first = scram.first()
                self.writer.write(frame(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first))
            elif code == 11:
                self.writer.write(frame(b"p", scram.final(body[4:])))
            elif code not in (0, 12):
                raise SqlError("XX000", f"stl_load_errors writer: unsupported authentication method {code}")

    async def query(self, sql):
        self.writer.write(frame(b"Q", sql.encode() + b"\0"))
        error = None
        while True:
            t, body = await read_message(self.reader, MAX_UPSTREAM_MESSAGE, 30)
            if t == b"E":
                error = parse_error_fields(body).get("M")
            elif t == b"Z":
                if error:
                    raise SqlError("XX000", error)
                return

    def close(self):
        try:
            self.writer.write(frame(b"X"))
            self.writer.close()
        except Exception:
            pass


class ScramClient:
    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n=,r={self.nonce}"

    def first(self):
        return b"n,," + self.bare.encode()

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth = f"{self.bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(hashlib.sha256(client_key).digest(), auth, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


# ------------------------------------------------------------------------------ the session

class Session:
    """One client connection and its upstream PostgreSQL connection."""

    query_counter = 0

    def __init__(self, config, creader, cwriter):
        self.config, self.creader, self.cwriter = config, creader, cwriter
        self.ureader = self.uwriter = None
        self.tx_status, self.backend_pid = b"I", 0
        self.user, self.database = "", ""
        self.pending, self.idle = 0, asyncio.Event()
        self.idle.set()
        self.capture = None
        self.last_copy_count = 0
        self.batch_forwarded, self.refusing, self.copy_batch = False, None, None

    # ---- plumbing
    def send(self, data):
        self.cwriter.write(data)

    def send_upstream(self, t, body):
        if t in (b"Q", b"S", b"F"):
            self.pending += 1
            self.idle.clear()
        self.uwriter.write(frame(t, body))

    async def pump(self):
        """Upstream → client, or into self.capture while the proxy is talking to upstream itself."""
        try:
            while True:
                t, body = await read_message(self.ureader, MAX_UPSTREAM_MESSAGE)
                if t == b"Z":
                    self.tx_status = body[:1]
                if self.capture is not None and t not in (b"N", b"S", b"A"):
                    self.capture.put_nowait((t, body))
                else:
                    self.send(frame(t, body))
                    await self.cwriter.drain()
                if t == b"Z":
                    self.pending = max(0, self.pending - 1)
                    if self.pending == 0:
                        self.idle.set()
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, OSError):
            pass
        finally:
            if self.capture is not None:
                self.capture.put_nowait((None, b""))
            self.cwriter.close()

    async def begin_capture(self):
        await self.idle.wait()
        self.capture = asyncio.Queue()

    def end_capture(self):
        self.capture = None

    async def next_captured(self):
        t, body = await self.capture.get()
        if t is None:
            raise ConnectionError("upstream closed")
        return t, body

    async def upstream_query(self, sql, until=(b"Z",)):
        """Simple query on the client's upstream connection (capture must be active): the messages up to one of
        type `until` (ReadyForQuery; with b"G" also CopyInResponse, for a query that may enter COPY IN)."""
        self.send_upstream(b"Q", sql.encode("utf-8") + b"\0")
        out = []
        while True:
            t, body = await self.next_captured()
            out.append((t, body))
            if t in until:
                return out

    async def fail_transaction(self, message):
        """Inside a transaction block, make upstream's transaction failed, as a real error would."""
        if self.tx_status == b"T":
            await self.upstream_query("DO $huskimo_rs$ BEGIN RAISE EXCEPTION USING ERRCODE = 'XX000', MESSAGE = "
                                      + literal(message[:1000]) + "; END $huskimo_rs$")

    # ---- startup
    async def startup(self):
        while True:
            header = await asyncio.wait_for(self.creader.readexactly(4), 60)
            length = struct.unpack("!I", header)[0]
            if length < 8 or length > MAX_STARTUP:
                raise ProtocolError("bad startup packet length")
            body = await asyncio.wait_for(self.creader.readexactly(length - 4), 60)
            code = struct.unpack_from("!I", body)[0]
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                self.send(b"N")                      # no TLS / GSS encryption: the client goes on in plain text
                await self.cwriter.drain()
                continue
            if code == CANCEL_REQUEST:
                _, w = await asyncio.open_connection(self.config.pg_host, self.config.pg_port)
                w.write(header + body)
                await w.drain()
                w.close()
                return False
            parts = cstrings(body[4:])
            params = dict(zip(parts[0::2], parts[1::2]))
            self.user = params.get(b"user", b"").decode()
            self.database = params.get(b"database", b"").decode() or self.user
            self.ureader, self.uwriter = await asyncio.wait_for(
                asyncio.open_connection(self.config.pg_host, self.config.pg_port), 10)
            self.uwriter.write(header + body)
            return await self.relay_auth()

    async def relay_auth(self):
        while True:
            t, body = await read_message(self.ureader, MAX_UPSTREAM_MESSAGE, 60)
            self.send(frame(t, body))
            if t == b"K":
                self.backend_pid = struct.unpack_from("!I", body)[0]
            elif t == b"E":
                return False
            elif t == b"Z":
                self.tx_status = body[:1]
                return True
            elif t == b"R" and struct.unpack_from("!I", body)[0] in (2, 3, 5, 7, 8, 9, 10, 11):
                # the server asked for a password / SASL message: relay exactly one client message
                await self.cwriter.drain()
                ct, cbody = await read_message(self.creader, MAX_STARTUP * 10, 60)
                self.uwriter.write(frame(ct, cbody))

    # ---- main loop
    async def run(self):
        try:
            if not await self.startup():
                return
            pump, main = asyncio.create_task(self.pump()), asyncio.create_task(self.serve())
            done, _ = await asyncio.wait({pump, main}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pump, main):
                task.cancel()
            if main in done and not main.cancelled() and main.exception():
                raise main.exception()
        except asyncio.TimeoutError:
            self.send(error_response("57P05", "terminating connection due to idle timeout (Redshift-dialect test proxy)",
                                     severity="FATAL"))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except ProtocolError as e:
            self.send(error_response("08P01", f"protocol violation: {e}", severity="FATAL"))
        finally:
            for w in (self.uwriter, self.cwriter):
                if w is not None:
                    try:
                        w.close()
                    except Exception:
                        pass

    async def serve(self):
        while True:
            t, body = await read_message(self.creader, MAX_MESSAGE, self.config.idle_timeout)
            if t == b"X":
                self.send_upstream(t, body)
                return
            if t == b"Q":
                await self.on_query(body)
            elif t == b"P":
                self.on_parse(body)
            elif t == b"S":
                await self.on_sync(body)
            elif self.refusing is not None:
                continue
            elif self.copy_batch is not None:
                self.copy_batch["messages"].append((t, body))
            else:
                self.send_upstream(t, body)
                if t in (b"B", b"D", b"E", b"C", b"H"):
                    self.batch_forwarded = True
            await self.uwriter.drain()
            await self.cwriter.drain()

    # ---- simple query
    async def on_query(self, body):
        sql = body.rstrip(b"\0").decode("utf-8", "replace")
        control = _INJECT.match(sql)
        if control:
            # Test control (not Redshift): the next N COPYs into tables of that schema fail as a concurrent
            # transaction makes them fail on Redshift (see _CONFLICTS).
            kind, count, schema = control.group(1).lower(), int(control.group(2)), control.group(3)
            if kind not in _CONFLICTS:
                await self.refuse(SqlError("22023", f"unknown conflict kind {kind!r} (serializable | snapshot)"))
                return
            INJECTED[schema] = [kind] * count
            self.send_upstream(b"Q", b"SELECT 'injected' AS huskimo_test_inject_conflict\0")
            return
        error = check_rules(sql)
        masked = mask_sql(sql)
        statements = split_statements(sql, masked)
        if error is None and len(statements) > 1 and any(self.is_copy(sql[a:b]) for a, b in statements):
            error = SqlError("0A000", "the Redshift-dialect test proxy needs COPY as a statement of its own")
        if error is None and self.is_copy(sql):
            await self.run_copy(sql, simple=True)
            return
        if error is not None:
            await self.refuse(error)
            return
        self.send_upstream(b"Q", translate(sql, self.last_copy_count).encode("utf-8") + b"\0")

    @staticmethod
    def is_copy(sql):
        masked = mask_sql(sql)
        return bool(re.match(r"\s*COPY\b", masked, re.I))

    async def refuse(self, error, upstream_sync=False):
        """Answer error + ReadyForQuery; a transaction block becomes failed."""
        await self.begin_capture()
        try:
            if upstream_sync:               # messages of this batch were already forwarded: finish them
                self.send_upstream(b"S", b"")
                while True:
                    t, body = await self.next_captured()
                    if t == b"Z":
                        break
                    self.send(frame(t, body))
            await self.fail_transaction(error.message)
        finally:
            self.end_capture()
        self.send(error_response(error.code, error.message, error.detail))
        self.send(frame(b"Z", self.tx_status))

    # ---- extended protocol
    def on_parse(self, body):
        if self.refusing is not None or self.copy_batch is not None:
            if self.copy_batch is not None:
                self.copy_batch["messages"].append((b"P", body))
            return
        name, rest = body.split(b"\0", 1)
        query, tail = rest.split(b"\0", 1)
        sql = query.decode("utf-8", "replace")
        error = check_rules(sql)
        if error is not None:
            self.refusing = error
        elif self.is_copy(sql):
            self.copy_batch = {"sql": sql, "messages": [(b"P", body)]}
        else:
            sql = translate(sql, self.last_copy_count)
            self.send_upstream(b"P", name + b"\0" + sql.encode("utf-8") + b"\0" + tail)
            self.batch_forwarded = True

    async def on_sync(self, body):
        refusing, copy_batch, forwarded = self.refusing, self.copy_batch, self.batch_forwarded
        self.refusing = self.copy_batch = None
        self.batch_forwarded = False
        if refusing is not None:
            await self.refuse(refusing, upstream_sync=forwarded)
        elif copy_batch is not None and not any(t == b"E" for t, _ in copy_batch["messages"]):
            # prepared but not executed: answer ParseComplete etc. without loading anything
            self.send(self.extended_replies(copy_batch["messages"], b"") + frame(b"Z", self.tx_status))
        elif copy_batch is not None:
            await self.run_copy(copy_batch["sql"], simple=False, messages=copy_batch["messages"],
                                upstream_sync=forwarded)
        else:
            self.send_upstream(b"S", body)

    # ---- COPY
    async def run_copy(self, sql, simple, messages=(), upstream_sync=False):
        await self.begin_capture()
        try:
            if upstream_sync:
                self.send_upstream(b"S", b"")
                while (m := await self.next_captured())[0] != b"Z":
                    self.send(frame(*m))
            outcome = await self.copy(sql)
        finally:
            self.end_capture()
        if simple:
            self.send(outcome)
        else:
            self.send(self.extended_replies(messages, outcome))
        self.send(frame(b"Z", self.tx_status))

    @staticmethod
    def extended_replies(messages, outcome):
        out = []
        for t, body in messages:
            if t == b"P":
                out.append(frame(b"1"))
            elif t == b"B":
                out.append(frame(b"2"))
            elif t == b"D":
                if body[:1] == b"S":
                    out.append(frame(b"t", struct.pack("!h", 0)))
                out.append(frame(b"n"))
            elif t == b"C":
                out.append(frame(b"3"))
            elif t == b"E":
                out.append(outcome)
                if outcome[:1] == b"E":
                    break
        return b"".join(out)

    async def copy(self, sql):
        """Runs the COPY (capture active). Returns the bytes to answer its Execute/Query with."""
        try:
            if self.tx_status == b"E":
                msgs = await self.upstream_query("SELECT 1")         # upstream answers 25P02 itself
                return b"".join(frame(t, b) for t, b in msgs if t == b"E")
            spec = parse_copy(sql)
            pending = INJECTED.get(spec.table_parts[0]) if len(spec.table_parts) > 1 else None
            if pending:
                code, message, detail = _CONFLICTS[pending.pop(0)]
                raise SqlError(code, message, detail)
        except SqlError as e:
            await self.fail_transaction(e.message)
            return error_response(e.code, e.message, e.detail)
        self.last_copy_count = 0
        try:
            columns, tbl = await self.target_columns(spec)
            return await self.load(spec, columns, tbl)
        except SqlError as e:
            await self.fail_transaction(e.message)
            return error_response(e.code, e.message, e.detail)

    async def target_columns(self, spec):
        sql = ("SELECT a.attname, c.data_type, c.character_maximum_length, c.numeric_precision, c.numeric_scale, "
               "c.is_nullable, a.attrelid::oid::bigint FROM pg_attribute a JOIN information_schema.columns c "
               "ON c.table_schema = (SELECT nspname FROM pg_namespace n JOIN pg_class k ON k.relnamespace = n.oid "
               "WHERE k.oid = a.attrelid) AND c.table_name = (SELECT relname FROM pg_class WHERE oid = a.attrelid) "
               "AND c.column_name = a.attname "
               f"WHERE a.attrelid = to_regclass({literal(spec.qualified)}) AND a.attnum > 0 AND NOT a.attisdropped "
               "ORDER BY a.attnum")
        rows, error = [], None
        for t, body in await self.upstream_query(sql):
            if t == b"D":
                rows.append(data_row_values(body))
            elif t == b"E":
                error = parse_error_fields(body)
        if error:
            raise SqlError(error.get("C", "XX000"), error.get("M", "metadata lookup failed"))
        if not rows:
            raise SqlError("42P01", f"relation \"{spec.table_name}\" does not exist")
        by_name = {r[0]: Column(*r[:6]) for r in rows}
        names = spec.columns or [r[0] for r in rows]
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SqlError("42703", f"column \"{missing[0]}\" of relation \"{spec.table_name}\" does not exist")
        return [by_name[n] for n in names], int(rows[0][6])

    async def load(self, spec, columns, tbl):
        loader = S3Loader(spec, columns, await asyncio.to_thread(
            make_s3_client, self.config.s3_endpoint, self.config.s3_region, spec))
        started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        col_list = ", ".join('"' + c.name.replace('"', '""') + '"' for c in columns)
        msgs = await self.upstream_query(f"COPY {spec.qualified} ({col_list}) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')",
                                         until=(b"G", b"Z"))
        if msgs[-1][0] != b"G":
            return b"".join(frame(t, b) for t, b in msgs if t == b"E")
        gen = loader.chunks()
        upstream_error = None
        try:
            while True:
                chunk = await asyncio.to_thread(next, gen, None)
                if chunk is None:
                    break
                self.uwriter.write(frame(b"d", chunk))
                await self.uwriter.drain()
                if not self.capture.empty():          # upstream refused something mid-COPY
                    upstream_error = True
                    break
        except (LoadFailure, SqlError, Exception) as e:   # the load as a whole failed: abort upstream's COPY
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            if not isinstance(e, (LoadFailure, SqlError)):
                LOG.exception("COPY failed")
                message = f"COPY failed: {type(e).__name__}: {message}"
            self.uwriter.write(frame(b"f", message.encode("utf-8", "replace")[:1000] + b"\0"))
            await self.drain_copy_result()
            return error_response(getattr(e, "code", "XX000"), message)
        if loader.failed:
            self.uwriter.write(frame(b"f", b"Redshift load error\0"))
            await self.drain_copy_result()
            await self.record_errors(loader, spec, tbl, started)
            return error_response("XX000", f"Load into table '{spec.table_name}' failed.  "
                                           f"Check 'stl_load_errors' system table for details.",
                                  self.error_detail(loader.errors[-1]))
        if not upstream_error:
            self.uwriter.write(frame(b"c"))
        result = await self.drain_copy_result()
        errors = [m for m in result if m[0] == b"E"]
        if errors:
            return b"".join(frame(t, b) for t, b in errors)
        self.last_copy_count = loader.loaded
        out = b""
        if loader.errors:                              # skipped rows (within MAXERROR): Redshift's INFO messages
            await self.record_errors(loader, spec, tbl, started)
            out += notice(f"Load into table '{spec.table_name}' completed, {loader.loaded} record(s) loaded successfully.")
            out += notice(f"Load into table '{spec.table_name}' completed, {len(loader.errors)} record(s) could not be "
                          f"loaded.  Check 'stl_load_errors' system table for details.")
        return out + frame(b"C", f"COPY {loader.loaded}".encode() + b"\0")


    async def drain_copy_result(self):
        out = []
        while True:
            t, body = await self.next_captured()
            out.append((t, body))
            if t == b"Z":
                return out

    @staticmethod
    def error_detail(error):
        filename, line, raw, e = error
        return ("\n  -----------------------------------------------\n"
                f"  error:  {e.reason}\n  code:      {e.code}\n"
                f"  context:   {display_line(e.raw_field or b'', 200)}\n"
                f"  file:      {filename}\n  line:      {line}\n"
                f"  column:    {e.column.name if e.column else ''}\n"
                "  -----------------------------------------------")

    async def record_errors(self, loader, spec, tbl, started):
        """Insert the load errors into public.stl_load_errors on an autocommit side connection."""
        Session.query_counter += 1
        rows = []
        for filename, line, raw, e in loader.errors[:1000]:
            col = e.column
            values = [0, 0, tbl, literal(started.isoformat(sep=" ")), self.backend_pid, Session.query_counter,
                      literal(filename[:256]), line, literal(col.name[:127] if col else ""),
                      literal(col.type_label if col else ""), literal(str(col.char_len) if col and col.char_len else "0"),
                      e.position, literal(display_line(raw)),
                      literal((e.raw_field or b"").decode("utf-8", "replace")[:1024]),
                      e.code, literal(e.reason[:100]), 0, 0]
            rows.append("(" + ", ".join(str(v) for v in values) + ")")
        cfg = self.config
        try:
            side = await SideConnection.connect(cfg.pg_host, cfg.pg_port, cfg.pg_user or self.user,
                                                cfg.pg_password, self.database)
            try:
                try:
                    await side.query(STL_LOAD_ERRORS_DDL)
                except SqlError:                     # concurrent CREATE TABLE IF NOT EXISTS race
                    await side.query(STL_LOAD_ERRORS_DDL)
                await side.query("INSERT INTO public.stl_load_errors VALUES " + ", ".join(rows))
            finally:
                side.close()
        except (SqlError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ProtocolError) as e:
            LOG.warning("could not record stl_load_errors rows: %s", getattr(e, "message", e))


# ------------------------------------------------------------------------------ server

class Config:
    def __init__(self, args):
        self.listen_port, self.pg_host, self.pg_port = args.listen_port, args.pg_host, args.pg_port
        self.s3_endpoint, self.s3_region = args.s3_endpoint, args.s3_region
        self.idle_timeout, self.max_clients = args.idle_timeout, args.max_clients
        self.pg_user = os.environ.get("REDSHIFT_DIALECT_PG_USER") or os.environ.get("PGUSER")
        self.pg_password = os.environ.get("REDSHIFT_DIALECT_PG_PASSWORD") or os.environ.get("PGPASSWORD")


async def serve(config):
    slots = asyncio.Semaphore(config.max_clients)

    async def handle(reader, writer):
        if slots.locked():
            writer.write(error_response("53300", "sorry, too many clients already (Redshift-dialect test proxy)",
                                        severity="FATAL"))
            writer.close()
            return
        async with slots:
            await Session(config, reader, writer).run()

    server = await asyncio.start_server(handle, "127.0.0.1", config.listen_port, limit=READ_SIZE)
    LOG.info("redshift-dialect proxy on 127.0.0.1:%d → postgres %s:%d, s3 %s", config.listen_port,
             config.pg_host, config.pg_port, config.s3_endpoint)
    async with server:
        await server.serve_forever()


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(description="Redshift-dialect PostgreSQL proxy (test tool)")
    p.add_argument("--listen-port", type=int, default=int(env("REDSHIFT_DIALECT_LISTEN_PORT", "35439")))
    p.add_argument("--pg-host", default=env("REDSHIFT_DIALECT_PG_HOST", "127.0.0.1"))
    p.add_argument("--pg-port", type=int, default=int(env("REDSHIFT_DIALECT_PG_PORT", "35432")))
    p.add_argument("--s3-endpoint", default=env("REDSHIFT_DIALECT_S3_ENDPOINT", "http://127.0.0.1:35900"))
    p.add_argument("--s3-region", default=env("REDSHIFT_DIALECT_S3_REGION", "us-east-1"))
    p.add_argument("--idle-timeout", type=float, default=float(env("REDSHIFT_DIALECT_IDLE_TIMEOUT", str(IDLE_TIMEOUT))))
    p.add_argument("--max-clients", type=int, default=int(env("REDSHIFT_DIALECT_MAX_CLIENTS", str(MAX_CLIENTS))))
    return p.parse_args(argv)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = Config(parse_args(argv if argv is not None else sys.argv[1:]))
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
