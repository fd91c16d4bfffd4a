# syntax=docker/dockerfile:1
#
# Build:  docker build -t iam-mfa-exporter --build-arg REVISION=$(git rev-parse --short=12 HEAD) .
# Run:    docker run --rm -p 10027:10027 -e AWS_REGION -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#           iam-mfa-exporter
#
# BUILD_STAGE and RUNTIME_IMAGE let tests build the runtime stage from a binary built on the host
# and a locally made base image (tests/e2e/test_container.py); leave them alone otherwise.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
ARG BUILD_STAGE=build

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, so they stay cached while only our code changes.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > benches/parse.rs && echo 'fn main() {}' > benches/encode.rs \
 && cargo build --release --locked --bin iam-mfa-exporter \
 && rm -rf src benches
COPY src ./src
COPY benches ./benches
ARG REVISION=unknown
ENV IAM_MFA_EXPORTER_REVISION=${REVISION}
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin iam-mfa-exporter \
 && install -D -m 0755 target/release/iam-mfa-exporter /out/iam-mfa-exporter

# The binary, from the build stage (or, in tests, from an image holding a host-built one).
FROM ${BUILD_STAGE} AS binary

# distroless/cc: glibc, CA certificates (the AWS SDK verifies TLS against the system store),
# no shell, user nonroot (65532) by default; we run as 65534 like the Helm chart.
FROM ${RUNTIME_IMAGE} AS runtime
ARG REVISION=unknown
LABEL org.opencontainers.image.title="iam-mfa-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS IAM MFA compliance, from the IAM credential report" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/iam-mfa-exporter/iam-mfa-exporter"
COPY --from=binary /out/iam-mfa-exporter /usr/local/bin/iam-mfa-exporter
USER 65534:65534
EXPOSE 10027
ENTRYPOINT ["/usr/local/bin/iam-mfa-exporter"]
