namespace ErrorWatch.Configuration;

/// <summary>
/// How a key is given on <c>errorwatch run</c>'s command line, where it overrides the file. The
/// command line's parser is built from this (src/ErrorWatch.Cli/SettingOptions.cs).
/// </summary>
/// <param name="Name">The option, with its dashes: --check-interval.</param>
/// <param name="Help">The help line.</param>
public sealed record CommandLineOption(string Name, string Help)
{
    public IReadOnlyList<string> Aliases { get; init; } = [];
    /// <summary>
    /// For a boolean key, the value a flag sets: --no-paths sets ResolvePaths=no. Null: the option
    /// takes a value (a time span in seconds, as the command line always took it).
    /// </summary>
    public bool? FlagSets { get; init; }
}

/// <summary>
/// One key of errorwatch.conf, declared once in <see cref="SettingKeys"/>: where it lives, how its
/// value is written and checked, its default, whether a reload applies it, its command-line option
/// and what it means. File parsing, command-line overrides, check-config and the key reference in
/// docs/configuration.md all come from these declarations.
/// </summary>
public abstract class SettingKey(string section, string name)
{
    public string Section { get; } = section;
    public string Name { get; } = name;
    /// <summary>One line for the docs and for <c>check-config --keys</c>.</summary>
    public required string Description { get; init; }
    /// <summary>A reload (SIGHUP) applies a change at once; otherwise it waits for the next restart.</summary>
    public bool Reloadable { get; init; }
    public CommandLineOption? Option { get; init; }
    /// <summary>The default as the docs say it, where it is not a fixed value (it comes from the environment).</summary>
    public string? DefaultText { get; init; }

    public abstract SettingKind Kind { get; }
    public abstract string Type { get; }
    public abstract string? Values { get; }
    /// <summary>A choice's words, for the command line's help.</summary>
    public abstract IReadOnlyList<string> Choices { get; }
    /// <summary>The default as a value would be written in the file ("" for an empty list or unset text).</summary>
    public abstract string FormattedDefault { get; }

    /// <summary>This key's value in <paramref name="settings"/>, as check-config writes it.</summary>
    public abstract string Format(ErrorWatchSettings settings);

    public abstract bool Differs(ErrorWatchSettings a, ErrorWatchSettings b);

    /// <summary>
    /// One assignment from the file: an empty value resets to <paramref name="defaults"/>' value; a
    /// list adds its items once <paramref name="assignedLists"/> says it has been assigned since its
    /// last reset (the first assignment replaces the default). False, with the problem, leaves
    /// <paramref name="settings"/> as it was.
    /// </summary>
    internal abstract bool TryAssign(ref ErrorWatchSettings settings, string value, ErrorWatchSettings defaults, HashSet<SettingKey> assignedLists, out string problem);

    /// <summary>A command-line value: the file's syntax for one value, or, for a list, its items as given (never split).</summary>
    public abstract bool TryOverride(ref ErrorWatchSettings settings, IReadOnlyList<string> values, out string problem);

    public override string ToString() => $"[{Section}] {Name}";

    /// <summary>
    /// systemd list semantics for one assignment: its items are added, each once. All or nothing:
    /// half a list is not what anyone wrote, so one invalid item (named in <paramref name="problem"/>) adds none.
    /// </summary>
    internal static bool TryAddItems(List<string> list, IReadOnlyList<string> items, Func<string, string?> invalid, out string problem)
    {
        foreach (var item in items)
        {
            if (invalid(item) is { } why)
            {
                problem = why;
                return false;
            }
        }
        foreach (var item in items)
        {
            if (!list.Contains(item))
                list.Add(item);
        }
        problem = "";
        return true;
    }
}

/// <summary>A key whose value is a <typeparamref name="T"/>, read and written through typed delegates (no reflection: trimmed and AOT-compiled).</summary>
public sealed class SettingKey<T>(
    string section, string name, SettingSyntax<T> syntax, T defaultValue,
    Func<ErrorWatchSettings, T> get, Func<ErrorWatchSettings, T, ErrorWatchSettings> set) : SettingKey(section, name)
{
    public SettingSyntax<T> Syntax { get; } = syntax;
    public T Default { get; } = defaultValue;

    public override SettingKind Kind => Syntax.Kind;
    public override string Type => Syntax.Type;
    public override string? Values => Syntax.Values;
    public override IReadOnlyList<string> Choices => Syntax.Choices;
    public override string FormattedDefault => Syntax.Format(Default);

    public T Get(ErrorWatchSettings settings) => get(settings);

    public ErrorWatchSettings Set(ErrorWatchSettings settings, T value) => set(settings, value);

    public override string Format(ErrorWatchSettings settings) => Syntax.Format(get(settings));

    public override bool Differs(ErrorWatchSettings a, ErrorWatchSettings b) =>
        get(a) is IReadOnlyList<string> x && get(b) is IReadOnlyList<string> y ? !x.SequenceEqual(y) : !EqualityComparer<T>.Default.Equals(get(a), get(b));

    internal override bool TryAssign(ref ErrorWatchSettings settings, string value, ErrorWatchSettings defaults, HashSet<SettingKey> assignedLists, out string problem)
    {
        problem = "";
        // An empty assignment resets a key to its default, as in systemd.
        if (value.Length == 0)
        {
            assignedLists.Remove(this);
            settings = set(settings, get(defaults));
            return true;
        }
        if (Syntax.Kind != SettingKind.List)
        {
            if (!Syntax.TryParse(value, out var parsed, out problem))
                return false;
            settings = set(settings, parsed);
            return true;
        }
        if (value == Syntax.NoneWord)
        {
            assignedLists.Add(this);
            settings = set(settings, (T)(object)Array.Empty<string>().AsReadOnly());
            return true;
        }
        // systemd list semantics: each assignment adds its items (duplicates once).
        var items = new List<string>(assignedLists.Contains(this) ? (IReadOnlyList<string>)get(settings)! : []);
        if (!TryAdd(items, SettingsFile.SplitList(value), out problem))
            return false;
        assignedLists.Add(this);
        settings = set(settings, (T)(object)items.ToArray().AsReadOnly());
        return true;
    }

    public override bool TryOverride(ref ErrorWatchSettings settings, IReadOnlyList<string> values, out string problem)
    {
        if (Syntax.Kind == SettingKind.List)
        {
            var items = new List<string>();
            if (!TryAdd(items, values.Where(v => v != Syntax.NoneWord).ToList(), out problem))
                return false;
            settings = set(settings, (T)(object)items.ToArray().AsReadOnly());
            return true;
        }
        if (!Syntax.TryParse(values[^1], out var parsed, out problem))
            return false;
        settings = set(settings, parsed);
        return true;
    }

    private bool TryAdd(List<string> list, IReadOnlyList<string> items, out string problem) =>
        TryAddItems(list, items, item => Syntax.TryParse(item, out _, out var why) ? null : why, out problem);
}
