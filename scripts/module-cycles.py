#!/usr/bin/env python3
"""Report import cycles between the modules of the workspace's Rust crates.

Usage: python3 scripts/module-cycles.py [CRATE_SRC_DIR ...]
       (default: the src/ directory of every crate in the workspace)

Exits 0 when there is no cycle, 1 when there is one (each printed with the
`use` lines that make it), 2 on a usage error.

The graph comes from `use crate::…`, `use super::…` and `use self::…` lines
(and relative `use child::…`), including those in test modules; a path is
followed through the re-exports (`pub use`) of the modules it passes, so
`use super::Mechanism` counts as a use of the module that defines
`Mechanism`. A parent and its own descendants are one room: a module that
re-exports its children, and children that use their parent's items, are the
module tree, not a cycle. So cycles are looked for among siblings: for every
module, between the subtrees of its children (an edge from anywhere in one
child's subtree to anywhere in another's counts). `core/src/config.rs` using
`route::sni`, which uses `config`, is a cycle between the siblings `config`
and `route` of the crate root. A `#[cfg(test)]` module is a consumer of the
code it tests, not part of it: it is a node of its own, so `tls::driver`'s
tests using `tls::test_util`, which uses `tls::driver`, is no cycle.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

IDENT = re.compile(r"(?:r#)?[A-Za-z_][A-Za-z0-9_]*")
RAW_STRING = re.compile(r'b?r(#*)"')
TOKEN = re.compile(r"\s*(::|[{},;*()\[\]]|(?:r#)?[A-Za-z_][A-Za-z0-9_]*|\S)")


@dataclass
class Use:
    """One path a `use` declaration names, with where it stands."""

    path: list[str]
    alias: str | None
    glob: bool
    file: Path
    line: int


@dataclass
class Module:
    """A module: its absolute path (empty for the crate root) and its uses."""

    path: tuple[str, ...]
    test_only: bool = False
    uses: list[Use] = field(default_factory=list)


def strip_comments_and_literals(text: str) -> str:
    """Blanks comments and string/char literals, keeping every newline."""
    out: list[str] = []
    i, n = 0, len(text)

    def blank(segment: str) -> str:
        return "".join(c if c == "\n" else " " for c in segment)

    def word_before(at: int) -> bool:
        return at > 0 and (text[at - 1].isalnum() or text[at - 1] == "_")

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(blank(text[i:j]))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := RAW_STRING.match(text, i)) and not word_before(i):
            end = '"' + m.group(1)
            j = text.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (text.startswith('b"', i) and not word_before(i)):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if text.startswith("'\\", i):
                j = text.find("'", i + 3)
                j = n if j < 0 else j + 1
                out.append(blank(text[i:j]))
                i = j
            elif i + 2 < n and text[i + 2] == "'":
                out.append("   ")
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use_tree(tokens: list[str]) -> list[tuple[list[str], str | None, bool]]:
    """The paths of a use tree: `a::{b, c::d as e, f::*}` -> three paths."""
    pos = 0

    def tree(prefix: list[str]) -> list[tuple[list[str], str | None, bool]]:
        nonlocal pos
        path = list(prefix)
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "{":
                pos += 1
                result = []
                while pos < len(tokens) and tokens[pos] != "}":
                    result.extend(tree(path))
                    if pos < len(tokens) and tokens[pos] == ",":
                        pos += 1
                pos += 1
                return result
            if tok == "*":
                pos += 1
                return [(path, None, True)]
            if tok == "::":
                pos += 1
                continue
            if tok in (",", "}"):
                return [(path, None, False)] if path != prefix else []
            if tok == "as":
                alias = tokens[pos + 1] if pos + 1 < len(tokens) else "_"
                pos += 2
                return [(path, alias, False)]
            path.append(tok)
            pos += 1
        return [(path, None, False)] if path != prefix else []

    return tree([])


def attributes_before(tokens: list[tuple[str, int]], i: int) -> list[str]:
    """The attributes (`#[...]`, as text) of the item whose keyword is `tokens[i]`,
    looking back over its visibility (`pub`, `pub(crate)`, `pub(in path)`)."""
    j = i - 1
    if j >= 0 and tokens[j][0] == ")":
        while j >= 0 and tokens[j][0] != "(":
            j -= 1
        j -= 1
    if j >= 0 and tokens[j][0] == "pub":
        j -= 1
    found = []
    while j >= 1 and tokens[j][0] == "]":
        depth, k = 0, j
        while k >= 0:
            if tokens[k][0] == "]":
                depth += 1
            elif tokens[k][0] == "[":
                depth -= 1
                if depth == 0:
                    break
            k -= 1
        if k < 1 or tokens[k - 1][0] != "#":
            break
        found.append("".join(t for t, _ in tokens[k + 1 : j]))
        j = k - 2
    return found


def is_test_only(attributes: list[str]) -> bool:
    return "cfg(test)" in attributes


def parse_file(
    file: Path,
    module: tuple[str, ...],
    child_dir: Path,
    test_only: bool,
    modules: dict[tuple[str, ...], Module],
) -> None:
    """Records the uses of `file` (module `module`, whose file modules live in
    `child_dir`), of its inline modules and, recursively, of the modules it declares."""
    text = strip_comments_and_literals(file.read_text(encoding="utf-8"))
    tokens: list[tuple[str, int]] = []
    line = 1
    for m in TOKEN.finditer(text):
        line += text.count("\n", m.start(), m.start(1))
        tokens.append((m.group(1), line))
        line += m.group(1).count("\n")
    modules.setdefault(module, Module(module, test_only=test_only))
    # Scope stack: (module path, its directory, test only, brace depth at which its block closes).
    scope: list[tuple[tuple[str, ...], Path, bool, int]] = [(module, child_dir, test_only, -1)]
    depth = 0
    i = 0
    while i < len(tokens):
        tok, ln = tokens[i]
        here, here_dir, here_test, _ = scope[-1]
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if scope[-1][3] == depth:
                scope.pop()
        elif tok == "mod" and i + 2 < len(tokens) and IDENT.fullmatch(tokens[i + 1][0]):
            name = tokens[i + 1][0]
            inner = here + (name,)
            inner_test = here_test or is_test_only(attributes_before(tokens, i))
            if tokens[i + 2][0] == "{":
                modules.setdefault(inner, Module(inner, test_only=inner_test))
                scope.append((inner, here_dir / name, inner_test, depth))
                depth += 1
                i += 3
                continue
            if tokens[i + 2][0] == ";":
                for candidate in (here_dir / f"{name}.rs", here_dir / name / "mod.rs"):
                    if candidate.is_file():
                        parse_file(candidate, inner, here_dir / name, inner_test, modules)
                        break
                i += 3
                continue
        elif tok == "use" and (i == 0 or tokens[i - 1][0] in (";", "{", "}", "]", ")", "pub")):
            j = i + 1
            while j < len(tokens) and tokens[j][0] != ";":
                j += 1
            tree = [t for t, _ in tokens[i + 1 : j]]
            for p, alias, glob in expand_use_tree(tree):
                modules[here].uses.append(Use(p, alias, glob, file, ln))
            i = j + 1
            continue
        i += 1


def discover(src: Path) -> dict[tuple[str, ...], Module]:
    """Every module of the crate rooted at `src`/lib.rs (or main.rs), found by
    following `mod` declarations."""
    root = src / "lib.rs" if (src / "lib.rs").is_file() else src / "main.rs"
    modules: dict[tuple[str, ...], Module] = {}
    parse_file(root, (), src, False, modules)
    return modules


class Resolver:
    """Turns a use path into the module that defines what it names."""

    def __init__(self, modules: dict[tuple[str, ...], Module]):
        self.modules = modules

    def absolute(self, at: tuple[str, ...], path: list[str]) -> tuple[str, ...] | None:
        """The absolute form of `path` as written in module `at`, or None for another crate."""
        if not path:
            return None
        head, rest = path[0], path[1:]
        if head == "crate":
            return tuple(rest)
        if head in ("super", "self"):
            base = at
            while path and path[0] in ("super", "self"):
                if path[0] == "super":
                    if not base:
                        return None
                    base = base[:-1]
                path = path[1:]
            return base + tuple(path)
        if at + (head,) in self.modules:
            return at + tuple(path)
        return None

    def defining_module(self, target: tuple[str, ...], seen: frozenset = frozenset()) -> tuple[str, ...]:
        """The module that defines `target`, following re-exports."""
        # The longest prefix that is a module.
        k = len(target)
        while k > 0 and target[:k] not in self.modules:
            k -= 1
        module = target[:k]
        rest = target[k:]
        if not rest or (module, rest[0]) in seen:
            return module
        seen = seen | {(module, rest[0])}
        name = rest[0]
        for use in self.modules[module].uses:
            path = use.path[:-1] if use.path[-1:] == ["self"] else use.path
            bound = use.alias or (path[-1] if path else None)
            if use.glob or bound != name:
                continue
            source = self.absolute(module, path)
            if source is not None:
                return self.defining_module(source + rest[1:], seen)
        for use in self.modules[module].uses:
            if use.glob:
                source = self.absolute(module, use.path)
                if source is not None and source in self.modules:
                    found = self.defining_module(source + rest, seen)
                    if found != source:
                        return found
        return module

    def edges(self) -> list[tuple[tuple[str, ...], tuple[str, ...], Use]]:
        """Every (from, to, use) edge between two different modules."""
        result = []
        for module in self.modules.values():
            for use in module.uses:
                path = use.path[:-1] if use.path and use.path[-1] == "self" else use.path
                target = self.absolute(module.path, path)
                if target is None:
                    continue
                to = self.defining_module(target)
                if to != module.path:
                    result.append((module.path, to, use))
        return result


def strongly_connected(nodes: list, graph: dict) -> list[list]:
    """Tarjan's algorithm: the strongly connected components of more than one node."""
    index: dict = {}
    low: dict = {}
    stack: list = []
    on_stack: set = set()
    out: list[list] = []
    counter = 0

    def visit(v) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def one_cycle(component: list, graph: dict) -> list:
    """A shortest cycle through the first node of a strongly connected component."""
    start = component[0]
    members = set(component)
    previous = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph.get(v, {})):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return component + [start]


