"""The Dockerfile, checked by real tools without a Docker engine: hadolint (no warnings), then
buildah builds the Dockerfile's *runtime* stage from the binary built on the host and a base image
made here (glibc and CA certificates copied from the host: no image can be pulled), inspects the
image config and runs the binary inside it with `buildah run --isolation chroot`.

Set IAM_MFA_EXPORTER_SKIP_CONTAINER=1 to skip the buildah part on a machine where buildah cannot
run (it is installed by scripts/install-test-deps.sh and works in CI)."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import BIN, ROOT, VENV_BIN

TAG = f"localhost/iam-mfa-exporter:test-{uuid.uuid4().hex[:8]}"


def run(*args, **kw):
    result = subprocess.run(args, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result.stdout


def test_hadolint_has_no_warnings():
    run(str(VENV_BIN / "hadolint"), "--failure-threshold", "warning", str(ROOT / "Dockerfile"))


def test_hadolint_catches_problems(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\n")
    result = subprocess.run([str(VENV_BIN / "hadolint"), "--failure-threshold", "warning", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0


def test_dockerignore_keeps_the_context_small():
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*" and "!src/" in lines and "!Cargo.lock" in lines


def shared_libraries(binary):
    """The host paths of the libraries the binary loads (ldd), the loader included."""
    out = run("ldd", str(binary))
    paths = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            paths.append(parts[2])
        elif parts and parts[0].startswith("/"):
            paths.append(parts[0])
    return paths


def image_from_dir(directory, tag):
    container = run("buildah", "from", "scratch").strip()
    try:
        run("buildah", "copy", container, str(directory), "/")
        run("buildah", "commit", "-q", container, tag)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    if os.environ.get("IAM_MFA_EXPORTER_SKIP_CONTAINER") == "1":
        pytest.skip("IAM_MFA_EXPORTER_SKIP_CONTAINER=1")
    assert shutil.which("buildah"), "buildah is missing: run scripts/install-test-deps.sh"
    tmp = tmp_path_factory.mktemp("image")
    # A stand-in for distroless/cc: the binary's shared libraries, CA certificates, passwd.
    rootfs = tmp / "rootfs"
    for lib in shared_libraries(BIN):
        target = rootfs / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(lib), target)
    (rootfs / "etc" / "ssl" / "certs").mkdir(parents=True)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc" / "ssl" / "certs")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0::/root:/sbin/nologin\nnobody:x:65534:65534::/nonexistent:/sbin/nologin\n")
    # The host-built binary where the build stage leaves it.
    binary = tmp / "binary"
    (binary / "out").mkdir(parents=True)
    shutil.copy(BIN, binary / "out" / "iam-mfa-exporter")
    suffix = uuid.uuid4().hex[:8]
    base, built = f"localhost/iam-mfa-test-runtime:{suffix}", f"localhost/iam-mfa-test-binary:{suffix}"
    image_from_dir(rootfs, base)
    image_from_dir(binary, built)
    try:
        run("buildah", "bud", "--isolation", "chroot", "--pull-never", "--target", "runtime",
            "--build-arg", f"BUILD_STAGE={built}", "--build-arg", f"RUNTIME_IMAGE={base}",
            "--build-arg", "REVISION=0123456789ab", "-t", TAG, "-f", str(ROOT / "Dockerfile"), str(ROOT))
        yield TAG
    finally:
        for tag in (TAG, base, built):
            subprocess.run(["buildah", "rmi", "-f", tag], capture_output=True)


def test_image_config(image):
    config = json.loads(run("buildah", "inspect", "--type", "image", image))["OCIv1"]["config"]
    assert config["User"] == "65534:65534"
    assert config["Entrypoint"] == ["/usr/local/bin/iam-mfa-exporter"]
    assert "10027/tcp" in config["ExposedPorts"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "iam-mfa-exporter"
    assert labels["org.opencontainers.image.revision"] == "0123456789ab"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] in (ROOT / "Cargo.toml").read_text()


def test_binary_runs_in_the_image(image, tmp_path):
    container = run("buildah", "from", "--pull-never", image).strip()
    try:
        assert run("buildah", "run", "--isolation", "chroot", container, "--",
                   "/usr/local/bin/iam-mfa-exporter", "--version").startswith("iam-mfa-exporter ")
        run("buildah", "copy", container, str(ROOT / "examples" / "credential-report.csv"), "/tmp/report.csv")
        out = run("buildah", "run", "--isolation", "chroot", container, "--",
                  "/usr/local/bin/iam-mfa-exporter", "--once", "--report.file", "/tmp/report.csv")
        assert 'aws_iam_console_users_without_mfa{account_id="123456789012"} 3' in out
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True)
