using ErrorWatch.Filesystems;
using ErrorWatch.Modules;
using ErrorWatch.Publishing;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>
/// A restart must not turn a shut-down filesystem green: the ledger asks the filesystem's module what
/// state a mount is in as it starts to watch it (ext4: /proc/fs/ext4/NAME/options).
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class Ext4StateTests
{
    [LoopFact]
    public void A_mount_already_shut_down_is_shut_down_in_the_ledger_from_its_first_look()
    {
        using var scratch = new ScratchDirectory();
        var fine = scratch.Ext4("fine");
        var down = scratch.Ext4("down");
        down.ShutDown();
        var modules = FilesystemModules.CreateDefault();
        Superblock Of(ErrorWatch.Cli.Demo.ScratchFilesystem fs) =>
            new(fs.Device, "ext4", []) { Magic = ErrorWatch.Modules.Ext4.Ext4Module.SuperMagic, KernelName = fs.KernelName };

        Assert.Equal(MountErrorState.Normal, modules.StateNow(Of(fine)));
        Assert.Equal(MountErrorState.ShutDown, modules.StateNow(Of(down)));

        var ledger = new FilesystemLedger(null, Serilog.Core.Logger.None, modules.StateNow);
        ledger.Watch(Of(fine));
        ledger.Watch(Of(down));
        var health = ledger.WatchedStatus().ToDictionary(s => s.Superblock!.Device, s => s.Health);
        Assert.Equal(FilesystemHealth.Ok, health[fine.Device]);
        Assert.Equal(FilesystemHealth.ShutDown, health[down.Device]);

        // A module that does not tell (the generic one) leaves the mount ok.
        var generic = new Superblock(down.Device, "tmpfs", []) { Magic = 0x01021994, KernelName = down.KernelName };
        Assert.Equal(MountErrorState.Normal, modules.StateNow(generic));
    }
}
