using ErrorWatch.Decoding;

namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// The fields of one <see cref="Ext4SuperblockImage"/>, copied so they outlive the read buffer
/// (a ref struct cannot be kept, queued or compared with a later read).
/// </summary>
public sealed class Ext4SuperblockSnapshot
{
    internal Ext4SuperblockSnapshot(in Ext4SuperblockImage image)
    {
        Magic = image.Magic;
        State = image.State;
        RawErrorsBehavior = image.RawErrorsBehavior;
        ErrorsBehavior = image.ErrorsBehavior;
        FeatureCompat = image.FeatureCompat;
        FeatureIncompat = image.FeatureIncompat;
        FeatureRoCompat = image.FeatureRoCompat;
        Uuid = image.Uuid;
        VolumeName = image.VolumeName;
        ErrorCount = image.ErrorCount;
        FirstError = image.FirstError;
        LastError = image.LastError;
        StoredChecksum = image.StoredChecksum;
        ComputedChecksum = image.ComputedChecksum;
    }

    public ushort Magic { get; }
    public bool IsExt4 => Magic == Ext4SuperblockImage.Ext4Magic;
    public Ext4State State { get; }

    /// <summary>EXT4_ERROR_FS: an error was recorded and e2fsck has not cleared it since.</summary>
    public bool HasErrors => (State & Ext4State.Errors) != 0;

    public ushort RawErrorsBehavior { get; }
    public Ext4ErrorsBehavior ErrorsBehavior { get; }
    public uint FeatureCompat { get; }
    public uint FeatureIncompat { get; }
    public uint FeatureRoCompat { get; }
    public bool HasMetadataCsum => (FeatureRoCompat & Ext4SuperblockImage.RoCompatMetadataCsum) != 0;
    public Guid Uuid { get; }
    public string VolumeName { get; }
    public uint ErrorCount { get; }
    public Ext4ErrorSite? FirstError { get; }
    public Ext4ErrorSite? LastError { get; }
    public uint StoredChecksum { get; }
    public uint ComputedChecksum { get; }

    /// <summary>True when s_checksum matches, or when there is no metadata_csum and so nothing to check.</summary>
    public bool ChecksumValid => !HasMetadataCsum || StoredChecksum == ComputedChecksum;
}
