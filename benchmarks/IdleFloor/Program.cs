// Sleeps until killed: what a .NET process costs before any code of its own runs.
Thread.Sleep(Timeout.Infinite);
