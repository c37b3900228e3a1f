using System.CommandLine;
using ErrorWatch.Cli;

var root = new RootCommand("ErrorWatch: tells you when a filesystem is corrupting your data, in time to act")
{
    RunCommand.Create(),
    DecodeCommand.Create(),
    DemoCommand.Create(),
    ListCommand.Create(),
    StatusCommand.Create(),
    WatchCommand.Create(),
    NotifyCommand.Create(),
    CheckConfigCommand.Create(),
    HooksCommand.Create(),
};
return root.Parse(args).Invoke();
