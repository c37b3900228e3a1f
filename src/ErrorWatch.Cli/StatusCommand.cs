using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ErrorWatch.Bus;
using ErrorWatch.Cli.Clients;

namespace ErrorWatch.Cli;

/// <summary>errorwatch status: what the running service knows, asked over D-Bus.</summary>
internal static class StatusCommand
{
    /// <summary>The bus the client commands find the service on (status, watch, list --live).</summary>
    public static readonly Option<string> Bus = new("--bus")
    {
        Description = "The bus ErrorWatch is on: system (default; honours DBUS_SYSTEM_BUS_ADDRESS), session, or a bus address (unix:path=/run/x/bus)",
        DefaultValueFactory = _ => "system",
    };

    private static readonly Option<bool> Json = new("--json")
    {
        Description = "One JSON object (keys: docs/report-schema.md, 'errorwatch status --json')",
    };

    static StatusCommand() => Bus.Validators.Add(result => ValidateBus(result, "--bus", allowSession: true));

    /// <summary>A bus option's value must be a known bus name or look like an address.</summary>
    public static void ValidateBus(System.CommandLine.Parsing.OptionResult result, string option, bool allowSession = true, bool allowSystem = true)
    {
        if (result.Tokens.Count == 0)
            return;
        var value = result.Tokens[^1].Value;
        if ((allowSystem && value == "system") || (allowSession && value == "session") || (value.Contains(':') && value.Contains('=')))
            return;
        var names = string.Join(", ", new[] { allowSystem ? "system" : null, allowSession ? "session" : null }.OfType<string>());
        result.AddError($"{option}: '{value}' is not {names} or a D-Bus address (unix:path=/run/dbus/system_bus_socket)");
    }

    public static Command Create()
    {
        var command = new Command("status", "Show the running service: version, kernel support, reports, and each watched filesystem's health")
        {
            Bus, Json,
        };
        command.SetAction(parse => Execute(parse));
        return command;
    }

    private static int Execute(ParseResult parse)
    {
        var bus = parse.GetValue(Bus)!;
        try
        {
            using var client = ErrorWatchClient.Connect(bus);
            client.RequireService();
            var status = client.GetStatus();
            var filesystems = client.GetFilesystems();
            if (parse.GetValue(Json))
            {
                WriteJson(Console.OpenStandardOutput(), status, filesystems);
                return 0;
            }
            var last = status.LastReportId.Length == 0 ? null : client.GetReport(status.LastReportId);
            Console.Out.Write(Text(client.BusLabel, status, last, filesystems));
            return 0;
        }
        catch (ServiceUnavailableException e)
        {
            Console.Error.WriteLine($"errorwatch status: {e.Message}");
            return ServiceUnavailableException.ExitCode;
        }
        catch (BusException e)
        {
            Console.Error.WriteLine($"errorwatch status: {e.Message}");
            return 1;
        }
    }

    internal static string Text(string busLabel, ServiceStatus status, IReadOnlyDictionary<string, object?>? last, IReadOnlyList<FilesystemStatus> filesystems)
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"ErrorWatch {status.Version} on {busLabel}\n");
        text.Append(CultureInfo.InvariantCulture, $"Kernel FAN_FS_ERROR support: {(status.KernelSupportsFsError ? "yes" : "no")}\n");
        text.Append(CultureInfo.InvariantCulture, $"Reports: {status.ReportCount}\n");
        if (status.LastReportId.Length > 0)
        {
            var summary = last is not null && last.TryGetValue("summary", out var s) && s is string words ? words : null;
            var time = last is not null && last.TryGetValue("time", out var t) && t is string when && DateTimeOffset.TryParse(when, CultureInfo.InvariantCulture, out var at)
                ? FormatTime(at) + " " : "";
            text.Append(CultureInfo.InvariantCulture, $"Last report: {time}{summary ?? "(no longer stored)"} [id {status.LastReportId}]\n");
        }
        text.Append(CultureInfo.InvariantCulture, $"Watched filesystems: {status.WatchedFilesystems}\n");
        if (filesystems.Count == 0)
            return text.ToString();
        string[] header = ["DEVICE", "TYPE", "MOUNTPOINTS", "HEALTH", "ERRORS", "LAST ERROR"];
        var rows = filesystems.Select(f => new[]
        {
            f.Device, f.Type, f.Mountpoints.Count == 0 ? "-" : string.Join(",", f.Mountpoints), f.HealthWord,
            f.ErrorCount.ToString(CultureInfo.InvariantCulture), f.LastErrorTime is { } le ? FormatTime(le) : "never",
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length))).ToArray();
        text.Append('\n');
        foreach (var row in rows.Prepend(header))
            text.Append(string.Join("  ", row.Select((cell, i) => i == 4 ? cell.PadLeft(widths[i]) : i == row.Length - 1 ? cell : cell.PadRight(widths[i])))).Append('\n');
        return text.ToString();
    }

    private static string FormatTime(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    /// <summary>RFC 3339 UTC with microseconds, as report times are written; null for "never".</summary>
    private static string? JsonTime(DateTimeOffset? time) => time?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture);

    /// <summary>The --json object; its keys are documented in docs/report-schema.md and only ever added to.</summary>
    internal static void WriteJson(Stream stream, ServiceStatus status, IReadOnlyList<FilesystemStatus> filesystems)
    {
        using (var w = new Utf8JsonWriter(stream, ErrorWatch.Bus.BusValueJson.Options))
        {
            w.WriteStartObject();
            w.WriteString("version", status.Version);
            w.WriteBoolean("kernel_supports_fs_error", status.KernelSupportsFsError);
            w.WriteNumber("watched_filesystems", status.WatchedFilesystems);
            w.WriteNumber("report_count", status.ReportCount);
            if (status.LastReportId.Length > 0)
                w.WriteString("last_report_id", status.LastReportId);
            else
                w.WriteNull("last_report_id");
            w.WriteStartArray("filesystems");
            foreach (var f in filesystems)
            {
                w.WriteStartObject();
                w.WriteString("device", f.Device);
                if (f.Uuid.Length > 0)
                    w.WriteString("uuid", f.Uuid);
                else
                    w.WriteNull("uuid");
                w.WriteString("type", f.Type);
                w.WriteStartArray("mountpoints");
                foreach (var m in f.Mountpoints)
                    w.WriteStringValue(m);
                w.WriteEndArray();
                w.WriteString("health", f.HealthWord);
                w.WriteNumber("health_code", f.Health);
                w.WriteNumber("error_count", f.ErrorCount);
                w.WriteString("first_error_time", JsonTime(f.FirstErrorTime));
                w.WriteString("last_error_time", JsonTime(f.LastErrorTime));
                if (f.LastReportId.Length > 0)
                    w.WriteString("last_report_id", f.LastReportId);
                else
                    w.WriteNull("last_report_id");
                w.WriteString("object_path", f.ObjectPath);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
        stream.Flush();
    }
}
