"""A small fault-injecting HTTP proxy between the exporter and moto server (moto injects no
faults of its own). It forwards every request and can, per AWS account, answer with an error
instead: it learns which access key belongs to which account from the STS AssumeRole answers it
forwards. It counts the requests it sees, by action."""

import http.client
import http.server
import re
import threading
import urllib.parse
from collections import Counter

ACCESS_DENIED = (403, "AccessDenied", "User is not authorized to perform this action (injected)")


def error_body(code: str, message: str) -> bytes:
    return (f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()


class FaultProxy:
    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.key_account = {}        # access key id -> account id (learned from AssumeRole)
        self.failing_accounts = {}   # account id -> (status, code, message)
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

    def fail_account(self, account_id: str, fault=ACCESS_DENIED):
        with self.lock:
            self.failing_accounts[account_id] = fault

    def heal(self, account_id: str):
        with self.lock:
            self.failing_accounts.pop(account_id, None)

    def handle(self, request, body: bytes):
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = form.get("Action", ["?"])[0]
        key = re.search(r"Credential=([A-Z0-9]+)/", request.headers.get("Authorization", ""))
        with self.lock:
            account = self.key_account.get(key.group(1)) if key else None
            self.calls[(account or "default", action)] += 1
            fault = self.failing_accounts.get(account) if account else None
        if fault:
            status, code, message = fault
            return self.reply(request, status, {"Content-Type": "text/xml"}, error_body(code, message))
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
        headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
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
