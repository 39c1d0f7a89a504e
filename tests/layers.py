#!/usr/bin/python3
"""make layers: checks that the code keeps the shape docs/design.md draws.

1. Includes. Each binary's files include only common/ and their own
   folders; in berthd, a folder includes only from its own layer or the
   layers below it (--berthd-layers, lowest first; orchestrator/ itself,
   with main.c and config.c, is the top).
2. Calls. From the built objects (nm): a file calls only functions of its
   own layer or below, and no files of one binary call each other in a
   circle (a strongly connected set of more than one file).

Exit status 0 when all holds; otherwise each violation on a line, and 1.
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def binary_of(path):
    top = path.split("/", 1)[0]
    return top if top in ("common", "orchestrator", "router", "shim", "cli") else None


class Layers:
    def __init__(self, berthd_layers):
        self.berthd = ["orchestrator/" + l for l in berthd_layers] + ["orchestrator"]

    def dirs_for(self, binary):
        """The include path of a binary, in the Makefile's order."""
        if binary == "orchestrator":
            return ["common"] + self.berthd
        return ["common"] + ([binary] if binary != "common" else [])

    def rank(self, directory):
        """common/ is 0; berthd's folders count up from 1; other binaries'
        folders are 1 (they have a single layer above common/)."""
        if directory == "common":
            return 0
        if directory in self.berthd:
            return 1 + self.berthd.index(directory)
        return 1

    def name(self, directory):
        return directory + "/"


def sources(root):
    out = []
    for top in ("common", "orchestrator", "router", "shim", "cli"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def resolve(root, including, name, path):
    here = os.path.dirname(including)
    for d in [here] + path:
        candidate = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, candidate)):
            return candidate
    return None


def check_includes(root, layers):
    problems = []
    for src in sources(root):
        binary = binary_of(src)
        path = layers.dirs_for(binary)
        with open(os.path.join(root, src), encoding="utf-8") as f:
            text = f.read()
        for name in INCLUDE.findall(text):
            target = resolve(root, src, name, path)
            if target is None:
                problems.append("%s: includes \"%s\", which is not in its binary's folders (%s)"
                                % (src, name, ", ".join(p + "/" for p in path)))
                continue
            src_dir, dst_dir = os.path.dirname(src), os.path.dirname(target)
            if dst_dir not in path:
                problems.append("%s: includes %s, outside its binary's folders" % (src, target))
            elif layers.rank(dst_dir) > layers.rank(src_dir):
                problems.append("%s (%s) includes %s from the higher layer %s"
                                % (src, layers.name(src_dir), target, layers.name(dst_dir)))
    return problems


def nm_symbols(obj):
    out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True, text=True,
                         check=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3}
    out = subprocess.run(["nm", "--undefined-only", "-g", obj], capture_output=True, text=True,
                         check=True).stdout
    undefined = {l.split()[-1] for l in out.splitlines() if l.split()}
    return defined, undefined


def objects(build, binary):
    base = os.path.join(build, "obj")
    tops = ["common", binary] if binary != "common" else ["common"]
    out = []
    for top in tops:
        for dirpath, _, files in os.walk(os.path.join(base, top)):
            for f in files:
                if f.endswith(".o"):
                    obj = os.path.join(dirpath, f)
                    src = os.path.relpath(obj, base)[:-2] + ".c"
                    out.append((src, obj))
    return sorted(out)


def circles(graph):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_calls(build, layers):
    problems = []
    for binary in ("orchestrator", "router", "shim", "cli"):
        objs = objects(build, binary)
        if not objs:
            problems.append("no objects of %s/ under %s: build first" % (binary, build))
            continue
        definer, needs = {}, {}
        for src, obj in objs:
            defined, undefined = nm_symbols(obj)
            for s in defined:
                definer[s] = src
            needs[src] = undefined
        graph, why = {}, {}
        for src, undefined in needs.items():
            for s in undefined:
                dst = definer.get(s)
                if dst is None or dst == src:
                    continue
                graph.setdefault(src, set()).add(dst)
                why.setdefault((src, dst), []).append(s)
                sd, dd = os.path.dirname(src), os.path.dirname(dst)
                if layers.rank(dd) > layers.rank(sd):
                    problems.append("%s (%s) calls %s of %s, a higher layer (%s)"
                                    % (src, layers.name(sd), s, dst, layers.name(dd)))
        for comp in circles(graph):
            ties = []
            for a in comp:
                for b in comp:
                    if (a, b) in why:
                        ties.append("%s -> %s: %s" % (a, b, ", ".join(sorted(why[(a, b)])[:4])))
            problems.append("call circle in %s: %s\n    %s" % (binary, ", ".join(comp), "\n    ".join(ties)))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--berthd-layers", required=True)
    ap.add_argument("--root", default=".")
    args = ap.parse_args()
    layers = Layers(args.berthd_layers.split())
    problems = check_includes(args.root, layers) + check_calls(args.build, layers)
    for p in problems:
        print("layers: " + p)
    if problems:
        print("layers: %d problem(s); docs/design.md shows the layers" % len(problems))
        return 1
    print("layers: ok (berthd: %s; router, shim, cli: one layer over common/)"
          % " < ".join(l + "/" for l in args.berthd_layers.split()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
