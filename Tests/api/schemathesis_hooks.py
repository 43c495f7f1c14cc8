"""Schemathesis hooks for the control API test (SchemathesisTests.swift).

The API starts guests whose QMP socket and own /sys tree are created where
the request says, and migrates guests to the daemon a URL names. Generated
requests would otherwise create sockets and mount trees anywhere on the
machine and call whatever a URL names: every value the schema allows for
those fields is moved into the test's sandbox directory ($APMATRIX_SANDBOX),
every daemon URL to the second daemon the test runs
($APMATRIX_MIGRATION_TARGET), and every migration address (`incoming`) to
a free port on loopback, so that no generated host name is ever looked up
or listened on. Values the schema refuses are left as they are, so that
the server still has to refuse them.
"""
import hashlib
import os
import re

import schemathesis

SANDBOX = os.environ["APMATRIX_SANDBOX"]
TARGET = os.environ["APMATRIX_MIGRATION_TARGET"]
# The schema's Migrate.to; a value that matches is a URL the daemon would call.
DAEMON_URL = re.compile(r"^(https?://.+|unix:.+)$", re.DOTALL)
# The schema's StartGuest.incoming.
MIGRATION_URI = re.compile(r"^tcp:.+$", re.DOTALL)


def sandboxed(value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{SANDBOX}/{digest}"


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    # A QMP socket may be any path, relative ones included (relative to serve's directory).
    if isinstance(body.get("qmp"), str):
        body["qmp"] = sandboxed(body["qmp"])
    for field in ("sysfsMount", "dir"):
        if isinstance(body.get(field), str) and body[field].startswith("/"):
            body[field] = sandboxed(body[field])
    if isinstance(body.get("to"), str) and DAEMON_URL.match(body["to"]):
        body["to"] = TARGET
    if isinstance(body.get("incoming"), str) and MIGRATION_URI.match(body["incoming"]):
        body["incoming"] = "tcp:127.0.0.1:0"
