using NetArchTest.Rules;

namespace ErrorWatch.Tests.Architecture;

/// <summary>
/// The pipeline's stages depend on earlier stages only: kernel → watching → decoding and modules →
/// store → outputs → the daemon that puts them together, with the typed report model (Reports: the
/// report, its fields, its JSON) right after the kernel's types, since every stage from watching on
/// speaks it. A type that reaches forward (a module needing an output, a report type needing the
/// store) makes a cycle between stages; this test names it.
/// </summary>
public sealed class StageDependencyTests
{
    /// <summary>Each stage's namespaces, in pipeline order.</summary>
    public static readonly (string Stage, string[] Namespaces)[] Stages =
    [
        ("kernel", ["ErrorWatch", "ErrorWatch.Interop", "ErrorWatch.Kernel", "ErrorWatch.Filesystems"]),
        ("report model", ["ErrorWatch.Reports"]),
        ("watching", ["ErrorWatch.Watching"]),
        ("decoding and modules", ["ErrorWatch.Decoding", "ErrorWatch.Modules", "ErrorWatch.Health"]),
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
            .That().ResideInNamespaceMatching(Pattern(Stages[index].Namespaces))
            .ShouldNot().HaveDependencyOnAny(later)
            .GetResult();
        Assert.True(result.IsSuccessful,
            $"{stage} reaches later stages ({string.Join(", ", later)}) from: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    /// <summary>The namespaces and those under them; the root namespace (ErrorWatch) only itself.</summary>
    private static string Pattern(string[] namespaces) =>
        "^(" + string.Join("|", namespaces.Select(n => n == "ErrorWatch" ? @"ErrorWatch$" : System.Text.RegularExpressions.Regex.Escape(n) + @"(\..+)?$")) + ")";

    [Fact]
    public void Every_namespace_belongs_to_a_stage()
    {
        var known = Stages.SelectMany(s => s.Namespaces).ToArray();
        var namespaces = typeof(ErrorWatch.Reports.CorruptionReport).Assembly.GetTypes()
            .Select(t => t.Namespace ?? "")
            .Where(n => n.StartsWith("ErrorWatch", StringComparison.Ordinal))
            .Distinct()
            .Where(n => !System.Text.RegularExpressions.Regex.IsMatch(n, Pattern(known)))
            .Order()
            .ToList();
        Assert.True(namespaces.Count == 0, "namespaces in no stage: " + string.Join(", ", namespaces));
    }
}
