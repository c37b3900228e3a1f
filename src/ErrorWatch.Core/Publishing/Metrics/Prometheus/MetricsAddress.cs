using System.Globalization;
using System.Net;
using System.Text;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>
/// One place the metrics endpoint listens, as configured: <c>127.0.0.1:9464</c>,
/// <c>[::1]:9464</c>, <c>0.0.0.0:9464</c>, <c>localhost:9464</c> (IPv4 and IPv6 loopback) or
/// <c>unix:/run/errorwatch/metrics.sock</c>. Port 0 picks a free port. Host names other than
/// localhost are refused: a daemon should not depend on name resolution to start.
/// </summary>
public sealed class MetricsAddress
{
    // sun_path holds 108 bytes including the terminating NUL.
    private const int MaxSocketPathBytes = 107;

    private MetricsAddress(string text, IPEndPoint? ip, bool localhost, int port, string? socketPath)
    {
        Text = text;
        IpEndPoint = ip;
        IsLocalhost = localhost;
        Port = port;
        SocketPath = socketPath;
    }

    /// <summary>The address as configured, for messages.</summary>
    public string Text { get; }

    /// <summary>The numeric address; null for localhost and unix sockets.</summary>
    public IPEndPoint? IpEndPoint { get; }

    public bool IsLocalhost { get; }

    public int Port { get; }

    /// <summary>The unix socket's path, or null for TCP.</summary>
    public string? SocketPath { get; }

    public static MetricsAddress Parse(string text) =>
        TryParse(text, out var address, out var error) ? address : throw new FormatException($"metrics endpoint \"{text}\": {error}");

    public static bool TryParse(string text, out MetricsAddress address, out string error)
    {
        address = null!;
        error = "";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "empty; expected HOST:PORT or unix:PATH";
            return false;
        }
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = text["unix:".Length..];
            if (!path.StartsWith('/') || path.EndsWith('/'))
                error = "the socket path must be absolute and name a file (unix:/run/errorwatch/metrics.sock)";
            else if (Encoding.UTF8.GetByteCount(path) > MaxSocketPathBytes)
                error = $"the socket path is longer than {MaxSocketPathBytes} bytes, the limit of a unix socket address";
            else if (path.Contains('\0'))
                error = "the socket path contains a NUL character";
            else
                address = new MetricsAddress(text, null, false, 0, path);
            return error.Length == 0;
        }

        string host, portText;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf("]:", StringComparison.Ordinal);
            if (close < 0)
            {
                error = "an IPv6 address needs a port after the bracket ([::1]:9464)";
                return false;
            }
            host = text[1..close];
            portText = text[(close + 2)..];
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon < 0)
            {
                error = "no port; expected HOST:PORT (127.0.0.1:9464) or unix:PATH";
                return false;
            }
            if (text.IndexOf(':') != colon)
            {
                error = "write an IPv6 address in brackets ([::1]:9464)";
                return false;
            }
            host = text[..colon];
            portText = text[(colon + 1)..];
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > IPEndPoint.MaxPort)
        {
            error = $"\"{portText}\" is not a port (0-65535)";
            return false;
        }
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (port == 0)
            {
                error = "localhost needs a fixed port (it is two listeners, IPv4 and IPv6, which must share it)";
                return false;
            }
            address = new MetricsAddress(text, null, true, port, null);
            return true;
        }
        // IPAddress.Parse takes "1" for 0.0.0.1; only dotted quads and bracketed IPv6 are addresses here.
        var isDottedQuad = host.Split('.') is { Length: 4 } parts && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit));
        if (!(text.StartsWith('[') || isDottedQuad) || !IPAddress.TryParse(host, out var ip)
            || (text.StartsWith('[') && ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6))
        {
            error = $"\"{host}\" is not an IP address or localhost (host names are not resolved)";
            return false;
        }
        address = new MetricsAddress(text, new IPEndPoint(ip, port), false, port, null);
        return true;
    }

    public override string ToString() => Text;
}
