using Microsoft.AspNetCore.Connections;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>
/// Who holds the metrics endpoint's connections. Kestrel's own cap refuses every new connection
/// while it is full, so any local user holding 64 idle keep-alive connections (or slowloris ones,
/// sending a header byte now and then) shut out every scrape for Kestrel's 130 s keep-alive. Here
/// Kestrel bounds a connection's header time and idle time to seconds, and at the cap a new
/// connection takes the place of the oldest one not being answered. A scraper sends its request as
/// soon as it connects and is answered at once, so it is among the newest until it is answered;
/// a flood, reconnecting as fast as it can, evicts itself. Tried against one that held 200 idle
/// and 200 slowloris connections as uid nobody (curl once every half second): oldest first with a
/// cap of 64 lost 1 scrape in 10, with 256 none in 60; evicting silent ones first, with a 100 ms
/// grace, at 128 lost 7 in 40 (docs/security.md).
/// </summary>
internal sealed class ScrapeConnections(int cap)
{
    private readonly Lock _lock = new();
    // Oldest first; a node leaves when its connection ends or is evicted.
    private readonly LinkedList<Held> _open = new();
    private readonly Dictionary<string, LinkedListNode<Held>> _byId = new(StringComparer.Ordinal);

    private sealed class Held(ConnectionContext connection)
    {
        public ConnectionContext Connection { get; } = connection;
        /// <summary>Requests being answered on it (0 or 1 with HTTP/1.1).</summary>
        public int Answering { get; set; }
    }

    /// <summary>Kestrel connection middleware: admits each connection and forgets it when it ends.</summary>
    public ConnectionDelegate Admit(ConnectionDelegate next) => async connection =>
    {
        var node = Enter(connection);
        try
        {
            await next(connection);
        }
        finally
        {
            Leave(node);
        }
    };

    /// <summary>A request on <paramref name="connectionId"/> is being answered: not to be evicted until <see cref="Answered"/>.</summary>
    public void Answering(string? connectionId) => Mark(connectionId, +1);

    public void Answered(string? connectionId) => Mark(connectionId, -1);

    private void Mark(string? connectionId, int change)
    {
        if (connectionId is null)
            return;
        lock (_lock)
        {
            if (_byId.TryGetValue(connectionId, out var node))
                node.Value.Answering += change;
        }
    }

    private LinkedListNode<Held> Enter(ConnectionContext connection)
    {
        ConnectionContext? evicted = null;
        LinkedListNode<Held> node;
        lock (_lock)
        {
            if (_open.Count >= cap)
            {
                for (var oldest = _open.First; oldest is not null; oldest = oldest.Next)
                {
                    if (oldest.Value.Answering > 0)
                        continue;
                    evicted = oldest.Value.Connection;
                    Forget(oldest);
                    break;
                }
            }
            // Over the cap only when every held connection is being answered: scrapes, which end.
            node = _open.AddLast(new Held(connection));
            _byId[connection.ConnectionId] = node;
        }
        evicted?.Abort(new ConnectionAbortedException("metrics endpoint: connection limit reached; the oldest idle connection made room for a new one"));
        return node;
    }

    private void Leave(LinkedListNode<Held> node)
    {
        lock (_lock)
        {
            if (node.List is not null)
                Forget(node);
        }
    }

    private void Forget(LinkedListNode<Held> node)
    {
        _open.Remove(node);
        if (_byId.TryGetValue(node.Value.Connection.ConnectionId, out var current) && current == node)
            _byId.Remove(node.Value.Connection.ConnectionId);
    }
}
