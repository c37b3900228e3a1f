using System.Net;
using ErrorWatch.Publishing.Otlp.Proto;
using ErrorWatch.Tests.Otlp.Proto;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ErrorWatch.Tests.Otlp;

/// <summary>
/// A real OTLP receiver on loopback, both transports: gRPC (the LogsService and MetricsService
/// compiled by Grpc.Tools from the .proto files, on Kestrel's HTTP/2 cleartext endpoint) and
/// OTLP/HTTP (POST /v1/logs and /v1/metrics of the same protobuf messages, HTTP/1.1). It keeps every
/// request with its headers, can demand headers (refusing as a collector does: gRPC UNAUTHENTICATED,
/// HTTP 401) and can answer "unavailable" (gRPC UNAVAILABLE, HTTP 503) to stand for an overloaded one.
/// Stopped and started again on the same ports, it is a collector outage.
/// </summary>
internal sealed class OtlpReceiver : IAsyncDisposable, IDisposable
{
    private readonly WebApplication _app;
    private readonly Lock _lock = new();
    private readonly List<Received<ExportLogsServiceRequest>> _logs = new();
    private readonly List<Received<ExportMetricsServiceRequest>> _metrics = new();
    private readonly Dictionary<string, string> _required = new();
    private int _refusals;

    public sealed record Received<T>(T Request, IReadOnlyDictionary<string, string> Headers, string Transport);

