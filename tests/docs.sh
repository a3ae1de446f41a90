#!/bin/bash
# The documentation's own checks (CI runs them first; no network):
#   - README.md holds at most 350 lines (the depth is in docs/);
#   - every relative link of README.md, docs/*.md and the other READMEs
#     resolves: the file or folder exists, and an anchor (#...) names a
#     heading of the target file, as GitHub makes anchors from headings.
#     External links (http, https, mailto) are not checked.
#   tests/docs.sh [REPO]
set -uo pipefail
cd "${1:-$(dirname "$0")/..}" || exit 2
python3 - <<'PY'
import os, re, sys, glob

MAX_README = 350
fails = []
n = sum(1 for _ in open("README.md", encoding="utf-8"))
if n > MAX_README:
    fails.append(f"README.md has {n} lines, more than {MAX_README}: move the depth into docs/")

def slug(heading):
    # GitHub: lowercase, drop punctuation but hyphens, underscores and spaces, spaces to hyphens.
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")

anchors_cache = {}
def anchors(path):
    if path not in anchors_cache:
        seen, out, fence = {}, set(), False
        for line in open(path, encoding="utf-8"):
            if line.startswith("```"):
                fence = not fence
            if fence:
                continue
            m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
            if not m:
                continue
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(2))  # links keep their text
            text = text.replace("`", "")
            base = slug(text)
            k = seen.get(base, 0)
            seen[base] = k + 1
            out.add(base if k == 0 else f"{base}-{k}")
        anchors_cache[path] = out
    return anchors_cache[path]

files = ["README.md"] + sorted(glob.glob("docs/*.md")) + [
    p for p in ("datasets/README.md", "vendor/README.md", "model/README.md") if os.path.exists(p)]
link = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
checked = 0
for f in files:
    fence = False
    for no, line in enumerate(open(f, encoding="utf-8"), 1):
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        for m in link.finditer(line):
            target = m.group(1) or m.group(2)
            if re.match(r"^[a-z]+:", target):
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
            if not os.path.exists(dest):
                fails.append(f"{f}:{no}: {target}: {dest} does not exist")
                continue
            if anchor:
                if not dest.endswith(".md"):
                    fails.append(f"{f}:{no}: {target}: an anchor into a file that is not markdown")
                elif anchor not in anchors(dest):
                    fails.append(f"{f}:{no}: {target}: no heading makes the anchor #{anchor} in {dest}")
for msg in fails:
    print("FAIL: docs:", msg)
if fails:
    sys.exit(1)
print(f"ok: docs: README.md {n} lines; {checked} relative links in {len(files)} files resolve")
PY
