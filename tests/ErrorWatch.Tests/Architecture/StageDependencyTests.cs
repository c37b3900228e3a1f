using NetArchTest.Rules;

namespace ErrorWatch.Tests.Architecture;

/// <summary>
/// The pipeline's stages depend on earlier stages only: kernel → watching → decoding and modules →
/// reports → store → outputs → the daemon that puts them together. A type that reaches forward (a
/// report type needing the store, a filesystem module needing an output) makes a cycle between
/// stages; this test names it.
/// </summary>
public sealed class StageDependencyTests
{
    /// <summary>Each stage's namespaces, in pipeline order.</summary>
    public static readonly (string Stage, string[] Namespaces)[] Stages =
    [
        ("kernel", ["ErrorWatch.Interop", "ErrorWatch.Kernel", "ErrorWatch.Filesystems"]),
        ("watching", ["ErrorWatch.Watching"]),
        ("decoding and modules", ["ErrorWatch.Decoding", "ErrorWatch.Modules", "ErrorWatch.Health"]),
        ("reports", ["ErrorWatch.Reports"]),
        ("store", ["ErrorWatch.Store"]),
        ("outputs", ["ErrorWatch.Publishing", "ErrorWatch.Bus", "ErrorWatch.Recovery"]),
        ("daemon", ["ErrorWatch.Daemon", "ErrorWatch.Configuration"]),
    ];

    public static TheoryData<string> StageNames() => [.. Stages.Select(s => s.Stage)];

    [Theory]
    [MemberData(nameof(StageNames))]
    public void A_stage_depends_on_no_later_stage(string stage)
    {
        var index = Array.FindIndex(Stages, s => s.Stage == stage);
        var later = Stages.Skip(index + 1).SelectMany(s => s.Namespaces).ToArray();
        if (later.Length == 0)
            return;
        var result = Types.InAssembly(typeof(ErrorWatch.Reports.CorruptionReport).Assembly)
            .That().ResideInNamespace(Stages[index].Namespaces[0])
            .Or().ResideInNamespace(Stages[index].Namespaces.ElementAtOrDefault(1) ?? Stages[index].Namespaces[0])
            .Or().ResideInNamespace(Stages[index].Namespaces.ElementAtOrDefault(2) ?? Stages[index].Namespaces[0])
            .ShouldNot().HaveDependencyOnAny(later)
            .GetResult();
        Assert.True(result.IsSuccessful,
            $"{stage} reaches later stages ({string.Join(", ", later)}) from: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    [Fact]
    public void Every_namespace_belongs_to_a_stage()
    {
        var known = Stages.SelectMany(s => s.Namespaces).ToArray();
        var namespaces = typeof(ErrorWatch.Reports.CorruptionReport).Assembly.GetTypes()
            .Select(t => t.Namespace ?? "")
            .Where(n => n.StartsWith("ErrorWatch", StringComparison.Ordinal))
            .Distinct()
            .Where(n => !known.Any(k => n == k || n.StartsWith(k + ".", StringComparison.Ordinal)))
            .Order()
            .ToList();
        Assert.True(namespaces.Count == 0, "namespaces in no stage: " + string.Join(", ", namespaces));
    }
}
