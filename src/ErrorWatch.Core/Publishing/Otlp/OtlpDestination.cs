using ErrorWatch.Publishing.Metrics;

namespace ErrorWatch.Publishing.Otlp;

/// <summary>
/// Where OTLP log records go and how: [OpenTelemetry] first, then the standard environment
/// (OTEL_EXPORTER_OTLP_LOGS_* before OTEL_EXPORTER_OTLP_*), as the SDK's exporters resolve it for
/// the metrics. OTLP/HTTP takes a base endpoint's <c>/v1/logs</c>; a logs-specific endpoint is the
/// full URL; gRPC takes the endpoint as it is.
/// </summary>
internal sealed record OtlpDestination(Uri Endpoint, bool Grpc, IReadOnlyList<KeyValuePair<string, string>> Headers, TimeSpan Timeout)
{
    public const string SignalPath = "v1/logs";

    /// <summary>Null when no endpoint is configured (no OTLP at all).</summary>
    /// <exception cref="FormatException">The endpoint or headers from the environment are malformed (the file's are checked when it is read).</exception>
    public static OtlpDestination? Resolve(TelemetryOptions options, Func<string, string?> environment)
    {
        string? Env(string name) => environment(name) is { Length: > 0 } v ? v.Trim() : null;
        var protocol = options.OtlpProtocol ?? Env("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL") ?? Env("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "grpc";
        if (protocol is not ("grpc" or "http/protobuf"))
            throw new FormatException($"OTEL_EXPORTER_OTLP_PROTOCOL=\"{protocol}\" is not one of grpc, http/protobuf");
        var grpc = protocol == "grpc";
        string url;
        if (options.OtlpEndpoint is { Length: > 0 } configured)
            url = grpc ? configured : WithSignalPath(configured);
        else if (Env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") is { } logs)
            url = logs;
        else if (Env("OTEL_EXPORTER_OTLP_ENDPOINT") is { } all)
            url = grpc ? all : WithSignalPath(all);
        else
            return null;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new FormatException($"the OTLP endpoint \"{url}\" is not an http:// or https:// URL");
        var headerText = options.OtlpHeaders ?? Env("OTEL_EXPORTER_OTLP_LOGS_HEADERS") ?? Env("OTEL_EXPORTER_OTLP_HEADERS") ?? "";
        var headers = ParseHeaders(headerText, out var problem) ?? throw new FormatException($"OTLP headers: {problem}");
        return new OtlpDestination(endpoint, grpc, headers, options.OtlpTimeout);
    }

    private static string WithSignalPath(string baseUrl) => baseUrl.TrimEnd('/') + "/" + SignalPath;

    /// <summary>
    /// <c>key=value,key2=value2</c> (OTEL_EXPORTER_OTLP_HEADERS: values percent-decoded, blanks
    /// around items trimmed); null with <paramref name="problem"/> naming the item that is not one.
    /// Names must be HTTP tokens (lower case on the wire, as HTTP/2 and gRPC metadata require).
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>>? ParseHeaders(string text, out string? problem)
    {
        problem = null;
        var headers = new List<KeyValuePair<string, string>>();
        var number = 0;
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            // Problems name the item by its place, never its text: a header value is often a secret.
            number++;
            var equals = item.IndexOf('=');
            var key = equals > 0 ? item[..equals].Trim() : "";
            if (key.Length == 0 || !key.All(IsTokenChar))
            {
                problem = $"header {number} is not name=value (a name is letters, digits and !#$%&'*+-.^_`|~)";
                return null;
            }
            string value;
            try
            {
                value = Uri.UnescapeDataString(item[(equals + 1)..].Trim());
            }
            catch (UriFormatException)
            {
                problem = $"the value of \"{key}\" has a malformed %-escape";
                return null;
            }
            if (value.Any(c => c is '\r' or '\n' or '\0'))
            {
                problem = $"the value of \"{key}\" holds a line break or NUL";
                return null;
            }
            headers.Add(new(key.ToLowerInvariant(), value));
        }
        return headers;
    }

    private static bool IsTokenChar(char c) => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);
}
