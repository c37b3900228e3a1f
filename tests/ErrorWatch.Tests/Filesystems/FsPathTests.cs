using System.Globalization;
using System.Text;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Tests.Filesystems;

/// <summary>Paths are raw kernel bytes; Escaped must be one printable, reversible line.</summary>
public class FsPathTests
{
    public static TheoryData<byte[], string> Escapes => new()
    {
        { "a\nb"u8.ToArray(), @"a\nb" },
        { "a\tb"u8.ToArray(), @"a\tb" },
        { "a\rb"u8.ToArray(), @"a\rb" },
        { @"a\b"u8.ToArray(), @"a\\b" },
        { [0x1b, (byte)'[', (byte)'2', (byte)'J'], @"\x1b[2J" },          // terminal escape
        { [0x00, 0x07, 0x7f], @"\x00\x07\x7f" },
        { [(byte)'/', 0xff, (byte)'x'], @"/\xffx" },                     // invalid UTF-8
        { [0xc3], @"\xc3" },                                             // truncated sequence
        { [0xed, 0xa0, 0x80], @"\xed\xa0\x80" },                         // UTF-8-encoded surrogate
        { [0xc0, 0xaf], @"\xc0\xaf" },                                   // overlong "/"
        { "/mnt/café"u8.ToArray(), "/mnt/café" },                        // valid non-ASCII kept
        { "日本/😀"u8.ToArray(), "日本/😀" },
        { "a\u2028b"u8.ToArray(), @"a\xe2\x80\xa8b" },                   // LINE SEPARATOR
        { "a\u2029b"u8.ToArray(), @"a\xe2\x80\xa9b" },                   // PARAGRAPH SEPARATOR
        { "a\u0085b"u8.ToArray(), @"a\xc2\x85b" },                       // NEL (C1 control)
        { "a\uFFFEb"u8.ToArray(), @"a\xef\xbf\xbeb" },                   // noncharacters: sd-bus refuses them
        { "a\uFDD0b\U0001FFFF"u8.ToArray(), @"a\xef\xb7\x90b\xf0\x9f\xbf\xbf" },
        { "plain/path"u8.ToArray(), "plain/path" },
        { [], "" },
    };

    [Theory]
    [MemberData(nameof(Escapes))]
    public void Escape_MakesControlAndInvalidBytesVisible(byte[] bytes, string expected)
    {
        Assert.Equal(expected, FsPath.Escape(bytes));
        Assert.Equal(expected, new FsPath(bytes).Escaped);
        Assert.Equal(bytes, Unescape(expected));
    }

    [Fact]
    public void Escape_IsReversibleAndPrintableForArbitraryBytes()
    {
        var random = new Random(7);
        for (var i = 0; i < 5000; i++)
        {
            var bytes = new byte[random.Next(0, 24)];
            random.NextBytes(bytes);
            if (i % 2 == 0) // bias half the samples towards valid multi-byte UTF-8 and backslashes
                bytes = [.. bytes.Take(4), .. "é\\€\n😀"u8, .. bytes.Skip(4)];

            var escaped = FsPath.Escape(bytes);

            Assert.Equal(bytes, Unescape(escaped));
            foreach (var rune in escaped.EnumerateRunes())
            {
                var category = Rune.GetUnicodeCategory(rune);
                Assert.False(category is UnicodeCategory.Control or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator,
                    $"unprintable U+{rune.Value:X4} in {escaped}");
            }
        }
    }

    [Fact]
    public void ValidUtf8_HasText()
    {
        var path = new FsPath("/mnt/café"u8);

        Assert.True(path.IsValidUtf8);
        Assert.Equal("/mnt/café", path.Text);
        Assert.Equal("/mnt/café", path.ToString());
    }

    [Fact]
    public void InvalidUtf8_HasNoTextAndPrintsEscaped()
    {
        var path = new FsPath([(byte)'/', (byte)'m', 0xff]);

        Assert.False(path.IsValidUtf8);
        Assert.Null(path.Text);
        Assert.Equal(@"/m\xff", path.ToString());
        Assert.Equal(new byte[] { (byte)'/', (byte)'m', 0xff }, path.Bytes.ToArray());
    }

    [Fact]
    public void ControlCharactersAreValidUtf8_TextKeepsThemAndEscapedShowsThem()
    {
        var path = new FsPath("/a\nb"u8);

        Assert.True(path.IsValidUtf8);
        Assert.Equal("/a\nb", path.Text);
        Assert.Equal(@"/a\nb", path.Escaped);
    }

    [Theory]
    [InlineData("/mnt/café\n\u001b[0m", true)]   // controls are text: JSON and D-Bus carry them, escaped or not
    [InlineData("/mnt/\uFFFE", false)]
    [InlineData("/mnt/\uFDEF", false)]
    [InlineData("/mnt/\U0010FFFE", false)]
    [InlineData("/mnt/\uFFFD\uFDCF\uFDF0", true)] // neighbours of the noncharacters are ordinary
    public void Plain_text_is_valid_UTF8_without_noncharacters_else_the_escaped_form_stands_in(string text, bool plain)
    {
        var path = FsPath.FromString(text);

        Assert.True(path.IsValidUtf8);
        Assert.Equal(text, path.Text);
        Assert.Equal(plain, path.IsPlainText);
        Assert.Equal(plain ? text : path.Escaped, path.TextOrEscaped);
        Assert.False(FsPath.HasNoncharacter(path.Escaped));
    }

