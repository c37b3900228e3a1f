#!/usr/bin/env python3
"""errorwatch(8) in roff, generated from README.md and docs/ so the man page never drifts from them.

    packaging/manpage.py [--version V] [--repo DIR] > errorwatch.8      (check: man -l errorwatch.8)

Sections: NAME; SYNOPSIS (one line per `errorwatch <command>` in the README's Use table);
DESCRIPTION (the README's opening paragraphs); COMMANDS (the Use table); OUTPUT and REQUIREMENTS
(the README's "Where the output goes" and "Requirements");
CONFIGURATION (docs/configuration.md); FILES and "WHY IS NOTHING REPORTED?" (docs/operations.md);
SEE ALSO. The Markdown handled is what those files use: headings, paragraphs, "- " lists, fenced
code, pipe tables (first column becomes the tag of a .TP entry), `code`, **bold** and [links](...).
The date is the last commit's (or SOURCE_DATE_EPOCH), so the same tree gives the same page.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys


def escape(text):
    """Plain text for roff: backslashes, and a control character at the start of a line."""
    return text.replace("\\", "\\e")


def inline(text):
    """Markdown inline markup to roff fonts."""
    out = []
    # Split into code spans and the rest; code keeps its characters, with '-' as a real minus.
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2 == 1:
            code = escape(part[1:-1]).replace("-", "\\-")
            out.append("\\fB" + code + "\\fR")
            continue
        part = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", part)  # links: keep the text
        part = escape(part)
        part = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", part)
        out.append(part)
    return "".join(out)


def line(text):
    """One output line that roff will not take for a request."""
    return "\\&" + text if text.startswith((".", "'")) else text


def split_row(row):
    """Cells of a pipe-table row; '|' inside `code` or written \\| does not split."""
    cells, cell, in_code, i = [], "", False, 0
    row = row.strip()
    if row.startswith("|"):
        row = row[1:]
    if row.endswith("|") and not row.endswith("\\|"):
        row = row[:-1]
    while i < len(row):
        c = row[i]
        if c == "\\" and i + 1 < len(row) and row[i + 1] == "|":
            cell += "|"
            i += 2
            continue
        if c == "`":
            in_code = not in_code
        if c == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += c
        i += 1
    cells.append(cell.strip())
    return cells


def convert(lines, heading_macro=".SS"):
    """Markdown lines to roff lines. '#' headings become heading_macro (sub)sections."""
    out, para, i = [], [], 0

    def flush():
        if para:
            out.append(".PP")
            out.extend(line(inline(p)) for p in para)
            para.clear()

    while i < len(lines):
        text = lines[i].rstrip("\n")
        stripped = text.strip()
        if stripped.startswith("```"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                out.append(line(escape(lines[i].rstrip("\n"))))
                i += 1
            out += [".fi", ".RE"]
        elif stripped.startswith("#"):
            flush()
            title = stripped.lstrip("#").strip()
            out.append(heading_macro + " " + inline(title))
        elif stripped.startswith("|"):
            flush()
            header = split_row(stripped)
            i += 1  # the |---| separator
            while i + 1 < len(lines) and lines[i + 1].strip().startswith("|"):
                i += 1
                cells = split_row(lines[i])
                out.append(".TP")
                out.append(line(inline(cells[0])))
                if len(header) > 2:
                    # More columns: the last one describes; the ones between are named by their headers.
                    middle = [f"{h[:1].upper()}{h[1:]}: {c}." for h, c in zip(header[1:-1], cells[1:-1]) if c]
                    body = " ".join(middle + cells[-1:])
                else:
                    body = " ".join(c for c in cells[1:] if c)
                out.append(line(inline(body)))
        elif re.match(r"^\s*[-*] ", text):
            flush()
            item = [re.sub(r"^\s*[-*] ", "", text).strip()]
            while i + 1 < len(lines) and lines[i + 1].strip() and not re.match(r"^\s*([-*] |\||#|```)", lines[i + 1]):
                i += 1
                item.append(lines[i].strip())
            out.append(".IP \\(bu 2")
            out.extend(line(inline(p)) for p in item)
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return out


def sections(path):
    """The file as {heading: lines}; the text before the first heading is under ''."""
    result, current, fenced = {"": []}, "", False
    with open(path, encoding="utf-8") as f:
        for text in f:
            if text.strip().startswith("```"):
                fenced = not fenced
            m = None if fenced else re.match(r"^(#{1,2}) (.*)", text)
            if m:
                current = m.group(2).strip() if m.group(1) == "##" else ""
                result.setdefault(current, [])
                continue
            result.setdefault(current, []).append(text)
    return result


def page_date(repo):
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        try:
            epoch = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%ct"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            epoch = ""
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch else datetime.datetime.now(datetime.timezone.utc)
    return when.strftime("%Y-%m-%d")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="")
    parser.add_argument("--repo", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = parser.parse_args()
    repo = args.repo
    readme = sections(os.path.join(repo, "README.md"))
    configuration = sections(os.path.join(repo, "docs", "configuration.md"))
    operations = sections(os.path.join(repo, "docs", "operations.md"))

    def need(doc, name, heading):
        if heading not in doc:
            sys.exit(f"manpage.py: {name} has no '## {heading}' section")
        return doc[heading]

    use = need(readme, "README.md", "Use")
    out = [
        ".\\\" Generated by packaging/manpage.py from README.md and docs/; edit those instead.",
        f'.TH ERRORWATCH 8 "{page_date(repo)}" "ErrorWatch {args.version}" "System Administration"',
        ".SH NAME",
        "errorwatch \\- report filesystem corruption as it happens",
        ".SH SYNOPSIS",
    ]
    seen = set()
    for text in use:
        if text.startswith("|") and not text.startswith("|-"):
            first = split_row(text)[0]
            m = re.match(r"^`(errorwatch (\S+)[^`]*)`", first)
            if m and m.group(2) not in seen:
                seen.add(m.group(2))
                out += [".br", line(inline("`" + m.group(1) + "`"))]
    if not seen:
        sys.exit("manpage.py: no `errorwatch <command>` rows in the README's Use table")

    # DESCRIPTION: the README's paragraphs before its first code block.
    intro = []
    for text in readme[""]:
        if text.strip().startswith("```"):
            break
        intro.append(text)
    out.append(".SH DESCRIPTION")
    out += convert(intro)
    out.append(".SH COMMANDS")
    out += convert(use)
    out.append(".SH OUTPUT")
    out += convert(need(readme, "README.md", "Where the output goes"))
    out.append(".SH REQUIREMENTS")
    out += convert(need(readme, "README.md", "Requirements"))
    out.append(".SH CONFIGURATION")
    out += convert(configuration[""])
    for heading, body in configuration.items():
        if heading:
            out.append(".SS " + inline(heading))
            out += convert(body)
    out.append(".SH FILES")
    out += convert(need(operations, "docs/operations.md", "Files"))
    out.append('.SH "WHY IS NOTHING REPORTED?"')
    out += convert(need(operations, "docs/operations.md", "Why is nothing reported?"))
    out += [
        ".SH SEE ALSO",
        "\\fBjournalctl\\fR(1), \\fBsystemctl\\fR(1), \\fBbusctl\\fR(1), \\fBsystemd.exec\\fR(5), "
        "\\fBfanotify\\fR(7), \\fBe2fsck\\fR(8), \\fBxfs_repair\\fR(8), \\fBpolkit\\fR(8)",
        ".PP",
        "The full documentation, including the report schema, the D-Bus API and the metrics, is in "
        "\\fI/usr/share/doc/errorwatch/\\fR.",
    ]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
