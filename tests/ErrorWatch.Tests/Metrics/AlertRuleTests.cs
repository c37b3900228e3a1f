using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using ErrorWatch.Tests.Service;
using YamlDotNet.RepresentationModel;

namespace ErrorWatch.Tests.Metrics;

/// <summary>A fact that runs promtool; skipped only where it is not installed, saying so.</summary>
public sealed class PromtoolFactAttribute : FactAttribute
{
    public PromtoolFactAttribute()
    {
        if (AlertRuleTests.Promtool is null)
            Skip = "needs promtool (Debian package prometheus; scripts/test.sh installs it)";
    }
}

/// <summary>
/// deploy/prometheus/errorwatch-rules.yml as Prometheus judges it (promtool check rules), its unit
/// tests (promtool test rules tests/prometheus/errorwatch-rules.test.yml), and checks that keep both
/// honest: every alert is tested firing and quiet, and the rules speak only of the metrics and
/// labels ErrorWatch exports (docs/metrics.md).
/// </summary>
public sealed partial class AlertRuleTests
{
    public static readonly string? Promtool = FindPromtool();

    private const string RulesRelative = "deploy/prometheus/errorwatch-rules.yml";
    private const string TestsRelative = "tests/prometheus/errorwatch-rules.test.yml";

    /// <summary>The series ErrorWatch's exporter writes (OpenTelemetry names translated to Prometheus), plus Prometheus' own up.</summary>
    private static readonly HashSet<string> Metrics =
    [
        "errorwatch_filesystem_errors_total",
        "errorwatch_reports_total",
        "errorwatch_filesystem_health",
        "errorwatch_filesystem_last_error_seconds",
        "errorwatch_watched_filesystems",
        "errorwatch_events_read_total",
        "errorwatch_hooks_runs_total",
        "errorwatch_hook_duration_seconds_bucket",
        "errorwatch_hook_duration_seconds_sum",
        "errorwatch_hook_duration_seconds_count",
        "errorwatch_report_latency_seconds_bucket",
        "errorwatch_report_latency_seconds_sum",
        "errorwatch_report_latency_seconds_count",
        "target_info",
        "up",
    ];

    /// <summary>Labels of those series, and the target labels Prometheus adds.</summary>
    private static readonly HashSet<string> Labels =
    [
        "system_device", "system_filesystem_mountpoint", "system_filesystem_type",
        "error_type", "errorwatch_source", "errorwatch_event", "errorwatch_severity",
        "errorwatch_hook", "errorwatch_outcome", "le",
        "service_name", "service_version", "service_instance_id", "host_name",
        "job", "instance",
    ];

    /// <summary>Labels with a closed set of values: a matcher on one of them must name only these.</summary>
    private static readonly Dictionary<string, string[]> LabelValues = new()
    {
        ["errorwatch_event"] = ["corruption", "io", "shutdown", "readonly", "resource", "events-lost", "other"],
        ["errorwatch_severity"] = ["critical", "error", "warning"],
        ["errorwatch_source"] = ["fanotify", "ext4-sysfs", "ext4-superblock", "ext4-state", "xfs-health", "xfs-health-monitor"],
        ["errorwatch_outcome"] = ["success", "failure", "timeout", "skipped"],
        ["job"] = ["errorwatch"],
    };

    private static string RulesPath => Path.Combine(ServicePaths.RepositoryRoot, RulesRelative);

    private static string TestsPath => Path.Combine(ServicePaths.RepositoryRoot, TestsRelative);

    [PromtoolFact]
    public void Promtool_check_rules_accepts_the_rules()
    {
        var (code, output) = RunPromtool("check", "rules", RulesRelative);
        Assert.True(code == 0, $"promtool check rules {RulesRelative} exited {code}:\n{output}");
        Assert.DoesNotContain("duplicate", output, StringComparison.OrdinalIgnoreCase);
    }

    [PromtoolFact]
    public void Promtool_unit_tests_of_the_rules_pass()
    {
        var (code, output) = RunPromtool("test", "rules", TestsRelative);
        Assert.True(code == 0, $"promtool test rules {TestsRelative} exited {code}:\n{output}");
    }

