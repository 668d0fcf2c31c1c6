"""Integration test of one shop component, run by the `integration-tests` check.

Infrastream passes the running application's base URL in $APP_URL and the version it
expects in $INFRASTREAM_VERSION. Exit 0 means the check passed.
"""

import json
import os
import sys
import urllib.request

url = os.environ["APP_URL"].rstrip("/") + "/healthz"
with urllib.request.urlopen(url, timeout=10) as response:
    payload = json.load(response)
expected = os.environ.get("INFRASTREAM_VERSION")
if not payload.get("ok"):
    sys.exit(f"FAIL {url}: not ok: {payload}")
if expected and payload.get("version") != expected:
    sys.exit(f"FAIL {url}: runs {payload.get('version')}, expected {expected}")
print(f"PASS {url}: {payload['component']} {payload['version']}")
