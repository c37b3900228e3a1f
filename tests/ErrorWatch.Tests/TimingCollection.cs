namespace ErrorWatch.Tests;

/// <summary>
/// Classes whose tests assert how long something took (a stop within its budget, a burst within one
/// sync interval, a wait that must not end early). Run alone, after the parallel collections: on a
/// 2-core machine other tests running beside them made the bounds a measure of the load, not of the code.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingCollection
{
    public const string Name = "Timed assertions";
}
