using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using ErrorWatch.Publishing.Otlp.Proto;
using Google.Protobuf;

namespace ErrorWatch.Publishing.Otlp;

/// <summary>What became of one export request.</summary>
/// <param name="Delivered">The collector took the request (some records may still be rejected: <paramref name="Rejected"/>).</param>
/// <param name="Retryable">The collector may take it later (unreachable, overloaded, a timeout); false: it refused it (wrong headers, endpoint or data).</param>
/// <param name="Problem">Why not delivered, or what the collector said of the rejected records.</param>
/// <param name="RetryAfter">How long the collector asked to wait (HTTP Retry-After).</param>
internal readonly record struct ExportOutcome(bool Delivered, bool Retryable, string? Problem, TimeSpan? RetryAfter = null, long Rejected = 0);

/// <summary>
/// Sends OTLP export requests, one at a time, on the calling thread: over gRPC (a unary call of
/// <c>/opentelemetry.proto.collector.logs.v1.LogsService/Export</c> on HTTP/2, framed as the gRPC over
/// HTTP/2 protocol says: a 5-byte prefix, compressed flag and big-endian length, then the message; the
/// status in the <c>grpc-status</c> trailer) or over OTLP/HTTP (a POST of the same message). Both with
/// <see cref="HttpClient"/>, as the OpenTelemetry SDK's exporter does: Grpc.Net.Client would bring its
/// gzip provider and with it a static zlib into the executable (docs/dependencies.md). Retryable
/// outcomes follow the OTLP specification: gRPC UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
/// ABORTED, CANCELLED, OUT_OF_RANGE, DATA_LOSS; HTTP 429, 502, 503, 504; no connection or no answer.
/// </summary>
internal sealed class OtlpLogSender : IDisposable
{
    /// <summary>The gRPC method: the service's package, name and method (logs_service.proto).</summary>
    public const string GrpcPath = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

    // grpc/status codes, by number (the gRPC status code table).
    private static readonly string[] GrpcCodes =
    [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ];

    private readonly OtlpDestination _destination;
    private readonly HttpClient _http;
    private readonly Uri _target;

    public OtlpLogSender(OtlpDestination destination)
    {
        _destination = destination;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = destination.Timeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            // The collector is named by the configuration: no proxy lookup from the environment.
            UseProxy = false,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        _target = destination.Grpc ? new Uri(destination.Endpoint, GrpcPath) : destination.Endpoint;
    }

    public string Endpoint => _destination.Endpoint.ToString();

    public ExportOutcome Send(ExportLogsServiceRequest request, CancellationToken cancel)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timeout.CancelAfter(_destination.Timeout);
        try
        {
            return _destination.Grpc ? SendGrpc(request, timeout.Token) : SendHttp(request, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return new ExportOutcome(false, true, $"no answer within {_destination.Timeout.TotalSeconds:0.#} s");
        }
        catch (OperationCanceledException)
        {
            return new ExportOutcome(false, true, "stopped while sending");
        }
        catch (HttpRequestException e)
        {
            return new ExportOutcome(false, true, e.InnerException?.Message ?? e.Message);
        }
    }

    private ExportOutcome SendGrpc(ExportLogsServiceRequest request, CancellationToken cancel)
    {
        var size = request.CalculateSize();
        var frame = new byte[5 + size];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)size); // frame[0] = 0: not compressed
        request.WriteTo(frame.AsSpan(5));
        using var message = new HttpRequestMessage(HttpMethod.Post, _target)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact, // h2c with prior knowledge on http://
            Content = new ByteArrayContent(frame),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        message.Headers.TE.ParseAdd("trailers");
        message.Headers.TryAddWithoutValidation("grpc-timeout", $"{(long)_destination.Timeout.TotalMilliseconds}m");
        AddHeaders(message);
        using var response = _http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancel).GetAwaiter().GetResult();
        var body = response.Content.ReadAsByteArrayAsync(cancel).GetAwaiter().GetResult();
        if (!response.IsSuccessStatusCode)
        {
            // Not a gRPC answer (a proxy, or no gRPC there): the HTTP status mapped as gRPC clients map it.
            return new ExportOutcome(false, Retryable(response.StatusCode), $"HTTP {(int)response.StatusCode} {response.ReasonPhrase} (not a gRPC answer)");
        }
        // The status is in the trailers, or in the headers of a trailers-only answer.
        var status = Single(response.TrailingHeaders, "grpc-status") ?? Single(response.Headers, "grpc-status");
        if (status is null || !int.TryParse(status, out var code))
            return new ExportOutcome(false, true, "a gRPC answer without grpc-status");
        if (code != 0)
        {
            var detail = Single(response.TrailingHeaders, "grpc-message") ?? Single(response.Headers, "grpc-message");
            var name = code < GrpcCodes.Length ? GrpcCodes[code] : code.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var retryable = code is 1 or 4 or 8 or 10 or 11 or 14 or 15;
            return new ExportOutcome(false, retryable, $"gRPC {name}{(detail is { Length: > 0 } ? ": " + Uri.UnescapeDataString(detail) : "")}");
        }
        if (body.Length >= 5 && body[0] == 0 && BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1)) <= body.Length - 5)
        {
            try
            {
                return Accepted(ExportLogsServiceResponse.Parser.ParseFrom(body.AsSpan(5, (int)BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1)))));
            }
            catch (InvalidProtocolBufferException)
            {
            }
        }
        // OK all the same; what it said of rejected records (if anything) is unknown.
        return new ExportOutcome(true, false, null);
    }

    private ExportOutcome SendHttp(ExportLogsServiceRequest request, CancellationToken cancel)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, _target)
        {
            Content = new ByteArrayContent(request.ToByteArray()),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
        AddHeaders(message);
        using var response = _http.SendAsync(message, cancel).GetAwaiter().GetResult();
        var body = response.Content.ReadAsByteArrayAsync(cancel).GetAwaiter().GetResult();
        if (response.IsSuccessStatusCode)
        {
            try
            {
                return Accepted(body.Length == 0 ? new ExportLogsServiceResponse() : ExportLogsServiceResponse.Parser.ParseFrom(body));
            }
            catch (InvalidProtocolBufferException)
            {
                // Taken all the same (the status says so); what it said of rejected records is unknown.
                return new ExportOutcome(true, false, null);
            }
        }
        TimeSpan? retryAfter = response.Headers.RetryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - DateTimeOffset.UtcNow,
            _ => null,
        };
        return new ExportOutcome(false, Retryable(response.StatusCode), $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}", retryAfter);
    }

    /// <summary>The HTTP answers OTLP says to retry (and gRPC clients map to UNAVAILABLE): the collector or a proxy before it is overloaded or down.</summary>
    private static bool Retryable(HttpStatusCode status) =>
        status is HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;

    private void AddHeaders(HttpRequestMessage message)
    {
        foreach (var (key, value) in _destination.Headers)
            message.Headers.TryAddWithoutValidation(key, value);
    }

    private static string? Single(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private static ExportOutcome Accepted(ExportLogsServiceResponse response) =>
        response.PartialSuccess is { RejectedLogRecords: > 0 } partial
            ? new ExportOutcome(true, false, partial.ErrorMessage, Rejected: partial.RejectedLogRecords)
            : new ExportOutcome(true, false, response.PartialSuccess?.ErrorMessage is { Length: > 0 } warning ? warning : null);

    public void Dispose() => _http.Dispose();
}
