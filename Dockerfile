# ErrorWatch container image: the same NativeAOT executable the Debian package and install.sh ship
# (packaging/publish.sh), on a small Debian 12 runtime base.
#
#   docker build -t errorwatch:0.1.0 .
#   docker build --target symbols --output type=local,dest=symbols .   # its debug symbols, for gdb
#
# Running it needs privileges close to the host's root, listed with the reasons in deploy/README.md
# (Containers), with deploy/docker-compose.yml and deploy/kubernetes/daemonset.yaml. This file is not
# built by the test suite: the development machines have no container engine and no registry to
# pull base images from. The executable it copies is the one tests/ErrorWatch.Tests/Install/
# installs into a booted Debian 12 (the same base as below) and checks end to end.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# NativeAOT links with the platform's C toolchain: gcc (clang would do too) with libc6-dev's startup
# files, and binutils' objcopy to split off the symbols. zlib1g-dev, which Microsoft's prerequisites
# list, is not needed: the .NET 10 NativeAOT runtime pack carries its own libz.a (zlib-ng), linked in
# statically (UseSystemZlib stays false).
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev binutils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The SDK image is Ubuntu 24.04 (glibc 2.39, .NET 10 has no Debian image) and the executable links
# against its libc: refuse one that asks for a symbol version newer than bookworm's glibc 2.36.
RUN packaging/publish.sh /out \
    && newest=$(objdump -T /out/errorwatch | sed -n 's/.*GLIBC_\([0-9][0-9.]*\).*/\1/p' | sort -V | tail -n 1) \
    && if [ "$(printf '%s\n2.36\n' "$newest" | sort -V | tail -n 1)" != 2.36 ]; then \
         echo "errorwatch needs glibc $newest, debian:bookworm has 2.36" >&2; exit 1; fi

# The DWARF symbols (publish.sh's /out.dbg), apart from the image: what errorwatch-dbgsym installs.
FROM scratch AS symbols
COPY --from=build /out.dbg/ /

FROM debian:bookworm-slim
# What the executable needs (ldd, readelf -d): libc.so.6 and libm.so.6 only, in the base image. It
# loads the rest with dlopen when a feature first needs it: libsystemd.so.0 for journal entries,
# sd-bus (the D-Bus service) and sd_notify; libssl.so.3 (with ca-certificates for the trust store)
# only for OTLP export over https. No libstdc++, libgcc_s, ICU or .NET runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsystemd0 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/errorwatch /usr/lib/errorwatch/errorwatch
COPY deploy/errorwatch.conf.example /etc/errorwatch/errorwatch.conf
RUN ln -s ../lib/errorwatch/errorwatch /usr/bin/errorwatch \
    && mkdir -p /etc/errorwatch/errorwatch.conf.d /etc/errorwatch/hooks.d \
    && install -d -m 0700 /var/lib/errorwatch
# Reports and the baseline of what was already reported: keep them across container restarts.
VOLUME ["/var/lib/errorwatch"]
EXPOSE 9464
ENTRYPOINT ["/usr/lib/errorwatch/errorwatch"]
# JSON Lines on stdout for `docker logs`; in a container's own network namespace the metrics
# endpoint must listen beyond loopback to be scraped (publish the port to the host's loopback).
CMD ["run", "--output", "json", "--metrics-listen", "0.0.0.0:9464"]
