using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Abstractions;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ILogger = Serilog.ILogger;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>
/// Serves <see cref="PrometheusExporter"/> at <c>GET /metrics</c> (and HEAD) on any number of
/// <see cref="MetricsAddress"/>es, TCP or unix sockets; 404 elsewhere, 405 for other methods. The
/// format follows the Accept header (<see cref="ExpositionFormat.FromAccept"/>).
/// A plain <see cref="KestrelServer"/>, no host, no DI container, no middleware: the endpoint is
/// one request handler, and a host would cost memory and startup for nothing. Requests run on
/// the thread pool; Kestrel logs nowhere (its connection chatter does not belong in the daemon's
/// log; what matters is logged here).
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    public const string MetricsPath = "/metrics";

    /// <summary>Owner and group may connect (connecting to a unix socket needs write permission).</summary>
    public const UnixFileMode DefaultSocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    /// <summary>The whole of <see cref="Stop"/>: scrapes in flight get most of it to finish.</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromMilliseconds(450);
    private static readonly TimeSpan StopGrace = TimeSpan.FromMilliseconds(250);

    private readonly PrometheusExporter _exporter;
    private readonly IReadOnlyList<string> _endpoints;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly List<string> _socketPaths = [];
    private KestrelServer? _server;
    private IReadOnlyList<string> _addresses = [];
    private EndPoint? _failedBind;
    private int _failureLogged;

    public MetricsEndpoint(PrometheusExporter exporter, IReadOnlyList<string> endpoints, ILogger log)
    {
        _exporter = exporter;
        _endpoints = endpoints;
        _log = log.ForContext<MetricsEndpoint>();
    }

    /// <summary>Mode of the unix sockets this endpoint creates.</summary>
    public UnixFileMode SocketMode { get; init; } = DefaultSocketMode;

    /// <summary>Where it listens once started, as URLs (http://127.0.0.1:41234, http://unix:/run/errorwatch/metrics.sock); actual ports for port 0.</summary>
    public IReadOnlyList<string> Addresses => _addresses;

    public bool IsRunning => _server is not null;

    /// <summary>Connections held at once; past it a new one replaces the oldest idle one (<see cref="ScrapeConnections"/>).</summary>
    private const int MaxConnections = 256;
    /// <summary>How long a connection may wait idle for its next request.</summary>
    private static readonly TimeSpan KeepAliveTimeout = TimeSpan.FromSeconds(10);
    /// <summary>How long a connection may take to send a request's headers.</summary>
    private static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(5);

    private ScrapeConnections Connections { get; } = new(MaxConnections);

    /// <summary>
    /// Listens on every configured address, or on none: throws <see cref="MetricsEndpointException"/>
    /// naming the address that is invalid, in use or not permitted.
    /// </summary>
    public void Start()
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the metrics endpoint runs on Linux only");
        lock (_lock)
        {
            if (_server is not null)
                throw new InvalidOperationException("the metrics endpoint is already running");
            if (_endpoints.Count == 0)
                throw new MetricsEndpointException("", "no address configured");
            var addresses = new List<MetricsAddress>();
            foreach (var text in _endpoints)
            {
                if (!MetricsAddress.TryParse(text, out var address, out var error))
                    throw new MetricsEndpointException(text, error);
                addresses.Add(address);
            }

            var options = new KestrelServerOptions
            {
                AddServerHeader = false,
                // Kestrel asks the container for optional services only; an empty one answers "none".
                ApplicationServices = new NoServices(),
            };
            // No refusing cap (ScrapeConnections makes room instead), and seconds, not Kestrel's 130 s
            // keep-alive, for a connection that sends nothing or trickles its headers.
            options.Limits.MaxConcurrentConnections = null;
            options.Limits.MaxRequestBodySize = 64 * 1024;
            options.Limits.KeepAliveTimeout = KeepAliveTimeout;
            options.Limits.RequestHeadersTimeout = RequestHeadersTimeout;
            try
            {
                foreach (var address in addresses)
                    Listen(options, address);
                var transport = new SocketTransportOptions { CreateBoundListenSocket = BindListenSocket };
                var server = new KestrelServer(Options.Create(options), new SocketTransportFactory(Options.Create(transport), NullLoggerFactory.Instance), NullLoggerFactory.Instance);
                try
                {
                    server.StartAsync(new ScrapeApplication(this), CancellationToken.None).GetAwaiter().GetResult();
                }
                catch
                {
                    server.Dispose();
                    throw;
                }
                _server = server;
                _addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses.ToArray() ?? [];
            }
            catch (Exception e) when (e is not MetricsEndpointException)
            {
                DeleteSockets();
                var failed = _failedBind;
                _failedBind = null;
                var culprit = failed is null ? null : addresses.FirstOrDefault(a => Matches(a, failed));
                throw new MetricsEndpointException(culprit?.Text ?? string.Join(", ", _endpoints), Reason(e), e);
            }
            _log.Information("metrics: Prometheus endpoint at {Addresses} (path {Path})", string.Join(", ", _addresses), MetricsPath);
        }
    }

    /// <summary>Stops listening within half a second, cutting off scrapes that take longer; removes the unix sockets.</summary>
    public void Stop()
    {
        KestrelServer? server;
        lock (_lock)
        {
            server = _server;
            _server = null;
            _addresses = [];
        }
        if (server is null)
            return;
        using var grace = new CancellationTokenSource(StopGrace);
        var stopped = server.StopAsync(grace.Token);
        bool done;
        try
        {
            done = stopped.Wait(StopTimeout);
        }
        catch (AggregateException e)
        {
            _log.Debug("metrics: stopping the endpoint: {Error}", e.InnerException?.Message);
            done = true;
        }
        if (done)
        {
            server.Dispose();
        }
        else
        {
            // Only a collection stuck in an observable callback holds Kestrel up; Dispose would
            // wait for the same stop, so the server finishes on its own, and is disposed then.
            _log.Warning("metrics: the endpoint did not stop within {Timeout} ms; a scrape is stuck in a metrics callback", StopTimeout.TotalMilliseconds);
            _ = stopped.ContinueWith(_ => server.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
        lock (_lock)
            DeleteSockets();
    }

    public void Dispose() => Stop();

    [SupportedOSPlatform("linux")]
    private void Listen(KestrelServerOptions options, MetricsAddress address)
    {
        Action<ListenOptions> http1 = o =>
        {
            o.Protocols = HttpProtocols.Http1;
            o.Use(Connections.Admit);
        };
        if (address.SocketPath is { } path)
        {
            PrepareSocketPath(address, path);
            options.ListenUnixSocket(path, http1);
        }
        else if (address.IsLocalhost)
        {
            options.ListenLocalhost(address.Port, http1);
        }
        else
        {
            options.Listen(address.IpEndPoint!, http1);
        }
    }

    /// <summary>
    /// Creates the socket's directory when missing, and removes a socket file nobody listens on
    /// any more (left by a killed daemon); a live socket or any other kind of file is an error.
    /// </summary>
    [SupportedOSPlatform("linux")]
    private static void PrepareSocketPath(MetricsAddress address, string path)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        switch (FileType(address, path))
        {
            case null:
                return;
            case SocketFileType:
                break;
            default:
                throw new MetricsEndpointException(address.Text, $"{path} exists and is not a socket");
        }
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
            }
            catch (SocketException)
            {
                // Nobody listens: stale.
                File.Delete(path);
                return;
            }
        }
        throw new MetricsEndpointException(address.Text, "address already in use (another process listens on the socket)");
    }

    private const int SocketFileType = 0xC000; // S_IFSOCK

    /// <summary>The S_IFMT bits of what is at <paramref name="path"/> (not following a symlink), or null when nothing is.</summary>
    private static unsafe int? FileType(MetricsAddress address, string path)
    {
        var stx = stackalloc byte[Interop.Libc.StatxSize];
        if (Interop.Libc.Statx(Interop.Libc.AT_FDCWD, path, Interop.Libc.AT_SYMLINK_NOFOLLOW, Interop.Libc.STATX_TYPE, stx) == 0)
            return *(ushort*)(stx + Interop.Libc.StatxModeOffset) & 0xF000;
        var errno = Interop.Libc.LastErrno;
        return errno == Interop.Libc.ENOENT ? null
            : throw new MetricsEndpointException(address.Text, $"cannot inspect {path}: {Interop.ErrnoTable.Name(errno)}");
    }

    /// <summary>
    /// Kestrel's own bind, plus: a unix socket gets its mode between bind and listen, so no one
    /// outside it can ever connect; and a failing bind is remembered to name its address.
    /// </summary>
    [SupportedOSPlatform("linux")]
    private Socket BindListenSocket(EndPoint endPoint)
    {
        Socket socket;
        try
        {
            socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endPoint);
        }
        catch (SocketException)
        {
            _failedBind = endPoint;
            throw;
        }
        if (endPoint is UnixDomainSocketEndPoint unix && unix.ToString() is { Length: > 0 } path)
        {
            try
            {
                _socketPaths.Add(path);
                File.SetUnixFileMode(path, SocketMode);
            }
            catch
            {
                socket.Dispose();
                _failedBind = endPoint;
                throw;
            }
        }
        return socket;
    }

    private void DeleteSockets()
    {
        foreach (var path in _socketPaths)
        {
            try
            {
                File.Delete(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.Warning("metrics: cannot remove {Path}: {Error}", path, e.Message);
            }
        }
        _socketPaths.Clear();
    }

    private static bool Matches(MetricsAddress address, EndPoint endPoint) => endPoint switch
    {
        UnixDomainSocketEndPoint unix => address.SocketPath == unix.ToString(),
        IPEndPoint ip when address.IsLocalhost => IPAddress.IsLoopback(ip.Address) && ip.Port == address.Port,
        IPEndPoint ip => ip.Equals(address.IpEndPoint),
        _ => false,
    };

    private static string Reason(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
                return socket.SocketErrorCode switch
                {
                    SocketError.AddressAlreadyInUse => "address already in use",
                    SocketError.AccessDenied => "permission denied",
                    SocketError.AddressNotAvailable => "address not available on this host",
                    _ => socket.Message,
                };
            if (inner is UnauthorizedAccessException)
                return "permission denied: " + inner.Message;
        }
        return e.Message;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        if (request.Path.Value != MetricsPath)
        {
            await Plain(response, StatusCodes.Status404NotFound, $"not found; metrics are at {MetricsPath}\n", request);
            return;
        }
        var head = HttpMethods.IsHead(request.Method);
        if (!head && !HttpMethods.IsGet(request.Method))
        {
            response.Headers.Allow = "GET, HEAD";
            await Plain(response, StatusCodes.Status405MethodNotAllowed, "method not allowed; use GET\n", request);
            return;
        }

        PrometheusScrape scrape;
        try
        {
            scrape = await _exporter.ScrapeAsync(context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            if (Interlocked.Exchange(ref _failureLogged, 1) == 0)
                _log.Warning("metrics: scrape failed: {Error}", e.Message);
            await Plain(response, StatusCodes.Status503ServiceUnavailable, e.Message + "\n", request);
            return;
        }
        Volatile.Write(ref _failureLogged, 0);

        var format = ExpositionFormat.FromAccept(request.Headers.Accept.ToString());
        var body = scrape.In(format);
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = format.ContentType;
        response.ContentLength = body.Length;
        response.Headers.CacheControl = "no-store";
        if (!head)
            await response.Body.WriteAsync(body, context.RequestAborted);
    }

    private static async Task Plain(HttpResponse response, int status, string text, HttpRequest request)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = bytes.Length;
        if (!HttpMethods.IsHead(request.Method))
            await response.Body.WriteAsync(bytes);
    }

    /// <summary>Kestrel's request callback: a bare HttpContext per connection, then <see cref="HandleAsync"/>.</summary>
    private sealed class ScrapeApplication(MetricsEndpoint endpoint) : IHttpApplication<HttpContext>
    {
        public HttpContext CreateContext(IFeatureCollection contextFeatures)
        {
            // Kestrel keeps a context per connection for the next request, as ASP.NET's own hosting
            // layer uses it: Prometheus keeps its connection, so a scrape allocates little.
            if (contextFeatures is not IHostContextContainer<HttpContext> container)
                return new DefaultHttpContext(contextFeatures);
            if (container.HostContext is DefaultHttpContext reused)
            {
                reused.Initialize(contextFeatures);
                return reused;
            }
            var context = new DefaultHttpContext(contextFeatures);
            container.HostContext = context;
            return context;
        }

        public async Task ProcessRequestAsync(HttpContext context)
        {
            var connection = context.Connection.Id;
            endpoint.Connections.Answering(connection);
            try
            {
                await endpoint.HandleAsync(context);
            }
            finally
            {
                endpoint.Connections.Answered(connection);
            }
        }

        public void DisposeContext(HttpContext context, Exception? exception) => (context as DefaultHttpContext)?.Uninitialize();
    }

    private sealed class NoServices : IServiceProvider
    {
        public object? GetService(Type serviceType) => null;
    }
}

/// <summary>The metrics endpoint cannot listen on <see cref="Endpoint"/> (as configured), and why.</summary>
public sealed class MetricsEndpointException(string endpoint, string reason, Exception? inner = null)
    : Exception(endpoint.Length > 0 ? $"metrics endpoint \"{endpoint}\": {reason}" : $"metrics endpoint: {reason}", inner)
{
    public string Endpoint { get; } = endpoint;
    public string Reason { get; } = reason;
}