    [Fact]
    public void The_rules_are_one_group_of_alerts_with_severity_summary_and_description()
    {
        var groups = Sequence(Load(RulesPath), "groups");
        var group = Assert.Single(groups.Children.Cast<YamlMappingNode>());
        Assert.Equal("errorwatch", Scalar(group, "name"));
        var problems = new List<string>();
        foreach (var rule in Rules())
        {
            if (rule.Severity is not ("critical" or "warning"))
                problems.Add($"{rule.Alert}: severity '{rule.Severity}' is neither critical nor warning");
            foreach (var annotation in new[] { "summary", "description" })
            {
                if (!rule.Annotations.TryGetValue(annotation, out var text) || string.IsNullOrWhiteSpace(text))
                    problems.Add($"{rule.Alert}: no {annotation} annotation");
            }
            if (rule.Alert != "ErrorWatchDown" && !(rule.Annotations.GetValueOrDefault("description") ?? "").Contains("$labels.system_device"))
                problems.Add($"{rule.Alert}: the description does not name the device");
        }
        var expected = new[]
        {
            "FilesystemCorruptionDetected", "FilesystemErrors", "FilesystemReadOnly", "FilesystemShutDown",
            "FilesystemNoLongerWatched", "ErrorWatchDown", "ErrorWatchEventsLost",
        };
        Assert.Equal(expected.Order(), Rules().Select(r => r.Alert).Distinct().Order());
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public void Every_alert_is_tested_firing_with_labels_and_annotations_and_quiet()
    {
        var tests = Load(TestsPath);
        var ruleFiles = Sequence(tests, "rule_files").Children.Select(n => ((YamlScalarNode)n).Value!).ToList();
        var ruleFile = Assert.Single(ruleFiles);
        Assert.Equal(Path.GetFullPath(RulesPath), Path.GetFullPath(Path.Combine(Path.GetDirectoryName(TestsPath)!, ruleFile)));

        var firing = new Dictionary<string, int>();
        var quiet = new Dictionary<string, int>();
        var problems = new List<string>();
        var rules = Rules().ToDictionary(r => r.Alert);
        foreach (var test in Sequence(tests, "tests").Children.Cast<YamlMappingNode>())
        {
            var name = Scalar(test, "name") ?? "(unnamed)";
            if (!test.Children.TryGetValue(new YamlScalarNode("alert_rule_test"), out var cases))
                continue;
            foreach (var testCase in ((YamlSequenceNode)cases).Children.Cast<YamlMappingNode>())
            {
                var alert = Scalar(testCase, "alertname") ?? "";
                var at = $"{name}, {alert} at {Scalar(testCase, "eval_time")}";
                if (!rules.TryGetValue(alert, out var rule))
                {
                    problems.Add($"{at}: there is no such alert in {RulesRelative}");
                    continue;
                }
                var expected = testCase.Children.TryGetValue(new YamlScalarNode("exp_alerts"), out var node) && node is YamlSequenceNode seq
                    ? seq.Children.Cast<YamlMappingNode>().ToList()
                    : [];
                if (expected.Count == 0)
                {
                    quiet[alert] = quiet.GetValueOrDefault(alert) + 1;
                    continue;
                }
                firing[alert] = firing.GetValueOrDefault(alert) + 1;
                foreach (var exp in expected)
                {
                    var labels = exp.Children.TryGetValue(new YamlScalarNode("exp_labels"), out var l) ? (YamlMappingNode)l : null;
                    if (labels is null || Scalar(labels, "severity") != rule.Severity)
                        problems.Add($"{at}: exp_labels must include severity: {rule.Severity}");
                    var annotations = exp.Children.TryGetValue(new YamlScalarNode("exp_annotations"), out var a) ? (YamlMappingNode)a : null;
                    if (annotations is null || Scalar(annotations, "summary") is null || Scalar(annotations, "description") is null)
                        problems.Add($"{at}: exp_annotations must check summary and description");
                }
            }
        }
        foreach (var alert in rules.Keys)
        {
            if (!firing.ContainsKey(alert))
                problems.Add($"{alert}: no test case where it fires");
            if (!quiet.ContainsKey(alert))
                problems.Add($"{alert}: no test case where it does not fire");
        }
        Assert.True(problems.Count == 0, $"{TestsRelative}:\n" + string.Join('\n', problems));
    }

    [Fact]
    public void The_rules_use_only_metrics_and_labels_ErrorWatch_exports()
    {
        var problems = new List<string>();
        var metricsSeen = new HashSet<string>();
        foreach (var rule in Rules())
        {
            var queries = new List<(string Where, string Promql)> { ("expr", rule.Expr) };
            foreach (var (key, text) in rule.Annotations)
            {
                // Queries in templates: {{ ... printf "target_info{job=%q,...}" ... | query }}.
                foreach (Match m in PrintfFormat().Matches(text))
                    queries.Add(($"annotation {key}", m.Groups[1].Value.Replace("%q", "\"errorwatch\"").Replace("\\\"", "\"")));
                foreach (Match m in TemplateLabel().Matches(text))
                    CheckLabel(rule.Alert, $"annotation {key}", m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value);
            }
            foreach (var (where, promql) in queries)
            {
                var parsed = PromqlNames.Parse(promql);
                foreach (var metric in parsed.Metrics)
                {
                    metricsSeen.Add(metric);
                    if (!Metrics.Contains(metric))
                        problems.Add($"{rule.Alert} {where}: '{metric}' is not a metric ErrorWatch exports");
                }
                foreach (var label in parsed.Labels)
                    CheckLabel(rule.Alert, where, label);
                foreach (var (label, value) in parsed.Matchers)
                {
                    CheckLabel(rule.Alert, where, label);
                    if (!LabelValues.TryGetValue(label, out var allowed))
                        continue;
                    foreach (var alternative in value.Split('|'))
                    {
                        if (!allowed.Contains(alternative))
                            problems.Add($"{rule.Alert} {where}: {label} is never '{alternative}' (values: {string.Join(", ", allowed)})");
                    }
                }
            }
        }
        // The tokenizer found what is obviously there (a check that it reads anything at all).
        Assert.Contains("errorwatch_filesystem_errors_total", metricsSeen);
        Assert.Contains("errorwatch_filesystem_health", metricsSeen);
        Assert.Contains("up", metricsSeen);
        Assert.Contains("target_info", metricsSeen);

        // The unit tests feed the same series the exporter writes.
        foreach (var test in Sequence(Load(TestsPath), "tests").Children.Cast<YamlMappingNode>())
        {
            foreach (var input in Sequence(test, "input_series").Children.Cast<YamlMappingNode>())
            {
                var series = Scalar(input, "series") ?? "";
                var metric = series.Split('{')[0].Trim();
                if (!Metrics.Contains(metric))
                    problems.Add($"{TestsRelative} ({Scalar(test, "name")}): input series '{metric}' is not a metric ErrorWatch exports");
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));

        void CheckLabel(string alert, string where, string label)
        {
            if (!Labels.Contains(label))
                problems.Add($"{alert} {where}: '{label}' is not a label of ErrorWatch's metrics");
        }
    }

    [Fact]
    public void Docs_metrics_md_names_every_metric_and_alert()
    {
        var doc = File.ReadAllText(Path.Combine(ServicePaths.RepositoryRoot, "docs", "metrics.md"));
        var missing = Metrics.Where(m => m != "up" && !Regex.IsMatch(m, "_(bucket|sum|count)$"))
            .Concat(["errorwatch_hook_duration_seconds", "errorwatch_report_latency_seconds"])
            .Where(m => !doc.Contains($"`{m}`"))
            .Concat(Rules().Select(r => r.Alert).Where(a => !doc.Contains($"`{a}`")))
            .ToList();
        Assert.True(missing.Count == 0, "docs/metrics.md does not mention: " + string.Join(", ", missing));
    }

    [PromtoolFact]
    public void Docs_example_queries_parse_and_use_only_exported_metrics()
    {
        var doc = File.ReadAllText(Path.Combine(ServicePaths.RepositoryRoot, "docs", "metrics.md"));
        var block = Regex.Match(doc, "```promql\n(.*?)```", RegexOptions.Singleline);
        Assert.True(block.Success, "docs/metrics.md has no ```promql block");
        var queries = block.Groups[1].Value.Split('\n').Where(l => l.Trim().Length > 0 && !l.StartsWith('#')).ToList();
        Assert.InRange(queries.Count, 8, 12);
        var unknown = queries.SelectMany(q => PromqlNames.Parse(q).Metrics).Where(m => !Metrics.Contains(m)).ToList();
        Assert.True(unknown.Count == 0, "docs/metrics.md queries use metrics ErrorWatch does not export: " + string.Join(", ", unknown));

        // As recording rules, promtool parses every query with Prometheus' own PromQL parser (JSON is YAML).
        var rules = new { groups = new[] { new { name = "docs", rules = queries.Select((q, i) => new { record = $"docs_query_{i}", expr = q }).ToArray() } } };
        var dir = Directory.CreateTempSubdirectory("errorwatch-promql-");
        try
        {
            var file = Path.Combine(dir.FullName, "queries.yml");
            File.WriteAllText(file, System.Text.Json.JsonSerializer.Serialize(rules));
            var (code, output) = RunPromtool("check", "rules", file);
            Assert.True(code == 0, $"promtool check rules on the queries of docs/metrics.md exited {code}:\n{output}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_metric_name_reader_finds_metrics_labels_and_matchers()
    {
        var parsed = PromqlNames.Parse("""
            sum without (error_type) (
              (a_total{x="1", y=~"b|c"} unless a_total offset 15m) and ignoring (z) (time() - b_seconds < 900)
              or increase(a_total{w!="q"}[15m])
            ) > 0 or absent(up{job="errorwatch"}) or rate(h_bucket[5m:1m]) # not_a_metric
            or topk by (q) (3, a_total)
            """);
        Assert.Equal(new[] { "a_total", "b_seconds", "h_bucket", "up" }, parsed.Metrics.Order());
        Assert.Equal(new[] { "error_type", "q", "z" }, parsed.Labels.Order());
        Assert.Equal(new[] { ("job", "errorwatch"), ("w", "q"), ("x", "1"), ("y", "b|c") }, parsed.Matchers.Order());
    }

    private sealed record AlertRule(string Alert, string Expr, string? Severity, Dictionary<string, string> Annotations);

    private static IEnumerable<AlertRule> Rules()
    {
        foreach (var group in Sequence(Load(RulesPath), "groups").Children.Cast<YamlMappingNode>())
        {
            foreach (var rule in Sequence(group, "rules").Children.Cast<YamlMappingNode>())
            {
                var alert = Scalar(rule, "alert");
                if (alert is null)
                    continue;
                var labels = rule.Children.TryGetValue(new YamlScalarNode("labels"), out var l) ? (YamlMappingNode)l : null;
                var annotations = rule.Children.TryGetValue(new YamlScalarNode("annotations"), out var a)
                    ? ((YamlMappingNode)a).Children.ToDictionary(kv => ((YamlScalarNode)kv.Key).Value!, kv => ((YamlScalarNode)kv.Value).Value ?? "")
                    : new Dictionary<string, string>();
                yield return new AlertRule(alert, Scalar(rule, "expr") ?? "", labels is null ? null : Scalar(labels, "severity"), annotations);
            }
        }
    }

    private static YamlMappingNode Load(string path)
    {
        var stream = new YamlStream();
        using var reader = new StringReader(File.ReadAllText(path));
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[0].RootNode;
    }

    private static YamlSequenceNode Sequence(YamlMappingNode node, string key)
        => node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlSequenceNode seq
            ? seq
            : throw new InvalidDataException($"no sequence '{key}' at {node.Start}");

    private static string? Scalar(YamlMappingNode node, string key)
        => node.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode scalar ? scalar.Value : null;

    private static (int Code, string Output) RunPromtool(params string[] args)
    {
        var psi = new ProcessStartInfo(Promtool!)
        {
            WorkingDirectory = ServicePaths.RepositoryRoot,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill();
            Assert.Fail($"promtool {string.Join(' ', args)} did not finish within 120 s");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static string? FindPromtool()
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/bin", "/usr/local/bin"]);
        return dirs.Select(d => Path.Combine(d, "promtool")).FirstOrDefault(File.Exists);
    }

    /// <summary>Format strings of printf in annotation templates, e.g. "target_info{job=%q,instance=%q}".</summary>
    [GeneratedRegex("""printf\s+"((?:[^"\\]|\\.)*)"\s""")]
    private static partial Regex PrintfFormat();

    /// <summary>Labels a template reads: $labels.name, or label "name".</summary>
    [GeneratedRegex(""""\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)|\blabel\s+"([^"]+)"""")]
    private static partial Regex TemplateLabel();
}

/// <summary>
/// The metric names, grouping labels and label matchers of a PromQL expression, found with a small
/// tokenizer: an identifier is a metric name unless it is a keyword or an aggregation operator, is
/// followed by "(" (a function), or stands in a label list (by, without, on, ignoring, group_left, group_right)
/// or a matcher. Strings, numbers, durations and comments are skipped.
/// </summary>
internal static partial class PromqlNames
{
    public sealed record Result(HashSet<string> Metrics, HashSet<string> Labels, HashSet<(string Label, string Value)> Matchers);

    private static readonly HashSet<string> Keywords =
        ["and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan", "atan2"];

    /// <summary>Aggregation operators, which may be followed by "by (...)" or "without (...)" before their "(".</summary>
    private static readonly HashSet<string> Aggregations =
        ["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"];

    private static readonly HashSet<string> Grouping = ["by", "without", "on", "ignoring", "group_left", "group_right"];

    public static Result Parse(string promql)
    {
        var tokens = Tokenize(promql);
        var result = new Result([], [], []);
        for (var i = 0; i < tokens.Count; i++)
        {
            var (kind, text) = tokens[i];
            if (kind == Kind.Punct && text == "{")
            {
                // Matchers: name op "value" [, ...] }
                for (i++; i < tokens.Count && tokens[i].Text != "}"; i++)
                {
                    if (tokens[i].Kind != Kind.Ident)
                        continue;
                    // The operator (=, !=, =~, !~) comes as one-character tokens.
                    var j = i + 1;
                    while (j < tokens.Count && tokens[j].Kind == Kind.Punct && tokens[j].Text is "=" or "!" or "~")
                        j++;
                    if (j < tokens.Count && tokens[j].Kind == Kind.String)
                    {
                        if (tokens[i].Text == "__name__")
                            result.Metrics.Add(tokens[j].Text);
                        else
                            result.Matchers.Add((tokens[i].Text, tokens[j].Text));
                        i = j;
                    }
                }
                continue;
            }
            if (kind == Kind.Punct && text == "[")
            {
                while (i < tokens.Count && tokens[i].Text != "]")
                    i++;
                continue;
            }
            if (kind != Kind.Ident)
                continue;
            var next = i + 1 < tokens.Count ? tokens[i + 1].Text : "";
            if (Grouping.Contains(text))
            {
                if (next == "(")
                {
                    for (i += 2; i < tokens.Count && tokens[i].Text != ")"; i++)
                    {
                        if (tokens[i].Kind == Kind.Ident)
                            result.Labels.Add(tokens[i].Text);
                    }
                }
                continue;
            }
            if (Keywords.Contains(text.ToLowerInvariant()) || Aggregations.Contains(text) || next == "(")
                continue;
            result.Metrics.Add(text);
        }
        return result;
    }

    private enum Kind { Ident, String, Number, Punct }

    private static List<(Kind Kind, string Text)> Tokenize(string s)
    {
        var tokens = new List<(Kind, string)>();
        for (var i = 0; i < s.Length;)
        {
            var c = s[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '#')
            {
                while (i < s.Length && s[i] != '\n')
                    i++;
            }
            else if (c is '"' or '\'' or '`')
            {
                var value = new StringBuilder();
                for (i++; i < s.Length && s[i] != c; i++)
                {
                    if (s[i] == '\\' && c != '`' && i + 1 < s.Length)
                        i++;
                    value.Append(s[i]);
                }
                i++;
                tokens.Add((Kind.String, value.ToString()));
            }
            else if (char.IsAsciiLetter(c) || c is '_' or ':')
            {
                var start = i;
                while (i < s.Length && (char.IsAsciiLetterOrDigit(s[i]) || s[i] is '_' or ':'))
                    i++;
                tokens.Add((Kind.Ident, s[start..i]));
            }
            else if (char.IsAsciiDigit(c) || c == '.')
            {
                var start = i;
                while (i < s.Length && (char.IsAsciiLetterOrDigit(s[i]) || s[i] == '.'))
                    i++;
                tokens.Add((Kind.Number, s[start..i]));
            }
            else
            {
                tokens.Add((Kind.Punct, c.ToString()));
                i++;
            }
        }
        return tokens;
    }
}
