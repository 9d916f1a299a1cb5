#!/usr/bin/env python3
"""Writes docs/guide/python-reference.md, the Python package's reference, from the installed
package's docstrings (inspect.getdoc) and the signatures in python/gpurevolve/_native.pyi
(parsed with ast; inspect.signature for what the stubs do not cover).

Run it with the Python that has the package installed, from anywhere:

    target/python-venv/bin/python scripts/python-reference.py           # writes the page
    target/python-venv/bin/python scripts/python-reference.py --check   # exit 1 if stale

scripts/test.sh installs the package into target/python-venv.
"""

import argparse
import ast
import difflib
import inspect
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
STUBS = ROOT / "python" / "gpurevolve" / "_native.pyi"
PAGE = ROOT / "docs" / "guide" / "python-reference.md"
WIDTH = 92  # a signature longer than this gets one parameter a line
STUB_TEXT = ""  # the stubs' text, read by render()


def markdown(doc):
    """A docstring as Markdown: reST's ``x`` becomes `x`, and a block introduced by `::` or
    indented by four spaces becomes a fenced block (Python after `::`, text otherwise), so
    that rustdoc never takes it for a Rust doc test."""
    if not doc:
        return ""
    lines = doc.replace("``", "`").splitlines()
    out = []
    i = 0
    language = "text"
    while i < len(lines):
        line = lines[i]
        indented = line.startswith("    ") and (i == 0 or not lines[i - 1].strip())
        if indented:
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["```" + language, *block, "```", ""]
            language = "text"
            continue
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1]
            language = "python"
        out.append(line)
        i += 1
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def source(node):
    """A stub node's text as written in the stubs."""
    return ast.get_source_segment(STUB_TEXT, node)


def parameters(args):
    """The parameters of a stub's function, as written there."""
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = []

    def one(arg, default, prefix=""):
        text = prefix + arg.arg
        if arg.annotation is not None:
            text += f": {source(arg.annotation)}"
        if default is not None:
            text += f" = {source(default)}" if arg.annotation is not None else f"={source(default)}"
        return text

    for i, (arg, default) in enumerate(zip(positional, defaults)):
        out.append(one(arg, default))
        if args.posonlyargs and i == len(args.posonlyargs) - 1:
            out.append("/")
    if args.vararg is not None:
        out.append(one(args.vararg, None, "*"))
    elif args.kwonlyargs:
        out.append("*")
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append(one(arg, default))
    if args.kwarg is not None:
        out.append(one(args.kwarg, None, "**"))
    return out


def signature(name, args, returns, method):
    """`name(parameters) -> returns` from a stub's function, `self` dropped from a method."""
    params = parameters(args)
    if method and params and params[0] == "self":
        params = params[1:]
    tail = f" -> {source(returns)}" if returns is not None else ""
    one_line = f"{name}({', '.join(params)}){tail}"
    if len(one_line) <= WIDTH:
        return one_line
    return f"{name}(\n" + "".join(f"    {p},\n" for p in params) + f"){tail}"


def is_property(node):
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


def code(text):
    return f"```python\n{text}\n```"


def doc_of(obj):
    """The object's own docstring; none for what Python or pyo3 write for every object."""
    doc = inspect.getdoc(obj)
    if doc is None or doc.startswith(("Implement ", "Initialize self.")):
        return ""
    return markdown(doc)


def section(heading, sig, doc):
    parts = [heading, "", code(sig)]
    if doc:
        parts += ["", doc]
    return "\n".join(parts) + "\n"


def class_section(package, node):
    cls = getattr(package, node.name)
    bases = ", ".join(source(b) for b in node.bases)
    init = next(
        (m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None
    )
    if init is not None:
        head = signature(node.name, init.args, None, True)
    else:
        head = f"class {node.name}" + (f"({bases})" if bases else "")
    out = [section(f"## `{node.name}`", head, doc_of(cls))]
    fields = [m for m in node.body if isinstance(m, ast.AnnAssign)]
    if fields:
        rows = "\n".join(source(f) for f in fields)
        out.append("Attributes:\n\n" + code(rows) + "\n")
    for member in node.body:
        if not isinstance(member, ast.FunctionDef) or member.name == "__init__":
            continue
        obj = getattr(cls, member.name)
        if is_property(member):
            sig = f"{member.name}: {source(member.returns)}  # property"
        else:
            sig = signature(member.name, member.args, member.returns, True)
        doc = "" if member.name.startswith("__") else doc_of(obj)
        out.append(section(f"### `{node.name}.{member.name}`", sig, doc))
    return "\n".join(out)


def render():
    import gpurevolve

    global STUB_TEXT
    STUB_TEXT = STUBS.read_text()
    tree = ast.parse(STUB_TEXT, filename=str(STUBS))
    public = list(gpurevolve.__all__)
    done = set()
    body = []
    aliases = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in public:
            body.append(class_section(gpurevolve, node))
            done.add(node.name)
        elif isinstance(node, ast.FunctionDef) and node.name in public:
            sig = signature(node.name, node.args, node.returns, False)
            obj = getattr(gpurevolve, node.name)
            body.append(section(f"## `{node.name}`", sig, doc_of(obj)))
            done.add(node.name)
        elif isinstance(node, ast.AnnAssign) and ast.unparse(node.target) in public:
            name = ast.unparse(node.target)
            body.append(section(f"## `{name}`", source(node), ""))
            done.add(name)
        elif isinstance(node, ast.Assign):
            aliases.append(source(node))
    for name in public:
        if name in done:
            continue
        obj = getattr(gpurevolve, name)
        if inspect.isfunction(obj):
            sig = f"{name}{inspect.signature(obj)}"
        elif inspect.isclass(obj):
            sig = f"class {name}"
        else:
            sig = f"{name}: {type(obj).__name__}"
        body.append(section(f"## `{name}`", sig, doc_of(obj)))

    head = [
        "# Python reference",
        "",
        "<!-- Generated by scripts/python-reference.py; do not edit by hand. -->",
        "",
        "Generated by `scripts/python-reference.py` from the installed package's docstrings",
        "and the signatures of its stubs, `python/gpurevolve/_native.pyi`. The guide's",
        "[Python page](crate::guide::python) has an introduction.",
        "",
        "## The package `gpurevolve`",
        "",
        markdown(inspect.getdoc(gpurevolve)),
        "",
    ]
    tail = []
    if aliases:
        tail = ["## Types used in the signatures", "", code("\n".join(aliases)), ""]
    text = "\n".join(head) + "\n" + "\n".join(body) + "\n" + "\n".join(tail)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the page differs from what it would write"
    )
    args = parser.parse_args()
    text = render()
    if args.check:
        old = PAGE.read_text() if PAGE.exists() else ""
        if old != text:
            diff = difflib.unified_diff(
                old.splitlines(), text.splitlines(), str(PAGE), "generated", lineterm=""
            )
            print("\n".join(list(diff)[:60]))
            print(
                f"{PAGE.relative_to(ROOT)} is out of date: run "
                "target/python-venv/bin/python scripts/python-reference.py",
                file=sys.stderr,
            )
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
