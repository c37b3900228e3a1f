using System.Collections.Concurrent;
using System.Net;
using System.Text;

namespace ErrorWatch.Tests.Metrics;

/// <summary>An OTLP/HTTP collector stand-in on loopback: records each request body by path, answers 200.</summary>
internal sealed class OtlpCollector : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly BlockingCollection<(string Path, string Body)> _requests = new();

    public OtlpCollector(int port)
    {
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _ = Task.Run(Serve);
    }

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            // Protobuf strings are UTF-8 as they are: Latin-1 keeps every byte for Contains().
            _requests.Add((context.Request.Url!.AbsolutePath, Encoding.Latin1.GetString(body.ToArray())));
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.Close();
        }
    }

    public async Task<string> WaitForAsync(string path, Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var seen = new List<string>();
        while (DateTime.UtcNow < deadline)
        {
            if (_requests.TryTake(out var request, 100))
            {
                seen.Add(request.Path);
                if (request.Path == path && match(request.Body))
                    return request.Body;
            }
            await Task.Yield();
        }
        Assert.Fail($"no matching OTLP request to {path} within {timeout}; saw {string.Join(", ", seen)}");
        return "";
    }

    public void Dispose()
    {
        if (_listener.IsListening)
            _listener.Stop();
        _listener.Close();
    }
}
