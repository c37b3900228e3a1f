# ErrorWatch container image: the same self-contained ReadyToRun publish the Debian package and
# install.sh ship (packaging/publish.sh), on a small Debian 12 runtime base.
#
#   docker build -t errorwatch:0.1.0 .
#
# Running it needs privileges close to the host's root, listed with the reasons in deploy/README.md
# (Containers), with deploy/docker-compose.yml and deploy/kubernetes/daemonset.yaml. This file is not
# built by the test suite: the development machines have no container engine and no registry to
# pull base images from. The publish output it copies is the one tests/ErrorWatch.Tests/Install/
# installs into a booted Debian 12 (the same base as below) and checks end to end.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN packaging/publish.sh /out

FROM debian:bookworm-slim
# libsystemd0: journal entries, sd-bus (the D-Bus service) and sd_notify, loaded at run time;
# libssl3 and ca-certificates: only for OTLP export over https. libc6, libgcc-s1 and libstdc++6,
# all the runtime itself links, are in the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsystemd0 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /usr/lib/errorwatch
COPY deploy/errorwatch.conf.example /etc/errorwatch/errorwatch.conf
RUN ln -s ../lib/errorwatch/errorwatch /usr/bin/errorwatch \
    && mkdir -p /etc/errorwatch/errorwatch.conf.d /etc/errorwatch/hooks.d \
    && install -d -m 0700 /var/lib/errorwatch
# What the unit sets: no .NET diagnostics socket (a read-only root has no writable /tmp for it).
ENV DOTNET_EnableDiagnostics=0
# Reports and the baseline of what was already reported: keep them across container restarts.
VOLUME ["/var/lib/errorwatch"]
EXPOSE 9464
ENTRYPOINT ["/usr/lib/errorwatch/errorwatch"]
# JSON Lines on stdout for `docker logs`; in a container's own network namespace the metrics
# endpoint must listen beyond loopback to be scraped (publish the port to the host's loopback).
CMD ["run", "--output", "json", "--metrics-listen", "0.0.0.0:9464"]
