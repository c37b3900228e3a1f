using ErrorWatch.Tests.Service;
using YamlDotNet.RepresentationModel;

namespace ErrorWatch.Tests.Install;

/// <summary>
/// The Dockerfile, compose file and DaemonSet cannot be built or run here (no container engine, no
/// registry); what runs in them is the publish output the install test checks. These tests keep
/// the three files saying what deploy/README.md says: the same publish, exactly the capabilities
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
    public void The_image_is_built_from_the_packages_publish_in_two_stages()
    {
        var lines = File.ReadAllLines(Repo("Dockerfile")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var from = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, from.Count);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build", from[0]);
        Assert.Equal("FROM debian:bookworm-slim", from[1]); // the Debian the install test boots
        Assert.Contains("RUN packaging/publish.sh /out", lines);
        Assert.Contains("COPY --from=build /out /usr/lib/errorwatch", lines);
        Assert.Contains(lines, l => l.StartsWith("ENTRYPOINT [\"/usr/lib/errorwatch/errorwatch\"]", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("libsystemd0", StringComparison.Ordinal));
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
