"""Griffe extension: kvision's docstring conventions, made Markdown.

kvision's docstrings follow the keras-hub style, which reads well in a
terminal but not as Markdown. Before mkdocstrings parses them (Google
style), this rewrites, in the rendered copy only:

- ``Example:`` followed by an unindented doctest (``>>>``) becomes a Google
  ``Examples:`` section, rendered as highlighted code;
- ``Call arguments:`` and its indented ``name: description`` items become a
  titled bullet list;
- ``Input shape:`` / ``Output shape:`` lines become separate bold-led
  paragraphs;
- a line ending in reST's ``::`` before an indented block ends in ``:``.

Loaded by ``mkdocs.yml`` (mkdocstrings ``extensions``); the source files
are not modified.
"""

import re

import griffe

EXAMPLE_HEADER = re.compile(r"^Examples?:\s*$")
LIST_HEADERS = ("Call arguments:",)
SHAPE_LINE = re.compile(r"^(Input shape|Output shape|Input shapes?):\s*")
# A Google section header at column 0, e.g. "Args:", "Returns:".
SECTION = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")


def _indent(line):
    return len(line) - len(line.lstrip())


def _examples(lines, i, out):
    """Rewrites an ``Example:`` whose doctest is not indented."""
    j = i + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines) or not lines[j].startswith(">>>"):
        return None
    out.append("Examples:")
    while j < len(lines) and not SECTION.match(lines[j]):
        out.append("    " + lines[j] if lines[j].strip() else "")
        j += 1
    return j


def _item_list(lines, i, out):
    """``Header:`` + indented ``name: text`` items -> a bullet list."""
    out += [f"**{lines[i].strip().rstrip(':')}**", ""]
    j = i + 1
    base = None
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j])):
        line = lines[j]
        if line.strip():
            base = _indent(line) if base is None else base
            text = line.strip()
            if _indent(line) == base:
                name, sep, rest = text.partition(":")
                text = f"`{name}`{sep}{rest}" if sep else text
                out.append(f"- {text}")
            else:
                out.append(f"  {text}")
        j += 1
    out.append("")
    return j


def rewrite(text):
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if EXAMPLE_HEADER.match(line):
            end = _examples(lines, i, out)
            if end is not None:
                i = end
                continue
        if line.strip() in LIST_HEADERS and not _indent(line):
            i = _item_list(lines, i, out)
            continue
        shape = SHAPE_LINE.match(line)
        if shape:
            if out and out[-1].strip():
                out.append("")
            line = f"**{shape.group(1)}:** " + line[shape.end() :]
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(
            ">>>"
        ):
            line = line.rstrip()[:-1]
        out.append(line)
        i += 1
    return "\n".join(out)


def comment_above(obj):
    """The ``#`` comment block right above a module-level attribute."""
    lines = obj.parent.lines
    i = (obj.lineno or 1) - 2
    comment = []
    while 0 <= i < len(lines) and lines[i].lstrip().startswith("#"):
        comment.insert(0, lines[i].lstrip()[1:].strip())
        i -= 1
    return " ".join(comment)


class KvisionDocstrings(griffe.Extension):
    def on_instance(self, *, node, obj, agent, **kwargs):
        if not obj.path.startswith("kvision"):
            return
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
        elif (
            obj.is_attribute
            and obj.parent is not None
            and obj.parent.is_module
            and not obj.name.startswith("_")
        ):
            # Public constants (some are in an ``__all__``) have no
            # docstring; their comment, if any, stands in for one.
            text = comment_above(obj) or "A constant; its value is above."
            obj.docstring = griffe.Docstring(text, parent=obj)
