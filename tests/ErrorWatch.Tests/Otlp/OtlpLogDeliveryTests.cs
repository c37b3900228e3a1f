using ErrorWatch.Publishing.Metrics;
using ErrorWatch.Publishing.Otlp;
using ErrorWatch.Publishing.Otlp.Proto;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using ErrorWatch.Tests.Recovery;
using ErrorWatch.Tests.Store;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ErrorWatch.Tests.Otlp;

/// <summary>
/// OTLP log records delivered from the store (Publishing/Otlp) to a real receiver over gRPC and
/// OTLP/HTTP: once each, in store order, through an outage and a refusal, replayed after a restart;
/// and the receiver's .proto definitions checked against the OpenTelemetry SDK's own exporters, so
/// that a wrong field number in them could not pass unnoticed on both sides.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class OtlpLogDeliveryTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly string _state = Directory.CreateTempSubdirectory("errorwatch-otlp-").FullName;
    private readonly LogCapture _log = new();

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private OtlpLogDelivery Delivery(OtlpReceiver receiver, string protocol, string? headers = null) =>
        new(OtlpDestination.Resolve(new TelemetryOptions { OtlpEndpoint = receiver.Endpoint(protocol), OtlpProtocol = protocol, OtlpHeaders = headers }, _ => null)!,
            [new("service.name", "errorwatch"), new("host.name", "test-host")], _log.Logger);

    /// <summary>What the daemon does at start: a new cursor stands at the store's end.</summary>
    private static DeliveryCursor Follow(OtlpLogDelivery delivery, string state, ReportStore store, StorePosition? cursorAt = null)
    {
        var cursor = DeliveryCursor.Open(state, delivery.Name, Serilog.Core.Logger.None);
        if (cursor.Position is null)
            cursor.Advance(cursorAt ?? store.End!.Value);
        delivery.Follow(state, cursor, () => store.End, store.End);
        return cursor;
    }

    private static IEnumerable<ulong> Inodes(OtlpReceiver receiver) =>
        receiver.LogRecords.Select(r => ulong.Parse(r["errorwatch.report.object.inode"], System.Globalization.CultureInfo.InvariantCulture));

    [Theory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public void Stored_reports_reach_the_receiver_once_each_in_order_with_every_field_and_the_cursor_follows(string protocol)
    {
        using var receiver = new OtlpReceiver();
        using var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 4 }, Serilog.Core.Logger.None);
        using var delivery = Delivery(receiver, protocol);
        using var cursor = Follow(delivery, _state, store);
        for (var i = 0; i < 10; i++)
        {
            var report = ReportStoreTests.Report(i);
            store.Append(report);
            delivery.Publish(report);
        }
        receiver.WaitFor("10 log records", r => r.LogRecords.Count >= 10, Patience);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (ulong)i), Inodes(receiver));
        Assert.All(receiver.Logs, l => Assert.Equal(protocol, l.Transport));
        Assert.True(receiver.Logs.Count < 10, "each report went alone: records are meant to be batched");

        var record = receiver.LogRecords[3];
        var stored = new List<CorruptionReport>();
        StoredReports.Query(_state, new ReportQuery(), (in StoredRecord r) =>
        {
            stored.Add(r.Report());
            return true;
        });
        var report3 = stored[3];
        Assert.Equal(report3.Summary, record.Record.Body.StringValue);
        Assert.Equal((ulong)(report3.Time - DateTimeOffset.UnixEpoch).Ticks * 100, record.Record.TimeUnixNano);
        Assert.Equal(Severity.Critical, report3.Severity);
        Assert.Equal((SeverityNumber.Fatal, "critical"), (record.Record.SeverityNumber, record.Record.SeverityText));
        Assert.Equal(report3.Id, record["errorwatch.report.id"]);
        Assert.Equal("/dev/sdb1", record["errorwatch.report.filesystem.device"]);
        Assert.Equal(report3.Error.Name, record["errorwatch.report.error.name"]);
        Assert.Equal(AnyValue.ValueOneofCase.IntValue, record.Record.Attributes.Single(a => a.Key == "errorwatch.report.error.count").Value.ValueCase);
        Assert.Equal(AnyValue.ValueOneofCase.ArrayValue, record.Record.Attributes.Single(a => a.Key == "errorwatch.report.filesystem.mountpoints").Value.ValueCase);
        Assert.DoesNotContain(record.Record.Attributes, a => a.Key == "errorwatch.report.filesystem.label"); // null: left out
        Assert.False(record.Replayed);
        Assert.Equal("errorwatch", record.Resource["service.name"]);
        Assert.Equal(OtlpLogRecords.ScopeName, record.Scope);
        // Every field the JSON has, by the same dotted name.
        using (var json = System.Text.Json.JsonDocument.Parse(ReportJson.ToUtf8(ReportStoreTests.Report(3))))
            foreach (var name in JsonLeaves(json.RootElement, OtlpLogRecords.Prefix))
                Assert.True(record.Attributes.ContainsKey(name), $"no attribute {name}");

        var deadline = DateTime.UtcNow + Patience;
        while (cursor.Position != store.End && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Assert.Equal(store.End, cursor.Position);
    }

    private static IEnumerable<string> JsonLeaves(System.Text.Json.JsonElement e, string prefix) => e.ValueKind switch
    {
        System.Text.Json.JsonValueKind.Object => e.EnumerateObject().SelectMany(p => JsonLeaves(p.Value, prefix + "." + p.Name)),
        System.Text.Json.JsonValueKind.Null => [],
        _ => [prefix],
    };

    [Theory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public void An_outage_keeps_the_records_in_the_store_and_they_follow_once_when_the_collector_answers_again(string protocol)
    {
        using var receiver = new OtlpReceiver { Unavailable = true };
        using var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None);
        using var delivery = Delivery(receiver, protocol);
        using var cursor = Follow(delivery, _state, store);
        var start = cursor.Position;
        for (var i = 0; i < 5; i++)
        {
            var report = ReportStoreTests.Report(i);
            store.Append(report);
            delivery.Publish(report);
        }
        receiver.WaitFor("two refused attempts", r => r.Refusals >= 2, Patience);
        Assert.Equal(start, cursor.Position);
        Assert.Equal(1, _log.Messages().Count(m => m.Contains("did not take them")));

        receiver.Unavailable = false;
        receiver.WaitFor("5 log records", r => r.LogRecords.Count >= 5, Patience);
        Thread.Sleep(300);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => (ulong)i), Inodes(receiver));
        Assert.Single(_log.Messages(), m => m.Contains("takes them again"));
    }

    [Fact]
    public void A_collector_gone_and_back_on_its_port_gets_every_record_and_the_next_start_sends_what_was_left_marked_replayed()
    {
        var receiver = new OtlpReceiver();
        var (grpcPort, httpPort) = (receiver.GrpcPort, receiver.HttpPort);
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
        using (var delivery = Delivery(receiver, "grpc"))
        {
            using var cursor = Follow(delivery, _state, store);
            store.Append(ReportStoreTests.Report(0));
            delivery.Publish(ReportStoreTests.Report(0));
            receiver.WaitFor("the first record", r => r.LogRecords.Count == 1, Patience);
            receiver.Dispose();
            for (var i = 1; i < 4; i++)
            {
                store.Append(ReportStoreTests.Report(i));
                delivery.Publish(ReportStoreTests.Report(i));
            }
            Thread.Sleep(1500);
            receiver = new OtlpReceiver(grpcPort, httpPort);
            receiver.WaitFor("records 1-3 after the outage", r => r.LogRecords.Count >= 3, Patience);
            Assert.Equal([1UL, 2, 3], Inodes(receiver));
            // Stored while the collector is gone, then stopped: left for the next start.
            receiver.Dispose();
            for (var i = 4; i < 6; i++)
            {
                store.Append(ReportStoreTests.Report(i));
                delivery.Publish(ReportStoreTests.Report(i));
            }
            delivery.Stop(TimeSpan.FromMilliseconds(300));
        }

        using var again = new OtlpReceiver(grpcPort, httpPort);
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
        using (var delivery = Delivery(again, "grpc"))
        using (Follow(delivery, _state, store))
        {
            again.WaitFor("the two records left", r => r.LogRecords.Count >= 2, Patience);
            store.Append(ReportStoreTests.Report(6));
            delivery.Publish(ReportStoreTests.Report(6));
            again.WaitFor("the new record", r => r.LogRecords.Count >= 3, Patience);
        }
        Assert.Equal([4UL, 5, 6], Inodes(again));
        Assert.Equal([true, true, false], again.LogRecords.Select(r => r.Replayed));
    }

    [Theory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public void Headers_are_sent_and_a_collector_that_refuses_them_is_named_without_dropping_a_record(string protocol)
    {
        using var receiver = new OtlpReceiver();
        receiver.Require("authorization", "Bearer s3cret token");
        receiver.Require("x-tenant", "ops");
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
        {
            using (var wrong = Delivery(receiver, protocol, "x-tenant=ops"))
            using (Follow(wrong, _state, store))
            {
                store.Append(ReportStoreTests.Report(1));
                wrong.Publish(ReportStoreTests.Report(1));
                receiver.WaitFor("a refusal", r => r.Refusals >= 1, Patience);
                Thread.Sleep(200);
            }
            var refused = Assert.Single(_log.Messages(), m => m.Contains("refused them"));
            Assert.Contains(protocol == "grpc" ? "gRPC UNAUTHENTICATED" : "HTTP 401", refused);
            Assert.DoesNotContain("s3cret", string.Join("\n", _log.Messages()));
            Assert.Empty(receiver.LogRecords);

            // Fixed (the configuration, then a restart): the record the refusal left in the store goes now.
            using var right = Delivery(receiver, protocol, "Authorization=Bearer%20s3cret%20token, x-tenant=ops");
            using (Follow(right, _state, store))
                receiver.WaitFor("the record", r => r.LogRecords.Count == 1, Patience);
        }
        var received = Assert.Single(receiver.Logs);
        Assert.Equal("Bearer s3cret token", received.Headers["authorization"]);
        Assert.Equal("ops", received.Headers["x-tenant"]);
    }

    [Theory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public void A_partial_success_is_named_with_the_collectors_reason_and_the_rejected_records_are_not_sent_again(string protocol)
    {
        using var receiver = new OtlpReceiver { RejectLogRecords = 1 };
        using var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None);
        using var delivery = Delivery(receiver, protocol);
        using var cursor = Follow(delivery, _state, store);
        store.Append(ReportStoreTests.Report(1));
        delivery.Publish(ReportStoreTests.Report(1));
        receiver.WaitFor("the record", r => r.LogRecords.Count == 1, Patience);
        var deadline = DateTime.UtcNow + Patience;
        while (cursor.Position != store.End && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Thread.Sleep(1500); // a retry would have come by now
        Assert.Single(receiver.LogRecords);
        Assert.Equal(store.End, cursor.Position);
        var warning = Assert.Single(_log.Messages(), m => m.Contains("rejected"));
        Assert.Contains("record too old", warning);
    }

    [Theory]
    [InlineData("x-a=1,x-b=two%20words", "x-a:1|x-b:two words")]
    [InlineData(" Authorization = Basic abc== , ", "authorization:Basic abc==")]
    [InlineData("", "")]
    public void Header_lists_parse_as_OTEL_EXPORTER_OTLP_HEADERS_does(string text, string expected)
    {
        var headers = OtlpDestination.ParseHeaders(text, out var problem);
        Assert.Null(problem);
        Assert.Equal(expected, string.Join("|", headers!.Select(h => $"{h.Key}:{h.Value}")));
    }

    [Theory]
    [InlineData("novalue", "header 1 is not name=value")]
    [InlineData("x-a=1,bad name=secret", "header 2 is not name=value")]
    [InlineData("x-a=line%0Abreak", "line break")]
    public void A_malformed_header_list_is_named_by_position_never_by_its_secret_value(string text, string expected)
    {
        Assert.Null(OtlpDestination.ParseHeaders(text, out var problem));
        Assert.Contains(expected, problem);
        Assert.DoesNotContain("secret", problem);
    }

    [Fact]
    public void The_environment_gives_the_endpoint_protocol_and_headers_when_the_configuration_does_not()
    {
        var env = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://collector:4318/",
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_EXPORTER_OTLP_HEADERS"] = "x-a=1",
        };
        var d = OtlpDestination.Resolve(new TelemetryOptions(), n => env.GetValueOrDefault(n))!;
        Assert.Equal("http://collector:4318/v1/logs", d.Endpoint.ToString());
        Assert.False(d.Grpc);
        Assert.Equal("x-a", Assert.Single(d.Headers).Key);

        env["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"] = "http://logs:9999/custom";
        Assert.Equal("http://logs:9999/custom", OtlpDestination.Resolve(new TelemetryOptions(), n => env.GetValueOrDefault(n))!.Endpoint.ToString());
        // The configuration wins; gRPC takes the endpoint as it is.
        var configured = OtlpDestination.Resolve(new TelemetryOptions { OtlpEndpoint = "http://c:4317", OtlpProtocol = "grpc" }, n => env.GetValueOrDefault(n))!;
        Assert.Equal(("http://c:4317/", true), (configured.Endpoint.ToString(), configured.Grpc));
        Assert.Null(OtlpDestination.Resolve(new TelemetryOptions(), _ => null));
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "thrift";
        env.Remove("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
        Assert.Contains("thrift", Assert.Throws<FormatException>(() => OtlpDestination.Resolve(new TelemetryOptions(), n => env.GetValueOrDefault(n))).Message);
    }

    /// <summary>
    /// The receiver's messages read what the OpenTelemetry SDK's own exporters write (an encoder
    /// independent of ErrorWatch's): body, severity, typed attributes, resource, and a counter's sum.
    /// </summary>
    [Theory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public void The_receivers_proto_definitions_read_what_the_OpenTelemetry_SDK_exporters_write(string protocol)
    {
        using var receiver = new OtlpReceiver();
        void Configure(OtlpExporterOptions e, string signal)
        {
            e.Protocol = protocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
            e.Endpoint = new Uri(protocol == "grpc" ? receiver.GrpcEndpoint : $"{receiver.HttpEndpoint}/{signal}");
            e.Headers = "x-tenant=ops";
        }
        var resource = ResourceBuilder.CreateEmpty().AddAttributes([new("service.name", "conformance")]);
        using (var logs = LoggerFactory.Create(b => b.AddOpenTelemetry(o =>
               {
                   o.SetResourceBuilder(resource);
                   o.AddOtlpExporter(e => Configure(e, "v1/logs"));
               })))
        {
            logs.CreateLogger("Conformance").Log(LogLevel.Error, default,
                new List<KeyValuePair<string, object?>> { new("text", "EUCLEAN"), new("number", 42L), new("flag", true), new("{OriginalFormat}", "the body") },
                null, (_, _) => "the body");
        }
        using (var meter = new System.Diagnostics.Metrics.Meter("Conformance"))
        {
            using var meters = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter("Conformance")
                .AddOtlpExporter((e, r) =>
                {
                    Configure(e, "v1/metrics");
                    r.TemporalityPreference = MetricReaderTemporalityPreference.Cumulative;
                }).Build();
            meter.CreateCounter<long>("conformance.errors").Add(5, new KeyValuePair<string, object?>("system.device", "/dev/sdz"));
            meters.ForceFlush(5000);
        }

        receiver.WaitFor("the SDK's log record and metrics", r => r.LogRecords.Count == 1 && r.LatestTotal("conformance.errors") is not null, Patience);
        var log = Assert.Single(receiver.LogRecords);
        Assert.Equal("the body", log.Record.Body.StringValue);
        Assert.Equal(SeverityNumber.Error, log.Record.SeverityNumber);
        Assert.Equal("EUCLEAN", log["text"]);
        Assert.Equal(AnyValue.ValueOneofCase.IntValue, log.Record.Attributes.Single(a => a.Key == "number").Value.ValueCase);
        Assert.Equal("42", log["number"]);
        Assert.Equal("true", log["flag"]);
        Assert.NotEqual(0UL, log.Record.TimeUnixNano);
        Assert.Equal("conformance", log.Resource["service.name"]);
        Assert.Equal("ops", receiver.Logs[0].Headers["x-tenant"]);
        Assert.Equal(5, receiver.LatestTotal("conformance.errors"));
        var metric = receiver.Metrics.SelectMany(m => m.Request.ResourceMetrics).SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics).First(m => m.Name == "conformance.errors");
        Assert.True(metric.Sum.IsMonotonic);
        Assert.Equal(ErrorWatch.Tests.Otlp.Proto.AggregationTemporality.Cumulative, metric.Sum.AggregationTemporality);
        Assert.Equal("/dev/sdz", OtlpLog.Text(metric.Sum.DataPoints.Single().Attributes.Single(a => a.Key == "system.device").Value));
    }
}
