#!/usr/bin/env python3
"""An external authentication plugin for kafka-proxy (the exec protocol of the
README's "External authentication"): one JSON object per line on stdin, one
answer per line on stdout, matched by id.

Users come from the AUTH_PLUGIN_USERS environment variable (`user=password,...`).
User "slow" is answered after AUTH_PLUGIN_DELAY seconds (default 30: past any
timeout), so a slow backend can be tested; every answer names the principal
"plugin:<user>". Each request is logged to stderr (never the password).
"""

import json
import os
import sys
import threading
import time

USERS = dict(p.split("=", 1) for p in os.environ.get("AUTH_PLUGIN_USERS", "").split(",") if "=" in p)
DELAY = float(os.environ.get("AUTH_PLUGIN_DELAY", "30"))
lock = threading.Lock()


def answer(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def decide(req):
    user = req.get("user")
    print(f"auth-plugin: request {req.get('id')} for {user} from {req.get('client')}", file=sys.stderr, flush=True)
    if user == "slow":
        time.sleep(DELAY)
    ok = USERS.get(user) == req.get("password")
    reply = {"id": req["id"], "allow": ok}
    if ok:
        reply["principal"] = f"plugin:{user}"
    else:
        reply["reason"] = "bad user or password"
    answer(reply)


for line in sys.stdin:
    line = line.strip()
    if line:
        threading.Thread(target=decide, args=(json.loads(line),), daemon=True).start()
