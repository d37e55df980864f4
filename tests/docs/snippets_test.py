"""Checks that every C++ snippet in the README and docs/ is real code.

Each ```cpp block must appear, white space aside, in one source file of
examples/ or tools/ (programs that are built and tested); a line that is
only `// ...` stands for lines left out. Run by Bazel (args: the markdown
files, then `--`, then the sources), or by hand from the repository root.
"""
import re
import sys


def normalize(text):
    return re.sub(r"\s+", " ", text).strip()


def pieces(block):
    """Splits a snippet at its `// ...` lines into the runs that must match."""
    runs, current = [], []
    for line in block.splitlines():
        if line.strip() == "// ...":
            runs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    runs.append("\n".join(current))
    return [normalize(r) for r in runs if normalize(r)]


def found_in(block, source):
    at = 0
    for piece in pieces(block):
        at = source.find(piece, at)
        if at < 0:
            return False
        at += len(piece)
    return True


def main(args):
    split = args.index("--")
    docs, sources = args[:split], args[split + 1:]
    texts = {path: normalize(open(path, encoding="utf-8").read()) for path in sources}
    failures = 0
    checked = 0
    for doc in docs:
        text = open(doc, encoding="utf-8").read()
        for block in re.findall(r"```cpp\n(.*?)```", text, re.S):
            checked += 1
            if not any(found_in(block, source) for source in texts.values()):
                failures += 1
                first = block.strip().splitlines()[0]
                print(f"{doc}: snippet not found in any example or tool: {first}")
    print(f"{checked} snippets checked, {failures} not found in the sources")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