    [Fact]
    public void Invalid_UTF8_is_not_plain_text()
    {
        var path = new FsPath([(byte)'/', 0xff]);

        Assert.False(path.IsPlainText);
        Assert.Equal(@"/\xff", path.TextOrEscaped);
    }

    [Fact]
    public void Constructor_CopiesTheBytes()
    {
        var source = "/mnt/x"u8.ToArray();
        var path = new FsPath(source);
        source[5] = (byte)'y';

        Assert.Equal("/mnt/x", path.Text);
    }

    [Theory]
    [InlineData("/", "/sub/dir", "/sub/dir")]
    [InlineData("/", "sub", "/sub")]
    [InlineData("/mnt/data", "/sub/dir", "/mnt/data/sub/dir")]
    [InlineData("/mnt/data", "sub", "/mnt/data/sub")]
    [InlineData("/mnt/data/", "/sub", "/mnt/data/sub")]
    [InlineData("/mnt/data", "/", "/mnt/data")]
    [InlineData("/mnt/data", "", "/mnt/data")]
    [InlineData("/", "/", "/")]
    public void Append_JoinsWithExactlyOneSlash(string basePath, string relative, string expected)
    {
        var joined = FsPath.FromString(basePath).Append(Encoding.UTF8.GetBytes(relative));

        Assert.Equal(expected, joined.Text);
    }

    [Fact]
    public void Append_KeepsRawBytes()
    {
        var joined = FsPath.FromString("/mnt").Append([(byte)'/', 0xff]);

        Assert.Equal(new byte[] { (byte)'/', (byte)'m', (byte)'n', (byte)'t', (byte)'/', 0xff }, joined.Bytes.ToArray());
        Assert.False(joined.IsValidUtf8);
    }

    [Theory]
    [InlineData("/mnt/a", "/mnt/a", true)]
    [InlineData("/mnt/a/b", "/mnt/a", true)]
    [InlineData("/mnt/ab", "/mnt/a", false)] // a prefix must end at a component boundary
    [InlineData("/mnt/a", "/mnt/ab", false)]
    [InlineData("/mnt", "/mnt/a", false)]
    [InlineData("/mnt/a", "/", true)]
    [InlineData("/", "/", true)]
    [InlineData("/mnt/a-b", "/mnt/a", false)]
    [InlineData("/mnt/a.b/c", "/mnt/a", false)]
    public void StartsWith_RespectsPathComponents(string path, string prefix, bool expected)
    {
        Assert.Equal(expected, FsPath.FromString(path).StartsWith(FsPath.FromString(prefix)));
    }

    [Fact]
    public void Equality_IsByteWise()
    {
        var a = new FsPath([(byte)'/', 0xff]);
        var b = new FsPath([(byte)'/', 0xff]);
        var c = new FsPath([(byte)'/', 0xfe]);

        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, c);
        Assert.False(a.Equals(null));
        Assert.Equal(FsPath.FromString("/é"), new FsPath("/é"u8));
    }

    /// <summary>Inverse of the documented escaping: \\ \n \r \t \xNN, everything else is UTF-8 text.</summary>
    private static byte[] Unescape(string escaped)
    {
        var bytes = new List<byte>();
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] != '\\')
            {
                var width = char.IsHighSurrogate(escaped[i]) ? 2 : 1;
                bytes.AddRange(Encoding.UTF8.GetBytes(escaped.Substring(i, width)));
                i += width - 1;
                continue;
            }
            var next = escaped[++i];
            switch (next)
            {
                case '\\': bytes.Add((byte)'\\'); break;
                case 'n': bytes.Add((byte)'\n'); break;
                case 'r': bytes.Add((byte)'\r'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case 'x':
                    bytes.Add(byte.Parse(escaped.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 2;
                    break;
                default: throw new FormatException($"unknown escape \\{next} in {escaped}");
            }
        }
        return bytes.ToArray();
    }

    [Fact]
    public void Every_noncharacter_is_found_and_no_other_code_point_is()
    {
        // The fast search looks for UTF-16 units; the answer must be the code-point definition's, for
        // every code point (surrogates themselves are not code points a string can hold alone).
        for (var cp = 0; cp <= 0x10ffff; cp++)
        {
            if (cp is >= 0xd800 and <= 0xdfff)
                continue;
            var text = "a/" + char.ConvertFromUtf32(cp) + "/b";
            Assert.True(FsPath.IsNoncharacter(cp) == FsPath.HasNoncharacter(text), $"U+{cp:X4}");
        }
        // Lone surrogates that look like a noncharacter's low half are not noncharacters.
        Assert.False(FsPath.HasNoncharacter("x\uDFFEy"));
        Assert.False(FsPath.HasNoncharacter("\uD83E\uDFFF".Substring(1)));
    }
}
