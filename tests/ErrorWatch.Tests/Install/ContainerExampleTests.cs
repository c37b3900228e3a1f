using ErrorWatch.Tests.Service;
using YamlDotNet.RepresentationModel;

namespace ErrorWatch.Tests.Install;

/// <summary>
/// The Dockerfile, compose file and DaemonSet cannot be built or run here (no container engine, no
/// registry); what runs in them is the executable the install test checks. These tests keep
/// the three files saying what deploy/README.md says: the same executable, exactly the capabilities
/// the service has, the host's filesystems with propagation, and nothing privileged.
/// </summary>
public sealed class ContainerExampleTests
{
    private static string Repo(params string[] parts) => Path.Combine([ServicePaths.RepositoryRoot, .. parts]);

    private static YamlMappingNode Load(string file, int document = 0)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(file);
        stream.Load(reader);
        return (YamlMappingNode)stream.Documents[document].RootNode;
    }

    private static YamlNode At(YamlNode node, params string[] keys)
    {
        foreach (var key in keys)
            node = ((YamlMappingNode)node).Children[new YamlScalarNode(key)];
        return node;
    }

    private static List<string> Strings(YamlNode node) => ((YamlSequenceNode)node).Children.Select(c => ((YamlScalarNode)c).Value!).ToList();

    [Fact]
    public void The_image_is_the_packages_one_executable_on_debian_12_with_its_symbols_in_a_stage_apart()
    {
        var lines = File.ReadAllLines(Repo("Dockerfile")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var from = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build", "FROM scratch AS symbols", "FROM debian:bookworm-slim"], from);
        // NativeAOT links with a C toolchain in the build stage; the executable it makes is checked
        // against bookworm's glibc (the SDK image is Ubuntu's).
        Assert.Contains(lines, l => l.Contains("apt-get install", StringComparison.Ordinal) && l.Contains(" gcc ", StringComparison.Ordinal));
        Assert.Contains("RUN packaging/publish.sh /out \\", lines);
        Assert.Contains(lines, l => l.Contains("objdump -T /out/errorwatch", StringComparison.Ordinal));
        Assert.Contains("COPY --from=build /out.dbg/ /", lines);
        // The runtime stage (the last: what `docker build` makes) gets the one file, not the symbols.
        var runtime = lines.SkipWhile(l => l != "FROM debian:bookworm-slim").ToList();
        Assert.Contains("COPY --from=build /out/errorwatch /usr/lib/errorwatch/errorwatch", runtime);
        Assert.DoesNotContain(runtime, l => l.Contains(".dbg", StringComparison.Ordinal) || l.Contains("DOTNET_", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.StartsWith("ENTRYPOINT [\"/usr/lib/errorwatch/errorwatch\"]", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.Contains("libsystemd0", StringComparison.Ordinal));
    }

    [Fact]
    public void Compose_adds_only_the_services_capabilities_and_binds_the_hosts_tree_with_propagation()
    {
        var service = At(Load(Repo("deploy", "docker-compose.yml")), "services", "errorwatch");
        Assert.Equal(["ALL"], Strings(At(service, "cap_drop")));
        Assert.Equal(["SYS_ADMIN", "DAC_READ_SEARCH", "SYSLOG"], Strings(At(service, "cap_add")));
        Assert.Equal("host", ((YamlScalarNode)At(service, "userns_mode")).Value);
        Assert.False(((YamlMappingNode)service).Children.ContainsKey(new YamlScalarNode("privileged")));
        var root = ((YamlSequenceNode)At(service, "volumes")).Children.OfType<YamlMappingNode>()
            .Single(v => ((YamlScalarNode)At(v, "source")).Value == "/");
        Assert.Equal("/host", ((YamlScalarNode)At(root, "target")).Value);
        Assert.Equal("rslave", ((YamlScalarNode)At(root, "bind", "propagation")).Value);
        var volumes = ((YamlSequenceNode)At(service, "volumes")).Children.OfType<YamlScalarNode>().Select(v => v.Value).ToList();
        Assert.Contains("/run/systemd/journal:/run/systemd/journal", volumes);
        Assert.Contains("/run/dbus:/run/dbus", volumes);
        Assert.Contains("/var/lib/errorwatch:/var/lib/errorwatch", volumes);
        Assert.Equal(["127.0.0.1:9464:9464"], Strings(At(service, "ports")));
    }

    [Fact]
    public void The_daemonset_is_unprivileged_but_for_the_two_capabilities_and_sees_the_nodes_mounts()
    {
        var spec = At(Load(Repo("deploy", "kubernetes", "daemonset.yaml"), document: 2), "spec", "template", "spec");
        Assert.Equal("true", ((YamlScalarNode)At(spec, "hostUsers")).Value);
        var container = (YamlMappingNode)((YamlSequenceNode)At(spec, "containers")).Children.Single();
        var security = At(container, "securityContext");
        Assert.Equal("false", ((YamlScalarNode)At(security, "privileged")).Value);
        Assert.Equal(["ALL"], Strings(At(security, "capabilities", "drop")));
        Assert.Equal(["SYS_ADMIN", "DAC_READ_SEARCH"], Strings(At(security, "capabilities", "add")));
        var hostRoot = ((YamlSequenceNode)At(container, "volumeMounts")).Children.OfType<YamlMappingNode>()
            .Single(m => ((YamlScalarNode)At(m, "name")).Value == "host-root");
        Assert.Equal("/host", ((YamlScalarNode)At(hostRoot, "mountPath")).Value);
        Assert.Equal("HostToContainer", ((YamlScalarNode)At(hostRoot, "mountPropagation")).Value);
        var volume = ((YamlSequenceNode)At(spec, "volumes")).Children.OfType<YamlMappingNode>()
            .Single(v => ((YamlScalarNode)At(v, "name")).Value == "host-root");
        Assert.Equal("/", ((YamlScalarNode)At(volume, "hostPath", "path")).Value);
    }
}