def name(crate: str, module: tuple[str, ...]) -> str:
    return "::".join((crate,) + module)


def node_under(parent: tuple[str, ...], module: tuple[str, ...], modules: dict) -> tuple[str, ...]:
    """The node that stands for `module` among the children of `parent`: the
    child whose subtree holds it, or the outermost test module on the way
    there (a test module is a consumer of what it tests, not part of it)."""
    for k in range(len(parent) + 2, len(module) + 1):
        if modules[module[:k]].test_only:
            return module[:k]
    return module[: len(parent) + 1]


def cycles_of(crate: str, src: Path) -> list[str]:
    """Printable reports, one per cycle, for the crate under `src`."""
    modules = discover(src)
    edges = Resolver(modules).edges()
    reports = []
    for parent in sorted(modules):
        depth = len(parent)
        below = [m for m in modules if len(m) > depth and m[:depth] == parent]
        graph: dict = {}
        for frm, to, use in edges:
            if len(frm) <= depth or len(to) <= depth or frm[:depth] != parent or to[:depth] != parent:
                continue
            a, b = node_under(parent, frm, modules), node_under(parent, to, modules)
            if a != b:
                graph.setdefault(a, {}).setdefault(b, []).append(use)
        nodes = sorted({node_under(parent, m, modules) for m in below})
        for component in strongly_connected(nodes, graph):
            cycle = one_cycle(component, graph)
            lines = [f"cycle: {' -> '.join(name(crate, m) for m in cycle)}"]
            for a, b in zip(cycle, cycle[1:]):
                for use in graph[a][b][:3]:
                    where = use.file.relative_to(REPO) if use.file.is_relative_to(REPO) else use.file
                    written = "::".join(use.path)
                    lines.append(f"  {name(crate, a)} -> {name(crate, b)}: {where}:{use.line} use {written}")
            reports.append("\n".join(lines))
    return reports


