#!/bin/sh
# Check the user docs (README.md and docs/*.md) the way a reader meets them:
#  - every relative link resolves to a file in the tree, and a #fragment to a
#    heading of the target page (GitHub's anchor rule);
#  - no page carries the project's own history (session or issue notes);
#  - the README stays short enough to read in one sitting (250 lines).
# One check per link, per page and for the README length. Prints each
# failure, then "N passed, N failed"; exits 1 on any failure.
# Usage: tools/check-docs.sh [FILE.md...]   (default: README.md docs/*.md)
set -u
cd "$(dirname "$0")/.." || exit 2
[ $# -gt 0 ] || set -- README.md docs/*.md
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# Headings of a Markdown file as GitHub anchors, one per line. Code fences
# are skipped: a '#' line in a shell block is not a heading.
anchors() {
	awk '/^```/ { code = !code; next }
	     !code && /^#+ / {
		s = tolower($0); sub(/^#+ +/, "", s)
		gsub(/[^a-z0-9 _-]/, "", s); gsub(/ /, "-", s); print s
	     }' "$1"
}

# Link targets outside code fences and inline code spans.
links() {
	awk '/^```/ { code = !code; next }
	     !code {
		line = $0; gsub(/`[^`]*`/, "", line)
		while (match(line, /\]\([^)]+\)/)) {
			print substr(line, RSTART + 2, RLENGTH - 3)
			line = substr(line, RSTART + RLENGTH)
		}
	     }' "$1"
}

for f in "$@"; do
	dir=$(dirname "$f")
	for l in $(links "$f"); do
		case $l in
		http://* | https://* | mailto:*) ok; continue ;;
		esac
		path=${l%%#*}
		frag=""
		case $l in *'#'*) frag=${l#*#} ;; esac
		target=$f
		[ -n "$path" ] && target=$dir/$path
		if [ ! -e "$target" ]; then
			bad "$f: link to $l: $target does not exist"
		elif [ -n "$frag" ] && ! anchors "$target" | grep -qx -- "$frag"; then
			bad "$f: link to $l: no heading for #$frag in $target"
		else
			ok
		fi
	done
	hist=$(grep -n -i -E 'previous session|this session|last session|issue [0-9]+|issue #[0-9]+' "$f")
	if [ -n "$hist" ]; then bad "$f: project history in user docs: $hist"; else ok; fi
done

n=$(wc -l < README.md)
if [ "$n" -le 250 ]; then ok; else bad "README.md is $n lines (at most 250)"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
