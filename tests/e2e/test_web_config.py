"""--web.config.file (exporter-toolkit format) with real clients: TLS scrapes, basic auth that
does not tell a wrong password from an unknown user, open probes, mutual TLS, extra headers,
reloads without restart (and a broken reload keeping the last good config), a broken file at
start-up, and a real Prometheus scraping over TLS with basic auth."""

import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import bcrypt
import pytest

from conftest import BIN, ROOT, Exporter, free_port, wait_for

REPORT = str(ROOT / "examples" / "credential-report.csv")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)
    return d


def hash_of(password):
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def write_config(path, pki, users, client_auth="NoClientCert", headers=None):
    config = {"tls_server_config": {"cert_file": str(pki / "server.crt"), "key_file": str(pki / "server.key"),
                                    "client_auth_type": client_auth, "client_ca_file": str(pki / "ca.crt")},
              "basic_auth_users": {u: hash_of(p) for u, p in users.items()}}
    if headers:
        config["http_server_config"] = {"headers": headers}
    path.write_text(json.dumps(config))  # JSON is YAML
    # Make the change visible even within one mtime tick.
    stamp = time.time() + 1
    os.utime(path, (stamp, stamp))


def request(url, pki, user=None, password=None, client_cert=False):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if client_cert:
        ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    req = urllib.request.Request(url)
    if user is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


@pytest.fixture
def tls_exporter(pki, tmp_path):
    config = tmp_path / "web.yml"
    write_config(config, pki, {"prometheus": "s3cret"}, headers={"X-Frame-Options": "deny"})
    exporter = Exporter(["--report.file", REPORT, f"--web.config.file={config}"], dict(os.environ))
    exporter.base = exporter.base.replace("http://", "https://")
    wait_for("TLS listener", lambda: request(exporter.base + "/-/ready", pki)[0] == 200)
    yield exporter, config
    assert exporter.stop() == 0


def test_tls_scrape_with_basic_auth(tls_exporter, pki):
    exporter, _ = tls_exporter
    status, headers, body = request(exporter.base + "/metrics", pki, "prometheus", "s3cret")
    assert status == 200
    assert 'aws_iam_users{account_id="123456789012"} 7' in body
    assert headers.get("x-frame-options") == "deny"


def test_wrong_or_missing_credentials_get_the_same_401(tls_exporter, pki):
    exporter, _ = tls_exporter
    answers = [request(exporter.base + "/metrics", pki, *creds) for creds in
               [(None, None), ("prometheus", "wrong"), ("nobody", "s3cret"), ("prometheus", "")]]
    assert {a[0] for a in answers} == {401}
    assert {a[2] for a in answers} == {"Unauthorized\n"}, "the answer does not say which part was wrong"
    assert all(a[1].get("www-authenticate", "").startswith("Basic") for a in answers)
    assert request(exporter.base + "/", pki)[0] == 401, "the landing page needs auth too"


def test_probes_stay_open(tls_exporter, pki):
    exporter, _ = tls_exporter
    assert request(exporter.base + "/-/healthy", pki)[0] == 200
    assert request(exporter.base + "/-/ready", pki)[0] == 200


def test_plain_http_is_refused(tls_exporter):
    exporter, _ = tls_exporter
    plain = exporter.base.replace("https://", "http://") + "/metrics"
    with pytest.raises((urllib.error.URLError, OSError, http.client.HTTPException)):
        urllib.request.urlopen(plain, timeout=5).read()


def test_reload_without_restart_and_broken_reload_keeps_last_good(tls_exporter, pki):
    exporter, config = tls_exporter
    write_config(config, pki, {"grafana": "n3w"})
    wait_for("new user", lambda: request(exporter.base + "/metrics", pki, "grafana", "n3w")[0] == 200)
    assert request(exporter.base + "/metrics", pki, "prometheus", "s3cret")[0] == 401, "old user removed"
    config.write_text("basic_auth_users: [\n")
    stamp = time.time() + 2
    os.utime(config, (stamp, stamp))
    # The files are re-read by a background task (never on the request path): wait for it.
    wait_for("the broken reload", lambda: "web configuration not reloaded" in exporter.logs())
    assert request(exporter.base + "/metrics", pki, "grafana", "n3w")[0] == 200, "last good config kept"


def test_mutual_tls(pki, tmp_path):
    config = tmp_path / "web.yml"
    write_config(config, pki, {}, client_auth="RequireAndVerifyClientCert")
    exporter = Exporter(["--report.file", REPORT, f"--web.config.file={config}"], dict(os.environ))
    base = exporter.base.replace("http://", "https://")
    try:
        wait_for("mTLS listener", lambda: request(base + "/-/healthy", pki, client_cert=True)[0] == 200)
        assert request(base + "/metrics", pki, client_cert=True)[0] == 200
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            request(base + "/metrics", pki, client_cert=False)
    finally:
        assert exporter.stop() == 0


