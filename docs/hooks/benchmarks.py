"""MkDocs hook: the Benchmarks page, built from ``benchmarks/results/``.

Whatever is in the results folder when the site is built ends up on
``benchmarks/index.md`` (at the marker line), so the page builds with any
subset of results, including none:

- every ``*.md`` is included as a section (its headings one level down,
  links to sibling files rewritten to their published copies);
- every ``*.json`` without a same-named ``.md`` is shown as tables;
- every ``*.png``/``*.svg`` is published under ``benchmarks/results/``; the
  ones no Markdown file shows are added as figures.
"""

import html
import json
import logging
import pathlib
import re

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.benchmarks")

PAGE = "benchmarks/index.md"
MARKER = "<!-- kvision:benchmark-results -->"
PUBLISHED = "benchmarks/results"
IMAGES = (".png", ".svg", ".jpg", ".jpeg")
# Markdown links and images: [text](target) / ![alt](target "title").
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
MAX_ROWS = 200


def results_dir(config):
    root = pathlib.Path(config.config_file_path).resolve().parent
    return root / "benchmarks" / "results"


def _results(config, suffixes):
    folder = results_dir(config)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes
    )


def on_files(files, config):
    for path in _results(config, IMAGES):
        uri = f"{PUBLISHED}/{path.name}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _cell(value):
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (dict, list)):
        text = json.dumps(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        text = f"`{text}`"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows):
    """A Markdown table from a list of flat dicts (union of their keys)."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for row in rows[:MAX_ROWS]:
        lines.append(
            "| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |"
        )
    if len(rows) > MAX_ROWS:
        lines.append(f"\n*{len(rows) - MAX_ROWS} more rows in the file.*")
    return "\n".join(lines)


def _is_records(value):
    return (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) for v in value)
    )


def json_to_markdown(data):
    """Tables for the common shapes of a results file, JSON otherwise."""
    if _is_records(data):
        return _table(data)
    if isinstance(data, dict):
        scalars = {
            k: v for k, v in data.items() if not isinstance(v, (dict, list))
        }
        parts = []
        if scalars:
            parts.append(
                _table([{"key": k, "value": v} for k, v in scalars.items()])
            )
        for key, value in data.items():
            if key in scalars:
                continue
            if _is_records(value):
                parts.append(f"**{key}**\n\n" + _table(value))
            elif isinstance(value, dict) and all(
                isinstance(v, dict) for v in value.values()
            ):
                rows = [{"name": k, **v} for k, v in value.items()]
                parts.append(f"**{key}**\n\n" + _table(rows))
            else:
                text = json.dumps(value, indent=1)
                parts.append(f"**{key}**\n\n```json\n{text}\n```")
        return "\n\n".join(parts)
    return f"```json\n{json.dumps(data, indent=1)}\n```"


def _title(path, text=None):
    if text:
        match = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return path.stem.replace("_", " ").replace("-", " ").capitalize()


def _rewrite_links(text, folder, config):
    """Relative links of an included file, made relative to the page."""
    root = pathlib.Path(config.config_file_path).resolve().parent

    def fix(match):
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = (folder / path).resolve()
        if resolved.parent == folder and resolved.suffix in IMAGES:
            new = f"results/{resolved.name}"
            return match.group(1) + new + match.group(3)
        # Anything else (source files, other folders) is not published:
        # keep the text, name the file, drop the link.
        if match.group(1).startswith("!"):
            return f"*(figure {html.escape(path)} not published)*"
        label = match.group(1)[1:-2]
        try:
            shown = resolved.relative_to(root).as_posix()
        except ValueError:
            shown = path
        return f"{label} (`{shown}`)"

    return LINK.sub(fix, text)


def _demote(text):
    """Headings one level down; the file's first ``# `` title is dropped."""
    text = re.sub(r"\A\s*#\s+.+\n", "", text)
    return re.sub(r"^(#{1,5})(\s)", r"#\1\2", text, flags=re.MULTILINE)


def render_results(config):
    folder = results_dir(config)
    markdown_files = _results(config, (".md",))
    json_files = _results(config, (".json",))
    images = _results(config, IMAGES)
    if not (markdown_files or json_files or images):
        return (
            '!!! note "No results yet"\n\n'
            "    `benchmarks/results/` holds no results in this build. "
            "Run the benchmarks (see `benchmarks/`) and rebuild the site."
        )
    sections, shown = [], set()
    for path in markdown_files:
        text = path.read_text(encoding="utf-8")
        for match in LINK.finditer(text):
            shown.add(pathlib.PurePosixPath(match.group(2)).name)
        body = _rewrite_links(_demote(text), folder, config)
        sections.append(
            f"## {_title(path, text)}\n\n"
            f"*From `benchmarks/results/{path.name}`.*\n\n{body.strip()}"
        )
    described = {p.stem for p in markdown_files}
    for path in json_files:
        if path.stem in described:
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            # A broken results file should not take the site down.
            log.info("Skipping %s: %s", path, error)
            continue
        sections.append(
            f"## {_title(path)}\n\n*From `benchmarks/results/{path.name}`.*"
            f"\n\n{json_to_markdown(data)}"
        )
    figures = [p for p in images if p.name not in shown]
    if figures:
        lines = ["## Figures"]
        for path in figures:
            lines.append(
                f"![{_title(path)}](results/{path.name})\n\n"
                f"*`benchmarks/results/{path.name}`*"
            )
        sections.append("\n\n".join(lines))
    return "\n\n".join(sections)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri != PAGE or MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render_results(config))
