using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>
/// The OpenTelemetry side of the Prometheus endpoint: a pull exporter. Add it with cumulative
/// temporality (<see cref="PrometheusMeterProviderBuilderExtensions.AddPrometheusExporter"/>);
/// the SDK then hands it a collect delegate, and <see cref="ScrapeAsync"/> runs one collection
/// (the SDK calls <see cref="Export"/> on the same thread, observable callbacks included) and
/// keeps the result for <see cref="CacheDuration"/>, so a burst of scrapes costs one collection.
/// Scrapes wait for each other asynchronously: a collection runs on the scraping thread, never
/// on one of the daemon's own.
/// </summary>
[ExportModes(ExportModes.Pull)]
public sealed class PrometheusExporter : BaseExporter<Metric>, IPullMetricExporter
{
    private readonly SemaphoreSlim _collecting = new(1, 1);
    private PrometheusScrape? _latest;
    private MetricsSnapshot? _exported;
    private Exception? _exportError;
    private long _collections;

    /// <summary>Set by the SDK when the exporter's reader joins a MeterProvider.</summary>
    public Func<int, bool>? Collect { get; set; }

    /// <summary>How long a collection answers further scrapes (the official exporter's 300 ms); zero collects every time.</summary>
    public TimeSpan CacheDuration { get; init; } = TimeSpan.FromMilliseconds(300);

    /// <summary>How long a scrape waits for the SDK to collect.</summary>
    public TimeSpan CollectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Collections run so far (each is one <see cref="Export"/> call).</summary>
    public long Collections => Interlocked.Read(ref _collections);

    /// <summary>
    /// The metrics now, or as of at most <see cref="CacheDuration"/> ago. Throws
    /// <see cref="InvalidOperationException"/> when the exporter is not (or no longer) part of a
    /// MeterProvider or the collection fails.
    /// </summary>
    public async ValueTask<PrometheusScrape> ScrapeAsync(CancellationToken cancellationToken = default)
    {
        if (Fresh(Volatile.Read(ref _latest)) is { } cached)
            return cached;
        await _collecting.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Whoever held the semaphore may have just collected for everyone waiting.
            if (Fresh(_latest) is { } fresh)
                return fresh;
            var collect = Collect ?? throw new InvalidOperationException("the Prometheus exporter is not part of a MeterProvider");
            _exported = null;
            _exportError = null;
            var collected = collect((int)Math.Min(int.MaxValue, CollectTimeout.TotalMilliseconds));
            if (!collected || _exported is null)
                throw new InvalidOperationException(
                    _exportError is not null ? "metrics collection failed: " + _exportError.Message
                    : "metrics collection failed or timed out (MeterProvider disposed?)",
                    _exportError);
            var scrape = new PrometheusScrape(_exported, Stopwatch.GetTimestamp());
            _exported = null;
            Volatile.Write(ref _latest, scrape);
            return scrape;
        }
        finally
        {
            _collecting.Release();
        }
    }

    /// <summary>Called by the SDK inside <see cref="Collect"/>; the points are copied out before it returns.</summary>
    public override ExportResult Export(in Batch<Metric> batch)
    {
        Interlocked.Increment(ref _collections);
        try
        {
            foreach (var metric in batch)
            {
                // Delta counters would read as a reset at every scrape: refuse rather than mislead.
                if (metric.Temporality == AggregationTemporality.Delta)
                    throw new InvalidOperationException(
                        $"{metric.Name} has delta temporality; Prometheus needs cumulative (add the exporter with AddPrometheusExporter)");
            }
            _exported = MetricsSnapshot.Take(batch, ParentProvider?.GetResource() ?? OpenTelemetry.Resources.Resource.Empty);
            return ExportResult.Success;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The SDK swallows exceptions from exporters; keep it for the scrape's error response.
            _exportError = e;
            return ExportResult.Failure;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _collecting.Dispose();
        base.Dispose(disposing);
    }

    private PrometheusScrape? Fresh(PrometheusScrape? scrape) =>
        scrape is not null && CacheDuration > TimeSpan.Zero && Stopwatch.GetElapsedTime(scrape.CollectedAt) < CacheDuration ? scrape : null;
}

/// <summary>One collection, written in a format on first request (both come from the same numbers).</summary>
public sealed class PrometheusScrape
{
    private readonly MetricsSnapshot _snapshot;
    private byte[]? _text, _openMetrics;

    internal PrometheusScrape(MetricsSnapshot snapshot, long collectedAt)
    {
        _snapshot = snapshot;
        CollectedAt = collectedAt;
    }

    /// <summary><see cref="Stopwatch.GetTimestamp"/> when the collection finished.</summary>
    public long CollectedAt { get; }

    /// <summary>The exposition in UTF-8 (concurrent callers may both serialize; one result is kept).</summary>
    public ReadOnlyMemory<byte> In(ExpositionFormat format) => format.IsOpenMetrics
        ? LazyInitializer.EnsureInitialized(ref _openMetrics, () => PrometheusSerializer.Write(_snapshot, format))
        : LazyInitializer.EnsureInitialized(ref _text, () => PrometheusSerializer.Write(_snapshot, format));
}
