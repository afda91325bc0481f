# workload.py: a dict- and string-heavy CPython run for preload-test.sh.
# Run with PYTHONMALLOC=malloc (every object through malloc) and
# PYTHONHASHSEED=0; its output depends on nothing but the computation.
import collections
import hashlib
import json
import re

words = ["w%x" % (i * 2654435761 % 100003) for i in range(200000)]
text = " ".join(words)
counts = collections.Counter(re.findall(r"w[0-9a-f]{2}", text))
index = {}
for i, w in enumerate(words):
    index.setdefault(w[:3], []).append(i)
nested = {k: {"n": len(v), "first": v[:3], "tag": k.upper() * 3} for k, v in index.items()}
blob = json.dumps(nested, sort_keys=True)
back = json.loads(blob)
assert back == nested
pieces = []
for k in sorted(back):
    pieces.append("%s=%d" % (k, back[k]["n"]))
joined = ";".join(pieces)
grown = ""
for i in range(20000):
    grown += str(i)
    if len(grown) > 5000:
        grown = grown[2500:]
print(len(words), len(counts), counts.most_common(3))
print(len(blob), hashlib.sha256(blob.encode()).hexdigest())
print(len(joined), joined[:60])
print(sorted(set(words), key=lambda w: (len(w), w))[-3:], grown[-20:])
