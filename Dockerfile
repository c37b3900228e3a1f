# Builds the self-contained errorwatch binary and a minimal runtime image.
# Packaging and the install test come with the packaging issue; no Docker engine runs on the
# development machines, so this file is not exercised by the test suite yet.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/ErrorWatch.Cli -c Release -r linux-x64 --self-contained -p:PublishReadyToRun=true -o /out

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /opt/errorwatch
# Needs CAP_SYS_ADMIN (marks) and CAP_DAC_READ_SEARCH (paths), and the host's mount namespace to see host filesystems.
ENTRYPOINT ["/opt/errorwatch/errorwatch"]
CMD ["run"]