def workspace_crates() -> list[Path]:
    """The src/ directories of the workspace members (the `members` list of Cargo.toml)."""
    manifest = (REPO / "Cargo.toml").read_text(encoding="utf-8")
    match = re.search(r"members\s*=\s*\[([^\]]*)\]", manifest)
    members = re.findall(r'"([^"]+)"', match.group(1)) if match else []
    return [REPO / m / "src" for m in members if (REPO / m / "src").is_dir()]


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    unknown = [a for a in argv if a.startswith("-")]
    dirs = [Path(a) for a in argv] or workspace_crates()
    for d in dirs:
        if unknown or not ((d / "lib.rs").is_file() or (d / "main.rs").is_file()):
            what = f"unknown option {unknown[0]}" if unknown else f"{d} holds no lib.rs or main.rs"
            print(f"module-cycles: {what}", file=sys.stderr)
            print(__doc__.splitlines()[2], file=sys.stderr)
            return 2
    reports = []
    for d in dirs:
        crate = d.resolve().parent.name.replace("-", "_")
        reports.extend(cycles_of(crate, d.resolve()))
    for r in reports:
        print(r)
    if reports:
        print(f"{len(reports)} module cycle(s) in {len(dirs)} crate(s)")
        return 1
    print(f"no module cycle in {len(dirs)} crate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