    public OtlpReceiver(int? grpcPort = null, int? httpPort = null)
    {
        GrpcPort = grpcPort ?? ErrorWatch.Tests.Metrics.PrometheusServer.FreePort();
        HttpPort = httpPort ?? ErrorWatch.Tests.Metrics.PrometheusServer.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, GrpcPort, l => l.Protocols = HttpProtocols.Http2);
            k.Listen(IPAddress.Loopback, HttpPort, l => l.Protocols = HttpProtocols.Http1);
        });
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(this);
        _app = builder.Build();
        _app.MapGrpcService<LogsEndpoint>();
        _app.MapGrpcService<MetricsEndpoint>();
        _app.MapPost("/v1/logs", context => Http(context, ExportLogsServiceRequest.Parser, _logs, LogsResponse()));
        _app.MapPost("/v1/metrics", context => Http(context, ExportMetricsServiceRequest.Parser, _metrics, new ExportMetricsServiceResponse()));
        _app.StartAsync().GetAwaiter().GetResult();
    }

    public int GrpcPort { get; }
    public int HttpPort { get; }
    public string GrpcEndpoint => $"http://127.0.0.1:{GrpcPort}";
    public string HttpEndpoint => $"http://127.0.0.1:{HttpPort}";
    public string Endpoint(string protocol) => protocol == "grpc" ? GrpcEndpoint : HttpEndpoint;

    /// <summary>Requests without this header (exact value) are refused, as a collector with authentication does.</summary>
    public void Require(string header, string value)
    {
        lock (_lock)
            _required[header.ToLowerInvariant()] = value;
    }

    /// <summary>Log requests are answered with a partial success rejecting this many records (kept all the same).</summary>
    public long RejectLogRecords { get; set; }

    /// <summary>While true, every request is answered "unavailable" (retry later) and not kept.</summary>
    public bool Unavailable { get; set; }

    /// <summary>Requests refused for a missing header or while unavailable.</summary>
    public int Refusals => Volatile.Read(ref _refusals);

    public IReadOnlyList<Received<ExportLogsServiceRequest>> Logs
    {
        get { lock (_lock) return [.. _logs]; }
    }

    public IReadOnlyList<Received<ExportMetricsServiceRequest>> Metrics
    {
        get { lock (_lock) return [.. _metrics]; }
    }

    /// <summary>Every log record received, flattened: attributes by key (a repeated record appears again).</summary>
    public IReadOnlyList<OtlpLog> LogRecords => [.. Logs.SelectMany(r => OtlpLog.From(r.Request))];

    /// <summary>The sum over the data points of sum metric <paramref name="name"/> in the newest request that carries it, or null.</summary>
    public double? LatestTotal(string name)
    {
        foreach (var received in Metrics.AsEnumerable().Reverse())
        {
            double? total = null;
            foreach (var metric in received.Request.ResourceMetrics.SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics).Where(m => m.Name == name))
                foreach (var point in metric.Sum?.DataPoints ?? [])
                    total = (total ?? 0) + (point.ValueCase == NumberDataPoint.ValueOneofCase.AsInt ? point.AsInt : point.AsDouble);
            if (total is not null)
                return total;
        }
        return null;
    }

    /// <summary>Polls until <paramref name="done"/> holds; fails naming what was received.</summary>
    public void WaitFor(string what, Func<OtlpReceiver, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!done(this))
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"OTLP receiver: no {what} within {timeout}; received {Logs.Count} log request(s) ({LogRecords.Count} records), {Metrics.Count} metric request(s), {Refusals} refused");
            Thread.Sleep(100);
        }
    }

    private ExportLogsServiceResponse LogsResponse() => RejectLogRecords > 0
        ? new ExportLogsServiceResponse { PartialSuccess = new ExportLogsPartialSuccess { RejectedLogRecords = RejectLogRecords, ErrorMessage = "record too old" } }
        : new ExportLogsServiceResponse();

    /// <summary>Why a request is refused (null: accepted).</summary>
    private (StatusCode Grpc, int Http, string Why)? Refusal(IReadOnlyDictionary<string, string> headers)
    {
        if (Unavailable)
            return (StatusCode.Unavailable, 503, "unavailable");
        lock (_lock)
            foreach (var (key, value) in _required)
                if (!headers.TryGetValue(key, out var got) || got != value)
                    return (StatusCode.Unauthenticated, 401, $"header {key} missing or wrong");
        return null;
    }

    private void Keep<T>(List<Received<T>> into, Received<T> received)
    {
        lock (_lock)
            into.Add(received);
    }

    private async Task Http<TRequest, TResponse>(HttpContext context, MessageParser<TRequest> parser, List<Received<TRequest>> into, TResponse response)
        where TRequest : IMessage<TRequest> where TResponse : IMessage<TResponse>
    {
        var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        if (Refusal(headers) is { } refused)
        {
            Interlocked.Increment(ref _refusals);
            context.Response.StatusCode = refused.Http;
            return;
        }
        if (context.Request.ContentType != "application/x-protobuf")
        {
            context.Response.StatusCode = 415;
            return;
        }
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        Keep(into, new Received<TRequest>(parser.ParseFrom(body.ToArray()), headers, "http/protobuf"));
        context.Response.ContentType = "application/x-protobuf";
        await context.Response.Body.WriteAsync(response.ToByteArray());
    }

    private Task<TResponse> Grpc<TRequest, TResponse>(TRequest request, ServerCallContext context, List<Received<TRequest>> into, TResponse response)
    {
        var headers = context.RequestHeaders.Where(h => !h.IsBinary).ToDictionary(h => h.Key, h => h.Value);
        if (Refusal(headers) is { } refused)
        {
            Interlocked.Increment(ref _refusals);
            throw new RpcException(new Status(refused.Grpc, refused.Why));
        }
        Keep(into, new Received<TRequest>(request, headers, "grpc"));
        return Task.FromResult(response);
    }

    private sealed class LogsEndpoint(OtlpReceiver receiver) : LogsService.LogsServiceBase
    {
        public override Task<ExportLogsServiceResponse> Export(ExportLogsServiceRequest request, ServerCallContext context) =>
            receiver.Grpc(request, context, receiver._logs, receiver.LogsResponse());
    }

    private sealed class MetricsEndpoint(OtlpReceiver receiver) : MetricsService.MetricsServiceBase
    {
        public override Task<ExportMetricsServiceResponse> Export(ExportMetricsServiceRequest request, ServerCallContext context) =>
            receiver.Grpc(request, context, receiver._metrics, new ExportMetricsServiceResponse());
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        // Connections are cut, not drained: a collector that went away.
        using var now = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        try
        {
            await _app.StopAsync(now.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await _app.DisposeAsync();
    }
}

/// <summary>One received log record: its resource's and its own attributes as text (arrays joined by newlines).</summary>
internal sealed record OtlpLog(LogRecord Record, IReadOnlyDictionary<string, string> Resource, IReadOnlyDictionary<string, string> Attributes, string Scope)
{
    public string this[string attribute] => Attributes[attribute];
    public string? Get(string attribute) => Attributes.GetValueOrDefault(attribute);
    public bool Replayed => Get("errorwatch.replayed") == "true";

    public static IEnumerable<OtlpLog> From(ExportLogsServiceRequest request) =>
        from resourceLogs in request.ResourceLogs
        let resource = Flatten(resourceLogs.Resource?.Attributes ?? [])
        from scopeLogs in resourceLogs.ScopeLogs
        from record in scopeLogs.LogRecords
        select new OtlpLog(record, resource, Flatten(record.Attributes), scopeLogs.Scope?.Name ?? "");

    private static Dictionary<string, string> Flatten(IEnumerable<KeyValue> attributes) =>
        attributes.ToDictionary(a => a.Key, a => Text(a.Value));

    public static string Text(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.ArrayValue => string.Join("\n", value.ArrayValue.Values.Select(Text)),
        AnyValue.ValueOneofCase.BytesValue => Convert.ToBase64String(value.BytesValue.Span),
        AnyValue.ValueOneofCase.KvlistValue => string.Join(",", value.KvlistValue.Values.Select(kv => kv.Key + "=" + Text(kv.Value))),
        _ => "",
    };
}
