using ErrorWatch.Health;
using ErrorWatch.Watching;
using Serilog;

namespace ErrorWatch.Modules;

/// <summary>What a module's health source is made with, for one watched superblock (<see cref="IFilesystemModule.CreateHealthSource"/>).</summary>
/// <param name="Instance">Identifies the mount's lifetime: in-memory state (XFS health, ext4 emergency_ro) ends with it.</param>
public sealed record HealthSourceContext(SuperblockWatch Watch, Watcher Watcher, HealthBaseline Baseline, string Instance, HealthOptions Options, ILogger Log);