def test_broken_file_stops_start_up_with_a_clear_error(tmp_path):
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n")
    result = subprocess.run([str(BIN), "--report.file", REPORT, f"--web.config.file={config}",
                             f"--web.listen-address=127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "--web.config.file" in result.stderr and "nonexistent.crt" in result.stderr, result.stderr


def test_prometheus_scrapes_over_tls_with_basic_auth(tls_exporter, pki, tmp_path):
    assert shutil.which("prometheus")
    exporter, _ = tls_exporter
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "iam-mfa-exporter", "scheme": "https",
                            "tls_config": {"ca_file": str(pki / "ca.crt")},
                            "basic_auth": {"username": "prometheus", "password": "s3cret"},
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}]}))
    log = open(tmp_path / "prometheus.log", "w")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        def users():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=aws_iam_users", timeout=5) as r:
                result = json.loads(r.read())["data"]["result"]
            return result[0]["value"][1] if result else None

        assert wait_for("a TLS + basic auth scrape", users, timeout=60) == "7"
    finally:
        prom.terminate()
        prom.wait(timeout=20)
        log.close()


def plain_get(port, path, user=None, password=None, timeout=10):
    """(status, seconds) of one GET over a new connection."""
    headers = {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.monotonic() - start


@pytest.fixture
def auth_exporter(tmp_path, request):
    """Plain HTTP with basic auth: one user whose bcrypt hash has the cost given as the param."""
    cost, extra = request.param
    config = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=cost)).decode()
    config.write_text(json.dumps({"basic_auth_users": {"prometheus": hashed}}))
    exporter = Exporter(["--report.file", REPORT, f"--web.config.file={config}", *extra], dict(os.environ))
    wait_for("listener", lambda: plain_get(exporter.port, "/-/ready")[0] == 200)
    yield exporter
    assert exporter.stop() == 0


@pytest.mark.parametrize("auth_exporter", [(12, [])], indirect=True)
def test_wrong_passwords_do_not_stall_probes_or_scrapes(auth_exporter):
    """16 clients send wrong passwords (each one new, so no cache helps) at a cost-12 hash for
    5 s. bcrypt runs off the async workers, so /-/healthy and Prometheus' authorised scrape keep
    answering within a kubelet's patience (2 s). Prometheus' password was checked once before,
    as it is for an exporter that has been scraped."""
    port = auth_exporter.port
    assert plain_get(port, "/metrics", "prometheus", "s3cret")[0] == 200
    stop = time.monotonic() + 5
    attacks = []

    def attacker(n):
        i = 0
        while time.monotonic() < stop:
            attacks.append(plain_get(port, "/metrics", "prometheus", f"guess-{n}-{i}", timeout=30)[0])
            i += 1

    threads = [threading.Thread(target=attacker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    probes = []
    while time.monotonic() < stop:
        for path, creds in (("/-/healthy", ()), ("/metrics", ("prometheus", "s3cret"))):
            status, took = plain_get(port, path, *creds)
            assert status == 200, (path, status)
            probes.append(took)
        time.sleep(0.05)
    for t in threads:
        t.join()
    probes.sort()
    p99 = probes[int(len(probes) * 0.99) - 1] if len(probes) > 1 else probes[0]
    print(f"\nunder attack: {len(attacks)} wrong-password requests, {len(probes)} probes/scrapes, "
          f"median {probes[len(probes) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {probes[-1] * 1000:.1f} ms")
    assert attacks and set(attacks) <= {401, 503}, set(attacks)
    assert 401 in attacks, "passwords were really checked"
    assert probes[-1] < 2.0, f"slowest probe {probes[-1]:.2f} s"


@pytest.mark.parametrize("auth_exporter", [(14, ["--web.max-requests=2"])], indirect=True)
def test_max_requests_turns_the_third_concurrent_request_away(auth_exporter):
    """Two requests in flight (slow: a cost-14 bcrypt check each) hold both permits; a third
    concurrent request gets 503 at once, the probes stay open, and the permits come back."""
    port = auth_exporter.port
    results = []
    slow = [threading.Thread(target=lambda n=n: results.append(plain_get(port, "/metrics", "prometheus", f"wrong-{n}", timeout=60)))
            for n in range(2)]
    for t in slow:
        t.start()
    time.sleep(0.3)
    status, took = plain_get(port, "/metrics")
    assert status == 503, status
    assert took < 1.0, f"turned away at once, not after {took:.2f} s"
    assert plain_get(port, "/-/healthy")[0] == 200, "probes are not counted"
    for t in slow:
        t.join()
    assert sorted(s for s, _ in results) == [401, 401]
    assert plain_get(port, "/metrics")[0] == 401, "the permits came back"
