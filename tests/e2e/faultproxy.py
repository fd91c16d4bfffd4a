"""A small fault-injecting HTTP proxy between the exporter and moto server (moto injects no
faults of its own). It forwards every request and, following rules, answers some with a fault
instead: an AWS error (Throttling, ServiceFailure, LimitExceeded, ReportInProgress,
AccessDenied), a delay, a reset connection or a truncated body. Rules match an action and/or an
account (learned from the STS AssumeRole answers it forwards; "default" for the base
credentials) and may apply a limited number of times. It counts the requests it sees."""

import http.client
import http.server
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter

ACCESS_DENIED = ("error", 403, "AccessDenied", "User is not authorized to perform this action (injected)")
THROTTLING = ("error", 400, "Throttling", "Rate exceeded (injected)")
SERVICE_FAILURE = ("error", 500, "ServiceFailure", "Internal failure (injected)")
LIMIT_EXCEEDED = ("error", 409, "LimitExceeded", "Too many reports being generated (injected)")
REPORT_IN_PROGRESS = ("error", 404, "ReportInProgress", "The report is still being generated (injected)")
RESET = ("reset",)
TRUNCATE = ("truncate",)


GENERATE_COMPLETE = (b'<GenerateCredentialReportResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                     b"<GenerateCredentialReportResult><State>COMPLETE</State></GenerateCredentialReportResult>"
                     b"<ResponseMetadata><RequestId>frozen</RequestId></ResponseMetadata></GenerateCredentialReportResponse>")


def delay(seconds):
    return ("delay", seconds)


def error_body(code: str, message: str) -> bytes:
    return (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()


class FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.key_account = {}        # access key id -> account id (learned from AssumeRole)
        self.rules = []              # [{"account", "action", "fault", "times"}]
        self.rewrites = {}           # action -> function(body bytes) -> body bytes
        self.freezing = False        # model AWS's 4-hour report window (see freeze_report)
        self.frozen = None           # the first GetCredentialReport answer while freezing
        self.calls = Counter()       # (account or "default", action) -> count
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.handle(self, body)

            def do_GET(self):
                proxy.handle(self, b"")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def inject(self, fault, action=None, account=None, times=None):
        """Answers matching requests with `fault`, `times` times (None: until healed)."""
        with self.lock:
            self.rules.append({"account": account, "action": action, "fault": fault, "times": times})

    def fail_account(self, account_id: str, fault=ACCESS_DENIED):
        self.inject(fault, account=account_id)

    def rewrite(self, action, change):
        """Passes `action`'s successful answers through `change(body) -> body` (to model what AWS
        answers and moto does not)."""
        with self.lock:
            self.rewrites[action] = change

    def freeze_report(self):
        """Models AWS's 4-hour window, which moto (rebuilding its report on every call) lacks: the
        first GetCredentialReport answer from now on is kept and returned to every later call, and
        every later GenerateCredentialReport answers COMPLETE at once. Live changes in IAM then
        reach the exporter only through its live checks."""
        with self.lock:
            self.freezing, self.frozen = True, None

    def heal(self, account_id=None):
        """Removes the rules of one account, or all rules."""
        with self.lock:
            self.rules = [r for r in self.rules if account_id is not None and r["account"] != account_id]

    def count(self, action=None) -> int:
        with self.lock:
            return sum(n for (_, a), n in self.calls.items() if action is None or a == action)

    def _fault_for(self, account, action):
        for rule in self.rules:
            if rule["account"] not in (None, account) or rule["action"] not in (None, action):
                continue
            if rule["times"] is not None:
                if rule["times"] <= 0:
                    continue
                rule["times"] -= 1
            return rule["fault"]
        return None

    def handle(self, request, body: bytes):
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = form.get("Action", ["?"])[0]
        key = re.search(r"Credential=([A-Z0-9]+)/", request.headers.get("Authorization", ""))
        with self.lock:
            account = (self.key_account.get(key.group(1)) if key else None) or "default"
            self.calls[(account, action)] += 1
            fault = self._fault_for(account, action)
        with self.lock:
            frozen = self.frozen if self.freezing else None
        if frozen is not None and action == "GetCredentialReport":
            return self.reply(request, 200, {"Content-Type": "text/xml"}, frozen)
        if frozen is not None and action == "GenerateCredentialReport":
            return self.reply(request, 200, {"Content-Type": "text/xml"}, GENERATE_COMPLETE)
        if fault and fault[0] == "error":
            _, status, code, message = fault
            return self.reply(request, status, {"Content-Type": "text/xml"}, error_body(code, message))
        if fault and fault[0] == "delay":
            time.sleep(fault[1])
        if fault and fault[0] == "reset":
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return None
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(request.command, request.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if action == "AssumeRole" and resp.status == 200:
            role = form.get("RoleArn", [""])[0].split(":")
            learned = re.search(rb"<AccessKeyId>([A-Z0-9]+)</AccessKeyId>", data)
            if len(role) > 4 and learned:
                with self.lock:
                    self.key_account[learned.group(1).decode()] = role[4]
        with self.lock:
            change = self.rewrites.get(action)
            if self.freezing and self.frozen is None and action == "GetCredentialReport" and resp.status == 200:
                self.frozen = data
        if change and resp.status == 200:
            data = change(data)
        headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
        if fault and fault[0] == "truncate":
            # Promise the whole body, send half of it, hang up.
            request.send_response(resp.status)
            for k, v in headers.items():
                request.send_header(k, v)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data[: len(data) // 2])
            request.wfile.flush()
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return None
        self.reply(request, resp.status, headers, data)

    @staticmethod
    def reply(request, status, headers, data):
        request.send_response(status)
        for k, v in headers.items():
            request.send_header(k, v)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
