namespace ErrorWatch.Store;

/// <summary>
/// A place in the store, in the order reports were appended: the end of a record in segment
/// <see cref="Segment"/> (the next record starts at <see cref="Offset"/>). Report ids cannot order
/// reports (two made in one millisecond have random low bits); positions can.
/// </summary>
public readonly record struct StorePosition(long Segment, long Offset) : IComparable<StorePosition>
{
    public int CompareTo(StorePosition other) => Segment != other.Segment ? Segment.CompareTo(other.Segment) : Offset.CompareTo(other.Offset);

    public static bool operator <(StorePosition a, StorePosition b) => a.CompareTo(b) < 0;
    public static bool operator >(StorePosition a, StorePosition b) => a.CompareTo(b) > 0;
    public static bool operator <=(StorePosition a, StorePosition b) => a.CompareTo(b) <= 0;
    public static bool operator >=(StorePosition a, StorePosition b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"{Segment}:{Offset}";
}
